"""Presets: curated open checkpoints for the two API model ids, in one table (docs/diffusers.md's
preset table is checked against it by tests/unit/test_presets.py).

A preset names a family, a Hub repository per role, the sampling settings the repositories'
model cards recommend, the licence, and the honest figures: download size (the files
`wanimage pull` selects, from the published file trees in tests/fixtures/hub/), the memory the
weights take where they run (or a measured peak, where the note says so), and a speed figure
only where one is published (with its source) or measured (with its command); every other speed
is "unmeasured".

`wanimage serve --preset NAME` turns a preset into an engine config whose checkpoints are the
directories `wanimage pull` wrote (engines/diffusers/models_dir.py); nothing here downloads."""

from __future__ import annotations

from dataclasses import dataclass, field

GB = 10**9
UNMEASURED = "unmeasured"


@dataclass(frozen=True)
class Repo:
    """One Hub repository in diffusers layout, as `wanimage pull` fetches it."""

    id: str
    licence: str
    licence_url: str
    download_bytes: int  # the selected files (one weight variant, one format), published sizes
    variant: str | None = None  # e.g. "fp16": the weight files pulled and loaded
    gated: bool = False  # the Hub asks to accept the licence before it serves the files
    modelscope: str | None = None  # the same weights on modelscope.cn, where they are published
    kind: str = "pipeline"  # "pipeline" (model_index.json), "model" (a transformers model folder) or
    # "component" (one diffusers model: config.json + diffusion_pytorch_model.*, e.g. a tiny autoencoder)

    @property
    def pipeline(self) -> bool:
        return self.kind == "pipeline"

    @property
    def page(self) -> str:
        return f"https://huggingface.co/{self.id}"


@dataclass(frozen=True)
class Role:
    repo: str
    pipeline: str | None = None  # None: the family's default class for the role
    steps: int | None = None  # the role's own steps / guidance, where its model card differs
    guidance: float | None = None


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    family: str
    roles: dict[str, Role]
    settings: dict  # engine-config keys for both model ids (steps, guidance, dtype, offload, ...)
    pro: dict  # keys that differ for wan2.7-image-pro
    device: str  # "cpu": runs without a GPU; "cuda": needs one
    memory_bytes: int  # the weights where they run (RAM on cpu, GPU memory on cuda)
    memory_note: str
    speed: str  # a published or measured figure, else UNMEASURED
    speed_source: str  # its URL or command; "" when unmeasured
    notes: str = ""
    translator: str | None = None  # a zh->en model pulled with the preset: its text encoder reads English only
    vae: str | None = None  # a tiny autoencoder pulled with the preset, decoding (and encoding) in the VAE's place
    repos: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        ids = tuple(dict.fromkeys(r.repo for r in self.roles.values()))
        extra = tuple(r for r in (self.vae, self.translator) if r)
        object.__setattr__(self, "repos", ids + extra)

    @property
    def optional(self) -> tuple[str, ...]:
        """Repositories it serves without (with a warning): the translator, the tiny autoencoder
        (the checkpoint's own VAE decodes instead, slower)."""
        return tuple(r for r in (self.vae, self.translator) if r)

    @property
    def reads_chinese(self) -> bool:
        """Whether its text encoder reads a Chinese prompt (else it is translated: translate.py)."""
        from .translate import reads_chinese

        return reads_chinese(self.family)

    @property
    def download_bytes(self) -> int:
        return sum(REPOS[r].download_bytes for r in self.repos)

    @property
    def licences(self) -> list[str]:
        return list(dict.fromkeys(REPOS[r].licence for r in self.repos))


SAI_COMMUNITY = "Stability AI Community License (non-commercial research; commercial use: stability.ai/license)"
OPENRAIL = "CreativeML Open RAIL++-M"
FLUX_DEV = "FLUX.1 [dev] Non-Commercial License"
ZH_EN = "Helsinki-NLP/opus-mt-zh-en"  # MarianMT zh->en, for presets whose text encoder is CLIP
TAESD = "madebyollin/taesd"  # tiny autoencoders (AutoencoderTiny): the SD / SD 2.x latent space...
TAESDXL = "madebyollin/taesdxl"  # ... and SDXL's (the two VAEs are incompatible)
SDXS = "IDKiro/sdxs-512-0.9"

