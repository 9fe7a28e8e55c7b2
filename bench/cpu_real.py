"""wanimage's CPU preset beside the fastest CPU engines, in one run: SD-Turbo's architecture (and
TAESD's, and SDXS-512's where a preset serves it) built in code with random weights at full size,
saved where `wanimage pull` puts them, and timed at 512x512, one step, median of 3 after a warm-up
(`--interleave`: every path started first, then one image of each in turn, so that all of them meet
the same moments of a shared machine; they are all resident at once):

    wanimage           `wanimage serve --preset sd-turbo` as a user runs it: a real DashScope
                       HTTP request, the image downloaded; its defaults: OpenVINO where installed,
                       int8 MatMul weights, TAESD (the IR made beforehand, as `wanimage pull` does)
    wanimage-fp16      the same with `quantize = "none"`: the float16 IR
    wanimage-int8      the same with the preset's int8 before int8 convolutions: MatMul weights only
    wanimage-torch     the same with `backend = "torch"` (bfloat16, torchao int8, channels_last)
    wanimage-taesd     torch, TAESD's AutoencoderTiny swapped into the pulled folder
    wanimage-sdxs      `serve --preset sdxs-512`, when `wanimage presets` lists it
    wanimage-sdxs-torch      the same with `backend = "torch"`
    diffusers-fp32     StableDiffusionPipeline, float32, eager (no server)
    diffusers-bf16     the same under torch.autocast("cpu", bfloat16)
    ov                 OpenVINO through optimum-intel (FastSD CPU's engine), default precision
    ov-taesd           OpenVINO with TAESD's decoder exported into vae_decoder/ (FastSD CPU's mode)
    ov-int8-taesd      OpenVINO, int8 weights (NNCF weight-only), TAESD
    sdcpp-q8-taesd     stable-diffusion.cpp (stable-diffusion-cpp-python), q8_0 weights, TAESD
    sdcpp-f32          stable-diffusion.cpp, float32, the SD VAE

Speed and memory do not depend on the weight values, so these are the models' costs on this CPU;
the images are noise. Nothing is downloaded. Every path runs in a process of its own: the server
(and the diffusers paths) with this venv's Python, the peers with `.venv-peers` (`make peers`),
so they never import into the server's venv. Per image: wall seconds and CPU core-seconds (the
child's rusage, every thread); per path: the child's peak RSS (ru_maxrss from wait4; for a server,
its VmHWM just before it is stopped: the peak while serving, its shutdown left out). The table
gives each path's CPU core-seconds over the fastest peer's (every path that is not wanimage).

    make peers
    flock /tmp/wanimage-heavy.lock nice -n 10 .venv/bin/python bench/cpu_real.py
    .venv/bin/python bench/cpu_real.py --paths wanimage diffusers-fp32 --skip-peers
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a red apple on a table"
PROMPT_ZH = "桌子上的一个红苹果"  # --chinese: the wanimage paths' prompt (translated by the preset's MarianMT)
SD_TURBO = "stabilityai/sd-turbo"
TAESD = "madebyollin/taesd"
SDXS = "IDKiro/sdxs-512-0.9"
ZH_EN = "Helsinki-NLP/opus-mt-zh-en"
READY, DONE = "CPU_REAL_READY", "CPU_REAL_DONE "  # a child's protocol lines (serve_images)


@dataclass(frozen=True)
class PathSpec:
    name: str
    label: str
    kind: str  # "server": wanimage serve; "torch": a child in this venv; "peer": a child in .venv-peers
    peer: bool  # counts for "the fastest peer"
    preset: str = "sd-turbo"  # server paths: `wanimage serve --preset`
    config: str = ""  # server paths: an engine config file's [defaults] on top of the preset's keys


PATHS: dict[str, PathSpec] = {p.name: p for p in (
    PathSpec("wanimage", "wanimage `serve --preset sd-turbo`", "server", False),
    PathSpec("wanimage-fp16", "wanimage `serve --preset sd-turbo`, `quantize = \"none\"` (float16 IR)", "server",
             False, config='quantize = "none"\n'),
    PathSpec("wanimage-int8", "wanimage `serve --preset sd-turbo`, `quantize = { unet = \"int8\", text_encoder = "
             "\"int8\" }` (int8 MatMul weights, float16 convolutions)", "server", False,
             config='quantize = { unet = "int8", text_encoder = "int8" }\n'),
    PathSpec("wanimage-torch", "wanimage `serve --preset sd-turbo`, `backend = \"torch\"`", "server", False,
             config='backend = "torch"\n'),
    PathSpec("wanimage-taesd", "wanimage torch, TAESD swapped into the pulled folder", "server", False,
             config='backend = "torch"\n'),
    PathSpec("wanimage-sdxs", "wanimage `serve --preset sdxs-512`", "server", False, "sdxs-512"),
    PathSpec("wanimage-sdxs-torch", "wanimage `serve --preset sdxs-512`, `backend = \"torch\"`", "server", False,
             "sdxs-512", 'backend = "torch"\n'),
    PathSpec("diffusers-fp32", "diffusers float32 eager (no server)", "torch", True),
    PathSpec("diffusers-bf16", "diffusers bfloat16 autocast (no server)", "torch", True),
    PathSpec("ov", "OpenVINO (optimum-intel), default precision", "peer", True),
    PathSpec("ov-taesd", "OpenVINO + TAESD, default precision (FastSD CPU's mode)", "peer", True),
    PathSpec("ov-int8-taesd", "OpenVINO int8 weights + TAESD", "peer", True),
    PathSpec("sdcpp-q8-taesd", "stable-diffusion.cpp q8_0 + TAESD", "peer", True),
    PathSpec("sdcpp-f32", "stable-diffusion.cpp f32, SD VAE", "peer", True),
)}
DEFAULT_PATHS = [p for p in PATHS if p != "sdcpp-f32"]  # f32 takes minutes per image: ask for it


# ---------------------------------------------------------------------------------- the table


@dataclass
class Row:
    path: str
    label: str
    peer: bool
    walls: list[float] = field(default_factory=list)  # seconds per image
    cpus: list[float] = field(default_factory=list)  # CPU core-seconds per image
    peak_rss: int = 0  # bytes
    exit_rss: int = 0  # bytes, server paths: wait4's figure, which also counts the process's shutdown
    note: str = ""
    error: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(self.walls) if self.walls else float("nan")

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus) if self.cpus else float("nan")


def fastest_peer(rows: list[Row]) -> Row | None:
    """The measured peer with the fewest CPU core-seconds per image (any measured row without peers)."""
    measured = [r for r in rows if r.cpus and not r.error]
    pool = [r for r in measured if r.peer] or measured
    return min(pool, key=lambda r: r.cpu) if pool else None


def ratios(rows: list[Row]) -> dict[str, float]:
    """path -> its CPU core-seconds per image over the fastest peer's."""
    best = fastest_peer(rows)
    if best is None:
        return {}
    return {r.path: r.cpu / best.cpu for r in rows if r.cpus and not r.error}