REPOS: dict[str, Repo] = {r.id: r for r in (
    Repo("stabilityai/sd-turbo", SAI_COMMUNITY, "https://huggingface.co/stabilityai/sd-turbo/blob/main/LICENSE.md",
         2_580_000_000, variant="fp16"),
    Repo("stabilityai/sdxl-turbo", SAI_COMMUNITY, "https://huggingface.co/stabilityai/sdxl-turbo/blob/main/LICENSE.md",
         6_940_000_000, variant="fp16"),
    Repo("stabilityai/stable-diffusion-xl-base-1.0", OPENRAIL,
         "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/LICENSE.md",
         6_940_000_000, variant="fp16"),
    Repo("diffusers/stable-diffusion-xl-1.0-inpainting-0.1", OPENRAIL,
         "https://huggingface.co/diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
         6_940_000_000, variant="fp16"),
    Repo("Tongyi-MAI/Z-Image-Turbo", "Apache-2.0", "https://huggingface.co/Tongyi-MAI/Z-Image-Turbo",
         20_540_000_000, modelscope="Tongyi-MAI/Z-Image-Turbo"),
    Repo("black-forest-labs/FLUX.2-klein-4B", "Apache-2.0", "https://huggingface.co/black-forest-labs/FLUX.2-klein-4B",
         15_980_000_000),
    Repo("black-forest-labs/FLUX.1-schnell", "Apache-2.0", "https://huggingface.co/black-forest-labs/FLUX.1-schnell",
         33_750_000_000),
    Repo("black-forest-labs/FLUX.1-dev", FLUX_DEV, "https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md",
         33_750_000_000, gated=True),
    Repo("black-forest-labs/FLUX.1-Kontext-dev", FLUX_DEV,
         "https://huggingface.co/black-forest-labs/FLUX.1-Kontext-dev/blob/main/LICENSE.md", 33_750_000_000, gated=True),
    Repo("black-forest-labs/FLUX.1-Fill-dev", FLUX_DEV,
         "https://huggingface.co/black-forest-labs/FLUX.1-Fill-dev/blob/main/LICENSE.md", 33_750_000_000, gated=True),
    Repo("Qwen/Qwen-Image", "Apache-2.0", "https://huggingface.co/Qwen/Qwen-Image", 57_730_000_000,
         modelscope="Qwen/Qwen-Image"),
    Repo("Qwen/Qwen-Image-Edit-2511", "Apache-2.0", "https://huggingface.co/Qwen/Qwen-Image-Edit-2511",
         57_730_000_000, modelscope="Qwen/Qwen-Image-Edit-2511"),
    # pytorch_model.bin 312 MB + source.spm, target.spm, vocab.json (published file sizes)
    Repo(ZH_EN, "CC-BY-4.0", "https://huggingface.co/Helsinki-NLP/opus-mt-zh-en", 315_000_000, kind="model"),
    # config.json + diffusion_pytorch_model.safetensors (float32, 2.4M parameters: encoder and decoder)
    Repo(TAESD, "MIT", "https://huggingface.co/madebyollin/taesd", 9_800_000, kind="component"),
    Repo(TAESDXL, "MIT", "https://huggingface.co/madebyollin/taesdxl", 9_800_000, kind="component"),
    Repo(SDXS, "CreativeML Open RAIL++-M (openrail++)", "https://huggingface.co/IDKiro/sdxs-512-0.9",
         2_690_000_000),
)}