def paired(row: Row, best: Row) -> float | None:
    """With --interleave, the median over rounds of this path's CPU time over the fastest peer's in
    the same round: the machine's speed changes from one minute to the next, a round's ratio much less."""
    if len(row.cpus) != len(best.cpus) or not row.cpus:
        return None
    return statistics.median(a / b for a, b in zip(row.cpus, best.cpus, strict=True))


def table(rows: list[Row], repeats: int = 3, interleaved: bool = False) -> str:
    best = fastest_peer(rows)
    rel = ratios(rows)
    reference = "none" if best is None else best.path if best.peer else f"{best.path}: no peer measured"
    extra = " paired, per round |" if interleaved else ""
    lines = [f"| path (512x512, 1 step, median of {repeats} after a warm-up) | wall s | CPU core-s | peak RSS | "
             f"vs fastest peer ({reference}) |{extra}", "|---|---|---|---|---|" + ("---|" if interleaved else "")]
    for r in rows:
        if r.error or not r.cpus:
            lines.append(f"| {r.label} | failed: {r.error or 'no samples'} | | | |" + (" |" if interleaved else ""))
            continue
        ratio = f"{rel[r.path]:.1f}x" if rel[r.path] >= 1.95 else f"{rel[r.path]:.2f}x"
        if best is not None and r.path == best.path:
            ratio = f"**{ratio}** (fastest)"
        pair = paired(r, best) if interleaved and best is not None else None
        lines.append(f"| {r.label}{' (' + r.note + ')' if r.note else ''} | {r.wall:.2f} | {r.cpu:.1f} | "
                     f"{r.peak_rss / 1e9:.1f} GB | {ratio} |" + (f" {pair:.2f}x |" if pair is not None else
                                                                 " |" if interleaved else ""))
    return "\n".join(lines)