# The component folders each pipeline class the presets use cannot do without (the required
# arguments of its __init__, less OPTIONAL), written out so that `wanimage serve
# --preset` without the weights names what is missing at once, not after importing diffusers'
# pipeline modules (8 s on 2 cores). tests/unit/test_presets.py checks it against the signatures.
OPTIONAL = {"safety_checker", "feature_extractor", "image_encoder"}  # a pipeline loads without these
_SD = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")
_SDXL = ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "scheduler")
_ONE_ENCODER = ("scheduler", "vae", "text_encoder", "tokenizer", "transformer")  # Flux 2, Qwen-Image, Z-Image
_FLUX = ("scheduler", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "transformer")
PIPELINE_FOLDERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"), _SD),
    **dict.fromkeys(("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                     "StableDiffusionXLInpaintPipeline"), _SDXL),
    **dict.fromkeys(("FluxPipeline", "FluxImg2ImgPipeline", "FluxKontextPipeline", "FluxFillPipeline"), _FLUX),
    **dict.fromkeys(("Flux2KleinPipeline", "Flux2KleinInpaintPipeline", "QwenImagePipeline", "QwenImageImg2ImgPipeline",
                     "QwenImageInpaintPipeline", "ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline"),
                    _ONE_ENCODER),
    "QwenImageEditPlusPipeline": ("scheduler", "vae", "text_encoder", "tokenizer", "processor", "transformer"),
}

WEIGHTS_NOTE = "the weights only (the download size in the dtype they run in); activations not measured"

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        "sd-turbo", "SD-Turbo: real images on a CPU, 1 step at 512 px", "sd",
        {role: Role("stabilityai/sd-turbo") for role in ("text_to_image", "edit", "inpaint", "refine")},
        # OpenVINO where it is installed (torch otherwise, with channels_last convolutions); the UNet's and
        # TAESD's decoder's convolutions in int8 (int8_hybrid: calibrated at conversion), int8 MatMul
        # weights (NNCF on OpenVINO's IR; torchao's Linear layers on torch): the fastest measured, and under
        # 3 GB (docs/diffusers.md, "CPU side by side")
        {"steps": 1, "guidance": 0.0, "dtype": "auto", "device": "cpu", "backend": "openvino",
         "quantize": {"unet": "int8_hybrid", "text_encoder": "int8", "vae": "int8_hybrid"}, "channels_last": True},
        {"steps": 4},
        "cpu", 2_910_000_000, "measured: peak RSS of the whole server process through 768*768 requests (drawn "
        "at 512x512), both model ids sharing one pipeline: OpenVINO, its IR made by `wanimage pull`, int8 "
        "convolutions (UNet and TAESD's decoder), int8 MatMul weights; 2.30 GB through English prompts, 2.44 GB "
        "once a Chinese prompt has loaded the translator, on a CPU with bfloat16; 2.77 and 2.91 GB on one with "
        "AVX2 only, which computes in float32 (on torch, without openvino: 3.1 GB, measured before int8 "
        "convolutions)",
        "3.8 CPU core-seconds per image at 1 step through the server, 2.0 s wall on 2 cores (OpenVINO, int8 "
        "convolutions and MatMul weights, TAESD), beside FastSD CPU's OpenVINO + TAESD at 5.2 and OpenVINO int8 "
        "+ TAESD at 5.0 in the same interleaved run: 0.76x the fastest's time paired per round (0.76x asked in "
        "Chinese); a 2-vCPU AMD EPYC with AVX512-BF16, without AMX, random weights of its architecture. On an "
        "EPYC with AVX2 only: 13.1 core-seconds (7.0 s), 0.83x FastSD CPU's mode there (0.92x asked in Chinese)",
        "bench/cpu_real.py --repeats 21 --interleave --paths wanimage wanimage-sdxs ov-taesd ov-int8-taesd "
        "(docs/diffusers.md)",
        notes="distilled SD 2.1; edits are img2img at strength 0.6; box edits repaint with the base UNet; "
        "TAESD decodes (vae = \"full\" keeps the SD VAE)",
        translator=ZH_EN, vae=TAESD,
    ),
    Preset(
        "sdxs-512", "SDXS-512: one step, a small UNet and a tiny decoder, the fastest on a CPU", "sd",
        {role: Role(SDXS) for role in ("text_to_image", "edit", "inpaint", "refine")},
        {"steps": 1, "guidance": 0.0, "dtype": "auto", "device": "cpu", "backend": "openvino",
         "quantize": {"unet": "int8_hybrid", "text_encoder": "int8", "vae": "int8_hybrid"}},
        {},
        "cpu", 1_880_000_000, "measured: peak RSS of the whole server process through 768*768 requests (drawn "
        "at 512x512): OpenVINO, int8 convolutions and MatMul weights; 1.58 GB through English prompts, 1.72 GB "
        "once a Chinese prompt has loaded the translator, on a CPU with bfloat16; 1.73 and 1.88 GB on one with "
        "AVX2 only", "1.9 CPU core-seconds per image at 1 step through the "
        "server, 1.0 s wall on 2 cores (OpenVINO, int8 convolutions), 0.49x sd-turbo's time paired per round in "
        "the same interleaved run (0.50x by medians; 0.49x asked in Chinese), a 2-vCPU AMD EPYC (6.4 core-s, "
        "0.49x, on an EPYC with AVX2 only); random weights "
        "and a UNet of the SDXS paper's block-pruned shape (318.7M parameters where the paper gives 0.32B; its "
        "published config.json not read here: an estimate)",
        "bench/cpu_real.py --repeats 21 --interleave --paths wanimage wanimage-sdxs ov-taesd ov-int8-taesd "
        "(docs/diffusers.md)",
        notes="distilled from SD 2.1-base; its vae/ is already a tiny autoencoder (the full one, vae_large/, is "
        "not pulled); one step at every tier",
        translator=ZH_EN,
    ),
    Preset(
        "sdxl-turbo", "SDXL-Turbo: 1 step at 512 px, on a small GPU", "sdxl",
        {role: Role("stabilityai/sdxl-turbo") for role in ("text_to_image", "inpaint", "refine")},
        {"steps": 1, "guidance": 0.0, "dtype": "float16", "max_generate_pixels": 512 * 512},
        {"steps": 4},
        "cuda", 6_940_000_000, WEIGHTS_NOTE,
        "207 ms per 512x512 image on an A100 (1 step, fp16, prompt encoding and decoding included)",
        "https://stability.ai/news/stability-ai-sdxl-turbo", translator=ZH_EN, vae=TAESDXL,
        notes="TAESDXL decodes (vae = \"full\" keeps the SDXL VAE)",
    ),
    Preset(
        "sdxl", "SDXL 1.0 base with its inpainting checkpoint", "sdxl",
        {"text_to_image": Role("stabilityai/stable-diffusion-xl-base-1.0"),
         "refine": Role("stabilityai/stable-diffusion-xl-base-1.0"),
         "inpaint": Role("diffusers/stable-diffusion-xl-1.0-inpainting-0.1", guidance=8.0)},
        {"steps": 30, "guidance": 5.0, "dtype": "float16", "offload": "model"},
        {"steps": 40, "refine_strength": 0.3, "vae_tiling": True},
        "cuda", 5_140_000_000, "model offload: the largest component (the UNet, 5.1 GB in fp16) on the GPU; "
        + WEIGHTS_NOTE, UNMEASURED, "", translator=ZH_EN,
    ),
    Preset(
        "z-image-turbo", "Z-Image-Turbo (Alibaba Tongyi): 9 steps, bilingual text", "zimage",
        {role: Role("Tongyi-MAI/Z-Image-Turbo") for role in ("text_to_image", "inpaint", "refine")},
        {"steps": 9, "guidance": 0.0, "dtype": "bfloat16"},
        {"refine_strength": 0.3, "vae_tiling": True},
        "cuda", 20_540_000_000, WEIGHTS_NOTE + "; the model card says it fits 16 GB consumer GPUs (with offload)",
        "sub-second per image on an H800 (8 function evaluations), as published",
        "https://huggingface.co/Tongyi-MAI/Z-Image-Turbo",
        notes="no reference edits: the Omni/Edit weights are not in this repository",
    ),
    Preset(
        "flux2-klein-4b", "FLUX.2 [klein] 4B: text-to-image and multi-reference edits", "flux2",
        {role: Role("black-forest-labs/FLUX.2-klein-4B") for role in ("text_to_image", "edit", "inpaint")},
        {"steps": 4, "guidance": 1.0, "dtype": "bfloat16"},
        {"steps": 8},
        "cuda", 15_980_000_000, WEIGHTS_NOTE, UNMEASURED, "",
    ),
    Preset(
        "flux1-schnell", "FLUX.1 [schnell] (4 steps) with Kontext edits and Fill box edits", "flux",
        {"text_to_image": Role("black-forest-labs/FLUX.1-schnell"),
         "refine": Role("black-forest-labs/FLUX.1-schnell"),
         "edit": Role("black-forest-labs/FLUX.1-Kontext-dev", steps=28, guidance=2.5),
         "inpaint": Role("black-forest-labs/FLUX.1-Fill-dev", steps=50, guidance=30.0)},
        {"steps": 4, "guidance": 0.0, "dtype": "bfloat16", "offload": "model",
         "call_kwargs": {"max_sequence_length": 256}},
        {"refine_strength": 0.25, "vae_tiling": True},
        "cuda", 23_800_000_000, "model offload: the largest component (the 12B transformer, 23.8 GB in bf16) on "
        "the GPU; " + WEIGHTS_NOTE, UNMEASURED, "",
        notes="schnell is Apache-2.0; Kontext-dev and Fill-dev are gated and non-commercial", translator=ZH_EN,
    ),
    Preset(
        "flux1-dev", "FLUX.1 [dev] with Kontext edits and Fill box edits", "flux",
        {"text_to_image": Role("black-forest-labs/FLUX.1-dev"), "refine": Role("black-forest-labs/FLUX.1-dev"),
         "edit": Role("black-forest-labs/FLUX.1-Kontext-dev", guidance=2.5),
         "inpaint": Role("black-forest-labs/FLUX.1-Fill-dev", steps=50, guidance=30.0)},
        {"steps": 28, "guidance": 3.5, "dtype": "bfloat16", "offload": "model"},
        {"steps": 40, "refine_strength": 0.25, "vae_tiling": True},
        "cuda", 23_800_000_000, "model offload: the largest component (the 12B transformer, 23.8 GB in bf16) on "
        "the GPU; " + WEIGHTS_NOTE, UNMEASURED, "", translator=ZH_EN,
    ),
    Preset(
        "qwen-image", "Qwen-Image with Qwen-Image-Edit-2511 (Alibaba's open 20B models)", "qwen_image",
        {"text_to_image": Role("Qwen/Qwen-Image"), "refine": Role("Qwen/Qwen-Image"),
         "inpaint": Role("Qwen/Qwen-Image", pipeline="QwenImageInpaintPipeline"),
         "edit": Role("Qwen/Qwen-Image-Edit-2511")},
        {"steps": 40, "true_cfg": 4.0, "negative_prompt": " ", "dtype": "bfloat16", "offload": "model"},
        {"steps": 50, "refine_strength": 0.3, "vae_tiling": True},
        "cuda", 40_900_000_000, "model offload: the largest component (the 20B transformer, 40.9 GB in bf16) on "
        "the GPU, and both repositories in RAM; " + WEIGHTS_NOTE, UNMEASURED, "",
    ),
)}