def sdxs_line(rows: list[Row], interleaved: bool) -> str:
    """Issue 24's mark for the SDXS preset: its CPU time over sd-turbo's (paired per round when
    interleaved, else by medians); empty when either path did not run."""
    by_path = {r.path: r for r in rows if r.cpus and not r.error}
    sdxs, turbo = by_path.get("wanimage-sdxs"), by_path.get("wanimage")
    if sdxs is None or turbo is None:
        return ""
    pair = paired(sdxs, turbo) if interleaved else None
    return (f"sdxs-512 / sd-turbo through the server: {sdxs.cpu / turbo.cpu:.2f}x by medians"
            + (f", {pair:.2f}x paired per round" if pair is not None else ""))


# ------------------------------------------------------------------------ weights, built in code


def taesd_model():
    """TAESD (madebyollin/taesd): diffusers' AutoencoderTiny defaults are its config."""
    from diffusers import AutoencoderTiny

    return AutoencoderTiny(encoder_block_out_channels=(64, 64, 64, 64), decoder_block_out_channels=(64, 64, 64, 64),
                           num_encoder_blocks=(1, 3, 3, 3), num_decoder_blocks=(3, 3, 3, 1), act_fn="relu",
                           latent_channels=4, latent_magnitude=3, latent_shift=0.5, scaling_factor=1.0).eval()


def sdxs_pipeline():
    """SDXS-512's shape: SD 2.1's text encoder, the block-pruned UNet of sd_turbo_cpu.sdxs_unet (an
    estimate: its config.json could not be read here) and a tiny decoder."""
    pipe = sd_turbo_pipeline()
    from sd_turbo_cpu import sdxs_unet

    pipe.unet = sdxs_unet()
    pipe.vae = taesd_model()
    return pipe


def sd_turbo_pipeline():
    sys.path.insert(0, str(ROOT / "bench"))
    from sd_turbo_cpu import sd_turbo_pipeline as build  # the architecture, written once

    return build()


def translator_folder(folder: Path, variant: str | None) -> None:
    """opus-mt-zh-en's shape with random weights (the tests' tokenizer, its vocabulary padded to the
    model's 65001 pieces): what a Chinese prompt loads, at its real size."""
    sys.path.insert(0, str(ROOT))
    from tests.support.tiny_marian import tiny_marian

    tiny_marian(folder, full_size=True)
    shutil.rmtree(folder.parent / (folder.name + ".raw"))


def save_pulled(models: Path, repo: str, save, variant: str | None) -> Path:
    """A folder as `wanimage pull` leaves it: the files, then the manifest."""
    import torch

    from wanimage.engines.diffusers.models_dir import folder_name, read_manifest, write_manifest

    folder = models / folder_name(repo)
    if read_manifest(folder):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with torch.no_grad():
        save(folder, variant)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    write_manifest(folder, repo, None, "bench/cpu_real.py (random weights)", files)
    return folder


def build_models(work: Path, repos: list[str]) -> None:
    """Each repository the presets served here name (plus SD-Turbo and TAESD, which the peers use)."""
    import torch

    from wanimage.engines.diffusers.models_dir import folder_name, write_manifest
    from wanimage.engines.diffusers.presets import REPOS

    models = work / "models"

    def saver(pipe_or_model):  # the published files: fp16 where the pulled variant is fp16, else float32
        return lambda folder, variant: pipe_or_model.to(torch.float16 if variant == "fp16" else torch.float32
                                                        ).save_pretrained(folder, variant=variant)

    builders = {SD_TURBO: lambda: saver(sd_turbo_pipeline()), TAESD: lambda: saver(taesd_model()),
                SDXS: lambda: saver(sdxs_pipeline()), ZH_EN: lambda: translator_folder}
    for repo in dict.fromkeys([SD_TURBO, TAESD, *repos]):
        if repo not in builders:
            print(f"  {repo}: no builder here (another preset's); not built", flush=True)
            continue
        variant = REPOS[repo].variant if repo in REPOS else ("fp16" if repo == SD_TURBO else None)
        started = time.monotonic()
        save_pulled(models, repo, lambda folder, v, b=builders[repo]: b()(folder, v), variant)
        print(f"  {repo}: {time.monotonic() - started:.0f}s", flush=True)
    # wanimage-taesd: the pulled sd-turbo folder with TAESD in vae/ (files linked, not copied)
    swapped = work / "models-taesd" / folder_name(SD_TURBO)
    if not (swapped / ".wanimage-pull.json").exists():
        shutil.rmtree(swapped, ignore_errors=True)
        shutil.copytree(models / folder_name(SD_TURBO), swapped, copy_function=os.link,
                        ignore=shutil.ignore_patterns("vae", ".wanimage-pull.json"))
        taesd_model().to(torch.float16).save_pretrained(swapped / "vae", variant="fp16")
        index = json.loads((swapped / "model_index.json").read_text())
        index["vae"] = ["diffusers", "AutoencoderTiny"]
        (swapped / "model_index.json").unlink()  # a link to the pulled folder's file: write a new one
        (swapped / "model_index.json").write_text(json.dumps(index, indent=2))
        files = sorted(p.relative_to(swapped).as_posix() for p in swapped.rglob("*") if p.is_file())
        write_manifest(swapped, SD_TURBO, None, "bench/cpu_real.py (random weights, TAESD in vae/)", files)
    for other in models.iterdir():  # the preset's other repositories, beside it
        if other.name != folder_name(SD_TURBO) and not (swapped.parent / other.name).exists():
            (swapped.parent / other.name).symlink_to(other, target_is_directory=True)