def find(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"no preset {name!r}; presets: {', '.join(PRESETS)} (`wanimage presets` lists them)") from None


def engine_config(preset: Preset, checkpoint_path) -> dict:
    """The engine-config dict (engines/diffusers/config.parse_config's input) serving the model
    ids `served_ids(preset)` names; `checkpoint_path(repo_id) -> str` says where each repository
    lives. The top ids (-pro, -max) get the preset's `pro` keys."""
    def roles() -> dict:
        out = {}
        for role, r in preset.roles.items():
            table = {"checkpoint": checkpoint_path(r.repo)}
            for key in ("pipeline", "steps", "guidance"):
                if getattr(r, key) is not None:
                    table[key] = getattr(r, key)
            if REPOS[r.repo].variant:
                table["variant"] = REPOS[r.repo].variant
            out[role] = table
        return out

    base = {"family": preset.family, **preset.settings, **roles()}
    if preset.translator:
        base["translator"] = checkpoint_path(preset.translator)
    if preset.vae:
        base["vae"] = checkpoint_path(preset.vae)
    return {"models": {m: {**base, **preset.pro} if is_top_tier(m) else base for m in served_ids(preset)}}


def served_ids(preset: Preset) -> tuple[str, ...]:
    """Every preset serves the Wan ids; the Qwen-Image preset, whose weights are the open models
    the hosted qwen-image ids name, serves those too."""
    from ...types import QWEN_MODELS, WAN_MODELS

    return WAN_MODELS + (QWEN_MODELS if preset.family == "qwen_image" else ())


def is_top_tier(model: str) -> bool:
    return model.endswith(("-pro", "-max"))


def fits(preset: Preset, gpu_bytes: int | None, ram_bytes: int) -> bool:
    """Whether the preset's weights fit where they run: GPU memory for cuda presets, RAM on cpu."""
    if preset.device == "cpu":
        return preset.memory_bytes <= ram_bytes
    return gpu_bytes is not None and preset.memory_bytes <= gpu_bytes


def machine_memory() -> tuple[int | None, int, str]:
    """(GPU memory of device 0 or None, RAM, a label): what `wanimage presets` compares with."""
    import psutil
    import torch

    ram = psutil.virtual_memory().total
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return props.total_memory, ram, f"{props.name}, {props.total_memory / GB:.0f} GB"
    return None, ram, f"no CUDA GPU; {ram / GB:.0f} GB RAM"