# ------------------------------------------------------------------------------ child processes


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process, every thread
    return usage.ru_utime + usage.ru_stime


def serve_images(generate) -> None:
    """The child's side of the protocol: a warm-up image (first-call allocations, kernel selection,
    compilation), READY, then one image per seed read from stdin, answered with its wall and CPU
    seconds, until stdin closes."""
    generate(0)
    print(READY, flush=True)
    for line in sys.stdin:
        wall, cpu = time.perf_counter(), cpu_seconds()
        generate(int(line))
        print(f"{DONE}{time.perf_counter() - wall} {cpu_seconds() - cpu}", flush=True)


def child_torch(path: str, args):
    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(args.folder, variant="fp16", torch_dtype=torch.float32,
                                                   safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)

    def generate(seed: int):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=path == "diffusers-bf16"):
            return pipe(PROMPT, num_inference_steps=1, guidance_scale=0.0, height=args.size, width=args.size,
                        generator=torch.Generator("cpu").manual_seed(seed)).images[0]

    return generate


def ov_export(args) -> None:
    """The OpenVINO folders, made once: default precision, int8 weights, and each with TAESD's
    decoder in vae_decoder/ (optimum-intel builds pipe.vae when it loads, so a decoder assigned
    afterwards is ignored: it has to be in the folder)."""
    import openvino as ov
    import torch
    from diffusers import AutoencoderTiny, StableDiffusionPipeline
    from optimum.intel import OVStableDiffusionPipeline, OVWeightQuantizationConfig

    work = Path(args.work)
    fp32 = work / "peers" / "sd-turbo-fp32"  # optimum exports from the default (non-variant) files
    if not (fp32 / "model_index.json").exists():
        StableDiffusionPipeline.from_pretrained(args.folder, variant="fp16", torch_dtype=torch.float32,
                                                safety_checker=None, requires_safety_checker=False
                                                ).save_pretrained(fp32)
    for name, quant in (("ov", None), ("ov-int8", OVWeightQuantizationConfig(bits=8))):
        out = work / "peers" / name
        if not (out / "model_index.json").exists():
            started = time.monotonic()
            pipe = OVStableDiffusionPipeline.from_pretrained(fp32, export=True, compile=False,
                                                             quantization_config=quant)
            pipe.save_pretrained(out)
            del pipe
            print(f"  exported {name}: {time.monotonic() - started:.0f}s", flush=True)
        tiny = work / "peers" / f"{name}-taesd"
        if (tiny / "model_index.json").exists():
            continue
        shutil.copytree(out, tiny, copy_function=os.link, ignore=shutil.ignore_patterns("vae_decoder"))
        taesd = AutoencoderTiny.from_pretrained(args.taesd, torch_dtype=torch.float32).eval()

        class Decoder(torch.nn.Module):
            def __init__(self, tiny):
                super().__init__()
                self.tiny = tiny

            def forward(self, latent_sample):
                return self.tiny.decode(latent_sample).sample  # [-1, 1], as the SD VAE's decoder gives

        with torch.no_grad():
            model = ov.convert_model(Decoder(taesd), example_input={"latent_sample": torch.randn(1, 4, 64, 64)})
        model.inputs[0].get_tensor().set_names({"latent_sample"})
        model.outputs[0].get_tensor().set_names({"sample"})
        (tiny / "vae_decoder").mkdir()
        ov.save_model(model, tiny / "vae_decoder" / "openvino_model.xml")
        config = dict(taesd.config)  # scaling_factor 1.0: the pipeline divides the latents by it
        config["_class_name"] = "AutoencoderTiny"
        (tiny / "vae_decoder" / "config.json").write_text(json.dumps(config, indent=2, default=list))


def child_ov(path: str, args):
    import torch
    from optimum.intel import OVStableDiffusionPipeline

    folder = Path(args.work) / "peers" / {"ov": "ov", "ov-taesd": "ov-taesd", "ov-int8-taesd": "ov-int8-taesd"}[path]
    pipe = OVStableDiffusionPipeline.from_pretrained(folder, compile=False)
    # static height and width, as FastSD CPU does; a static batch would be 2 (optimum assumes guidance)
    pipe.reshape(batch_size=-1, height=args.size, width=args.size, num_images_per_prompt=1)
    pipe.compile()
    pipe.set_progress_bar_config(disable=True)

    def generate(seed: int):
        return pipe(PROMPT, num_inference_steps=1, guidance_scale=0.0, height=args.size, width=args.size,
                    generator=torch.Generator("cpu").manual_seed(seed)).images[0]

    return generate


def unet_to_original(state: dict) -> dict:
    """diffusers' UNet names -> the original SD 2.x checkpoint's (model.diffusion_model.*)."""
    blocks = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
              ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
              ("mid_block.attentions.0.", "middle_block.1.")]
    blocks += [(f"mid_block.resnets.{j}.", f"middle_block.{2 * j}.") for j in range(2)]
    for i in range(4):
        for j in range(2):
            blocks.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{3 * i + j + 1}.0."))
            if i < 3:
                blocks.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{3 * i + j + 1}.1."))
        for j in range(3):
            blocks.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{3 * i + j}.0."))
            if i > 0:
                blocks.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{3 * i + j}.1."))
        if i < 3:
            blocks.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{3 * (i + 1)}.0.op."))
            blocks.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{3 * i + 2}.{1 if i == 0 else 2}."))
    resnet = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
              ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
    out = {}
    for name, tensor in state.items():
        new = name
        if "resnets" in name:
            for hf, sd in resnet:
                new = new.replace(hf, sd)
        for hf, sd in blocks:
            if new.startswith(hf):
                new = sd + new[len(hf):]
                break
        out["model.diffusion_model." + new] = tensor
    return out


def vae_to_original(state: dict) -> dict:
    """diffusers' AutoencoderKL names -> the original's (first_stage_model.*), attention as 1x1 convs."""
    blocks = []
    for part in ("encoder", "decoder"):
        blocks.append((f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1."))
        blocks += [(f"{part}.mid_block.resnets.{i}.", f"{part}.mid.block_{i + 1}.") for i in range(2)]
    for i in range(4):
        blocks += [(f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.") for j in range(2)]
        blocks += [(f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{3 - i}.block.{j}.") for j in range(3)]
        if i < 3:
            blocks.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."))
            blocks.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{3 - i}.upsample."))
    inner = [("conv_shortcut", "nin_shortcut"), ("conv_norm_out", "norm_out"), ("group_norm.", "norm."),
             ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out.")]
    out = {}
    for name, tensor in state.items():
        new = name
        for hf, sd in blocks:
            if new.startswith(hf):
                new = sd + new[len(hf):]
                break
        for hf, sd in inner:
            new = new.replace(hf, sd)
        if ".attn_1." in new and new.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            tensor = tensor.reshape(*tensor.shape, 1, 1)
        out["first_stage_model." + new] = tensor
    return out


def sdcpp_checkpoint(args) -> Path:
    """stable-diffusion.cpp tells SD 2.x from a single-file checkpoint in the original layout (its
    diffusers-folder loader knows SD 1.x and SDXL only): the pulled fp16 files, renamed, made once."""
    from safetensors.torch import load_file, save_file

    out = Path(args.work) / "peers" / "sd-turbo-original.safetensors"
    if out.exists():
        return out
    src = Path(args.folder)
    state = unet_to_original(load_file(src / "unet" / "diffusion_pytorch_model.fp16.safetensors"))
    state |= vae_to_original(load_file(src / "vae" / "diffusion_pytorch_model.fp16.safetensors"))
    text = load_file(src / "text_encoder" / "model.fp16.safetensors")  # transformers 5 drops "text_model."
    state |= {"cond_stage_model.transformer." + (k if k.startswith("text_model.") else "text_model." + k): v
              for k, v in text.items()}
    save_file({k: v.contiguous() for k, v in state.items()}, out.with_suffix(".tmp"))
    out.with_suffix(".tmp").rename(out)
    return out


def child_sdcpp(path: str, args):
    from stable_diffusion_cpp import StableDiffusion

    taesd = ""
    if path == "sdcpp-q8-taesd":
        taesd = str(next(Path(args.taesd).glob("diffusion_pytorch_model*.safetensors")))
    sd = StableDiffusion(model_path=str(sdcpp_checkpoint(args)), taesd_path=taesd, vae_decode_only=True,
                         wtype="q8_0" if path == "sdcpp-q8-taesd" else "f32", n_threads=os.cpu_count(),
                         verbose=True)

    def generate(seed: int):
        return sd.generate_image(PROMPT, width=args.size, height=args.size, sample_steps=1, cfg_scale=1.0,
                                 sample_method="euler", seed=seed)

    return generate


def run_child(args) -> None:
    path = args.child
    if path == "build":
        build_models(Path(args.work), args.repos)
        return
    if path == "ov-export":
        ov_export(args)
        return
    if path == "prepare":  # --folder: the models directory, --repos: the preset
        from wanimage.engines.diffusers.openvino_backend import convert_ahead
        from wanimage.engines.diffusers.preset_config import preset_configs

        config = os.environ.get("WANIMAGE_ENGINE_CONFIG")
        configs = preset_configs(args.repos[0], Path(args.folder), Path(args.folder), Path(config) if config else None)
        if any(c.backend == "openvino" for c in configs.values()):
            convert_ahead(configs)
        return
    fn = child_torch if PATHS[path].kind == "torch" else child_ov if path.startswith("ov") else child_sdcpp
    serve_images(fn(path, args))


SRC = ROOT / "src"  # the wanimage sources the server and the build run (--src)


def this_checkout() -> dict:
    """The environment that runs this checkout's wanimage (the venv's editable install may point elsewhere)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}


def spawn(cmd: list[str], log: Path, env: dict | None = None) -> int:
    """Run a child to its end (building, exporting, preparing), its output in `log`: its exit status."""
    with open(log, "w") as out:
        return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode


class ChildPath:
    """A torch or peer path: a child process that loads its pipeline, makes a warm-up image, then
    one image per seed it is sent (serve_images)."""

    def __init__(self, spec: PathSpec, args, python: str, folder: Path, work: Path):
        self.row = Row(spec.name, spec.label, spec.peer)
        self.log = work / "logs" / f"{spec.name}.log"
        self.cmd = [python, str(Path(__file__).resolve()), "--child", spec.name, "--folder", str(folder),
                    "--src", str(SRC), "--taesd", str(work / "models" / "madebyollin--taesd"), "--work", str(work),
                    "--size", str(args.size)]
        self.env = this_checkout() if spec.kind == "torch" else None
        self.proc = None

    def start(self) -> None:
        self.stderr = open(self.log, "w")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=self.env, cwd=ROOT, text=True)
        for line in self.proc.stdout:  # its own prints (sd.cpp's) go by; READY ends the warm-up
            if READY in line:
                return
        raise RuntimeError(f"exit {self.proc.wait()} before its first image")

    def one(self, seed: int) -> None:
        self.proc.stdin.write(f"{seed}\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if DONE in line:  # after whatever a library printed without a newline
                wall, cpu = line.split(DONE, 1)[1].split()
                self.row.walls.append(float(wall))
                self.row.cpus.append(float(cpu))
                return
        raise RuntimeError(f"exit {self.proc.wait()} during an image")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.stdin.close()
        try:
            _, _, usage = os.wait4(self.proc.pid, 0)
            self.row.peak_rss = usage.ru_maxrss * 1024
        except ChildProcessError:  # reaped already: it failed, no figure to give
            pass
        self.stderr.close()


def tail(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:160]


# ------------------------------------------------------------------------------------ the server


def dashscope_call(base: str, size: str, seed: int, prompt: str = PROMPT):
    import httpx

    body = {"model": "wan2.7-image",
            "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
            "parameters": {"size": size, "seed": seed, "n": 1, "thinking_mode": False, "watermark": False}}
    return httpx.post(base + "/api/v1/services/aigc/multimodal-generation/generation", json=body, timeout=900)


def process_cpu(pid: int) -> float:
    """CPU seconds of a running process, every thread (its children's too, when waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime


def wait_up(base: str, proc: subprocess.Popen, timeout: float = 900) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before answering")
        try:
            if httpx.get(base + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"no answer from {base}/health in {timeout:.0f}s")


class ServerPath:
    """A wanimage path: `wanimage serve --preset` in a process of its own (its IR made beforehand, as
    `wanimage pull` does), a warm-up request, then one DashScope request per seed, the image downloaded."""

    def __init__(self, spec: PathSpec, args, models: Path, work: Path):
        self.spec, self.args, self.models, self.work = spec, args, models, work
        self.row = Row(spec.name, spec.label, spec.peer)
        self.log = work / "logs" / f"{spec.name}.log"
        self.proc = None

    def start(self) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.support.server import free_port

        spec, work = self.spec, self.work
        data = work / f"data-{spec.name}"
        shutil.rmtree(data, ignore_errors=True)
        env = {**this_checkout(), "WANIMAGE_MODELS_DIR": str(self.models)}
        if spec.config:  # the preset's keys with these on top (docs/diffusers.md "OpenVINO backend")
            (work / f"{spec.name}.toml").write_text("[defaults]\n" + spec.config)
            env["WANIMAGE_ENGINE_CONFIG"] = str(work / f"{spec.name}.toml")
        # what `wanimage pull` does after downloading (the translator is not built here, so not pull itself):
        # the OpenVINO IR made in a process of its own, not timed and not in the server's peak
        prepared = work / "logs" / f"{spec.name}-prepare.log"
        if spawn([sys.executable, str(Path(__file__).resolve()), "--child", "prepare", "--work", str(work),
                  "--src", str(SRC), "--folder", str(self.models), "--repos", spec.preset], prepared, env) != 0:
            raise RuntimeError(f"preparing the IR failed: {tail(prepared)}")
        port = free_port()
        cmd = [str(Path(sys.executable).parent / "wanimage"), "--log-level", "warning", "serve", "--preset",
               spec.preset, "--data-dir", str(data), "--port", str(port)]
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.base = f"http://127.0.0.1:{port}"
        wait_up(self.base, self.proc)
        self.size = f"{self.args.size}*{self.args.size}"
        if dashscope_call(self.base, self.size, 0).status_code == 400:  # below the model's floor: the smallest
            self.size = "768*768"
            self.row.note = f"asked {self.size}: the API's floor"
        self.request(0)  # the warm-up

    def request(self, seed: int) -> bytes:
        import httpx

        answer = dashscope_call(self.base, self.size, seed, PROMPT_ZH if self.args.chinese else PROMPT)
        answer.raise_for_status()
        url = answer.json()["output"]["choices"][0]["message"]["content"][0]["image"]
        image = httpx.get(url, timeout=60)
        image.raise_for_status()
        return image.content

    def one(self, seed: int) -> None:
        wall, cpu = time.perf_counter(), process_cpu(self.proc.pid)
        image = self.request(seed)
        self.row.walls.append(time.perf_counter() - wall)
        self.row.cpus.append(process_cpu(self.proc.pid) - cpu)
        if len(self.row.walls) == 1:
            from io import BytesIO

            from PIL import Image

            drawn = Image.open(BytesIO(image)).size
            self.row.note = ", ".join(filter(None, [self.row.note, f"image {drawn[0]}x{drawn[1]}"]))

    def stop(self) -> None:
        """The server's peak while it served (VmHWM read before it is stopped; its shutdown, freeing
        the engines, added up to 0.14 GB in some runs and none in others), then stopped."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.row.peak_rss = serving_peak(self.proc.pid)
            self.proc.send_signal(signal.SIGINT)
        try:
            _, _, usage = os.wait4(self.proc.pid, 0)
            self.row.exit_rss = usage.ru_maxrss * 1024
        except ChildProcessError:  # already reaped by poll(): it failed, no figure to give
            pass


def serving_peak(pid: int) -> int:
    """Bytes: the process's peak resident set so far (VmHWM), 0 where /proc cannot say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_paths(runners: list, repeats: int, interleave: bool, loads: list[float]) -> None:
    """Each path started (and warmed up), `repeats` images, stopped: one path after the other, or
    (interleave) all started first, then one image of each in turn, so that every path meets the
    same moments of a shared machine (the order rotated each round: in one process, a model run
    first in its round measured about 9 % slower than the same model run later). A path that fails keeps its error; the others go on."""
    def attempt(runner, step, *a) -> bool:
        if runner.row.error:
            return False
        try:
            step(*a)
            return True
        except Exception as exc:  # a failed path is a row that says why
            runner.row.error = f"{type(exc).__name__}: {str(exc)[:120]}; see {runner.log}: {tail(runner.log)}"
            runner.stop()
            return False

    def report(runner) -> None:
        row = runner.row
        loads.append(os.getloadavg()[0])
        exit_rss = f" (to its exit: {row.exit_rss / 1e9:.2f})" if row.exit_rss else ""
        print(f"  {row.path}: {row.error or f'wall {row.wall:.2f} s, CPU {row.cpu:.1f} core-s, peak RSS {row.peak_rss / 1e9:.2f} GB{exit_rss}'}"
              f"; load {loads[-1]:.1f}", flush=True)

    groups = [runners] if interleave else [[r] for r in runners]
    for group in groups:
        for runner in group:
            print(f"{runner.row.path} ...", flush=True)
            attempt(runner, runner.start)
        for seed in range(1, repeats + 1):
            turn = seed % len(group)  # the order rotates: no path is always first in its round
            for runner in group[turn:] + group[:turn]:
                attempt(runner, runner.one, seed)
        for runner in group:
            if not runner.row.error:
                runner.stop()
            report(runner)


# ----------------------------------------------------------------------------------------- main


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def served_presets() -> set[str]:
    run = subprocess.run([str(Path(sys.executable).parent / "wanimage"), "presets", "--json"], capture_output=True,
                         text=True, cwd=ROOT, timeout=300, env=this_checkout())
    return {p["name"] for p in json.loads(run.stdout)["presets"]} if run.returncode == 0 else {"sd-turbo"}


def main() -> None:
    global SRC
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=DEFAULT_PATHS)
    parser.add_argument("--skip-peers", action="store_true", help="leave out the .venv-peers paths")
    parser.add_argument("--peers-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--work", default=str(ROOT / ".cache" / "cpu-real"), help="weights and logs (kept)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--interleave", action="store_true",
                        help="start every path first, then one image of each in turn (all resident at once: mind the RAM)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--chinese", action="store_true",
                        help="the wanimage paths ask in Chinese (the preset's translator loads); the peers in English")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--src", default=str(SRC), help="the wanimage sources to serve (another checkout's src/)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--taesd", help=argparse.SUPPRESS)
    parser.add_argument("--repos", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    SRC = Path(args.src).resolve()
    if args.child:
        return run_child(args)

    work = Path(args.work).resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    paths = [p for p in args.paths if not (args.skip_peers and PATHS[p].kind == "peer")]
    if any(PATHS[p].kind == "peer" for p in paths) and not Path(args.peers_python).exists():
        sys.exit(f"{args.peers_python} is missing: run `make peers`, or pass --skip-peers")
    presets = served_presets()
    for name in [p for p in paths if PATHS[p].kind == "server" and PATHS[p].preset not in presets]:
        print(f"no {PATHS[name].preset} preset in `wanimage presets`: {name} left out", flush=True)
        paths.remove(name)
    sys.path.insert(0, str(SRC))  # the served checkout's presets
    from wanimage.engines.diffusers.presets import PRESETS

    repos = [r for name in ("sd-turbo", "sdxs-512") if name in PRESETS and name in presets for r in PRESETS[name].repos]
    print(f"{cpu_name()}, {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; building weights in {work}",
          flush=True)
    # built in a child: the weights' memory goes with it
    status = spawn([sys.executable, str(Path(__file__).resolve()), "--child", "build", "--work", str(work),
                    "--src", str(SRC), "--repos", *repos], work / "logs" / "build.log", this_checkout())
    print((work / "logs" / "build.log").read_text(), end="", flush=True)
    if status != 0:
        sys.exit(f"building the weights failed: see {work / 'logs' / 'build.log'}")
    folder = work / "models" / "stabilityai--sd-turbo"
    if any(p.startswith("ov") for p in paths):
        print("exporting the OpenVINO folders (once)", flush=True)
        status = spawn([args.peers_python, str(Path(__file__).resolve()), "--child", "ov-export", "--folder",
                        str(folder), "--taesd", str(work / "models" / "madebyollin--taesd"), "--work", str(work)],
                       work / "logs" / "ov-export.log")
        if status != 0:
            print(f"OpenVINO export failed: {tail(work / 'logs' / 'ov-export.log')}", flush=True)

    runners, loads = [], []
    for name in paths:
        spec = PATHS[name]
        if spec.kind == "server":
            runners.append(ServerPath(spec, args, work / ("models-taesd" if name == "wanimage-taesd" else "models"), work))
        else:
            runners.append(ChildPath(spec, args, sys.executable if spec.kind == "torch" else args.peers_python,
                                     folder, work))
    run_paths(runners, args.repeats, args.interleave, loads)
    rows = [r.row for r in runners]
    print()
    print(f"{time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} CPUs, {args.size}x{args.size}, 1 step; "
          f"load average (1 min) as each path ended: {', '.join(f'{x:.1f}' for x in loads)}")
    print(table(rows, args.repeats, args.interleave))
    print(sdxs_line(rows, args.interleave))
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows], indent=1))


if __name__ == "__main__":
    main()
