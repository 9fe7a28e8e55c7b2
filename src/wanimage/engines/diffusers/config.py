"""The engine config file (TOML or YAML): which family and which checkpoint serve each API model
id, per mode, and the memory switches. Documented in docs/diffusers.md; a sample is
examples/engines.toml.

    [defaults]                        # optional; every key of a model may be set here
    dtype = "bfloat16"
    offload = "none"                  # none | model | sequential

    [models."wan2.7-image"]
    family = "qwen_image"
    serves = ["qwen-image", "qwen-image-max"]         # optional: more ids served the same way
    text_to_image = "Qwen/Qwen-Image"                 # a Hub id or a local directory
    edit = "Qwen/Qwen-Image-Edit-2509"
    inpaint = { checkpoint = "Qwen/Qwen-Image-Edit-2509", pipeline = "QwenImageEditInpaintPipeline" }

A role left out means the model does not offer the modes that need it; the API then answers a
clear InvalidParameter naming the model and the mode. Every value is checked here, as the file is
parsed, whatever the device; what a device can run is checked where the engine is built
(acceleration.py, parallel.py)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .families import FAMILIES

ROLES = ("text_to_image", "edit", "inpaint", "refine")
DTYPE_NAMES = ("auto", "bfloat16", "float16", "float32")
OFFLOAD = ("none", "model", "sequential")
STRATEGIES = ("stitch", "error")
CACHES = ("none", "first_block", "taylorseer", "cache_dit")
# families whose diffusers 0.42.1 denoiser has the cache hooks (CacheMixin.enable_cache); Z-Image's
# and the UNets' have none (first_block fails on Z-Image's block signature, TaylorSeer finds no layers)
CACHE_FAMILIES = ("qwen_image", "flux", "flux2", "wan")
QUANTIZATIONS = {  # name -> torchao config class
    "int8": "Int8WeightOnlyConfig",
    "int8_dynamic": "Int8DynamicActivationInt8WeightConfig",  # int8 matmuls (VNNI on a CPU); measured no faster here
    "fp8": "Float8WeightOnlyConfig",
    "fp8_dynamic": "Float8DynamicActivationFloat8WeightConfig",  # FP8 matmuls: fastest on Hopper
}
QUANTIZABLE = ("transformer", "unet", "text_encoder", "text_encoder_2", "text_encoder_3")
# backend = "openvino" (openvino_backend.py): the families whose modules it converts, and the keys
# that act on torch modules and so mean nothing there
BACKENDS = ("torch", "openvino")
OPENVINO_FAMILIES = ("sd",)
# what `quantize` means there: the IR's weights compressed by NNCF (weight-only int8), per component;
# int8_hybrid (the UNet): its convolutions in int8, weights and activations, calibrated (openvino_calibrate.py)
OPENVINO_QUANTIZATIONS = ("int8", "int8_hybrid")
# `transformer`: the denoiser, a UNet here; `vae`: its decoder's convolutions (int8_hybrid only)
OPENVINO_QUANTIZABLE = ("transformer", "unet", "text_encoder", "vae")
# families whose diffusers 0.42.1 transformer has a context-parallel plan (`_cp_plan`); Z-Image's and
# the UNets' have none
CP_FAMILIES = ("qwen_image", "flux", "flux2", "wan")


class EngineConfigError(ValueError):
    """The engine config file is malformed: the message names the file, the key and the fix."""


class AccelerationError(EngineConfigError):
    """An acceleration option this device or installation cannot run: the message says which
    option, why, and what to set or install instead."""


@dataclass(frozen=True)
class Checkpoint:
    source: str  # local directory, Hub id, or "tiny:<family>[:variant]" (random weights, tests)
    pipeline: str | None = None  # diffusers class name; None: the family's default for the role
    revision: str | None = None
    variant: str | None = None  # e.g. "fp16" weight files
    steps: int | None = None  # this role's steps, over the model's (e.g. FLUX.1-Fill's 50 beside schnell's 4)
    guidance: float | None = None  # this role's guidance, over the model's

    @property
    def is_tiny(self) -> bool:
        return self.source.startswith("tiny:")

    @property
    def is_local(self) -> bool:
        return self.source.startswith(("/", "./", "../", "~")) or Path(self.source).expanduser().exists()


@dataclass(frozen=True)
class ModelConfig:
    family: str
    roles: dict[str, Checkpoint] = field(default_factory=dict)
    # sampling
    steps: int | None = None  # None: the family's default
    guidance: float | None = None
    true_cfg: float | None = None  # Qwen-Image: classifier-free guidance with negative_prompt
    negative_prompt: str | None = None
    # sizes and inputs
    max_generate_pixels: int | None = None  # generate at most this, then upscale to the job size
    refine_strength: float = 0.0  # > 0: img2img second pass at the job size after upscaling
    max_references: int | None = None  # references per edit call; None: the family's default
    reference_strategy: str = "stitch"  # beyond max_references: stitch | error
    reference_pixels: int = 1024 * 1024  # each reference is downscaled to at most this
    chain_sets: bool = True  # image i > 1 of a set is conditioned on image 1 (when the family edits)
    feather: int | None = None  # bbox mask feather in pixels inside the box; None: 1/16 of the box
    palette_prompt: bool = True  # append the palette to the prompt
    translator: str | None = None  # a MarianMT zh->en folder: Chinese prompts for CLIP families (translate.py)
    call_kwargs: dict = field(default_factory=dict)  # extra arguments for every pipeline call
    # memory
    device: str | None = None  # None: Settings.device
    dtype: str | None = None  # None or "auto": bfloat16 on cuda and on CPUs with native bfloat16, else float32
    vae: str | None = None  # a tiny autoencoder (AutoencoderTiny folder, Hub id, "tiny:taesd") in the VAE's
    # place; None or "full": the checkpoint's own VAE
    offload: str = "none"
    vae_tiling: bool = False
    vae_slicing: bool = False
    idle_unload_seconds: float = 0.0  # 0: stay resident
    preload: bool = False  # load every role at start-up instead of on first use
    attention_slicing: bool = False
    channels_last: bool = False  # convolutions in NHWC (CPU: 3 % less time for sd-turbo, measured)
    compile: bool = False  # torch.compile the repeated transformer blocks (acceleration.py)
    backend: str = "torch"  # "openvino": the UNet, text encoder and VAE run in OpenVINO on the CPU (openvino_backend.py)
    # acceleration (acceleration.py, docs/diffusers.md "Acceleration"): each off unless set
    compile_mode: str | None = None  # torch.compile mode, e.g. "max-autotune-no-cudagraphs"
    compile_backend: str | None = None  # None: inductor
    compile_dynamic: bool = False  # False: one graph per shape (warm up the sizes you serve)
    warmup_sizes: list = field(default_factory=list)  # ["1024*1024"]: compiled at start-up (with preload)
    cache: str = "none"  # none | first_block | taylorseer (diffusers' cache hooks) | cache_dit (cache-dit's DBCache)
    cache_threshold: float = 0.05  # first_block: skip while the first block's residual changes less
    cache_interval: int = 5  # taylorseer: full compute every this many steps
    cache_warmup_steps: int = 3  # taylorseer, cache_dit: full steps before caching starts
    cache_front_blocks: int = 1  # cache_dit: blocks that always run (its Fn_compute_blocks)
    quantize: dict = field(default_factory=dict)  # component -> int8 | fp8 | fp8_dynamic (torchao; OpenVINO: int8 by NNCF)
    attention_backend: str | None = None  # diffusers' set_attention_backend: flash, sage, _native_cudnn, ...
    max_batch: int = 1  # text-to-image: images of one request per pipeline call
    ulysses_degree: int = 1  # context parallelism: one process per rank (parallel.py, ranks.py)
    device_map: str | None = None  # "balanced": a model too big for one GPU, its components spread over all
    ring_degree: int = 1
    parallel_timeout_seconds: float = 600.0  # context parallelism: a collective or a rank's answer, at most

    def role(self, name: str) -> Checkpoint | None:
        return self.roles.get(name)


def parse_size(text: str) -> tuple[int, int] | None:
    parts = str(text).replace("x", "*").split("*")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def parallel_degree(cfg: ModelConfig) -> int:
    """GPUs one image of this model spreads over (context parallelism); 1 when off."""
    return cfg.ulysses_degree * cfg.ring_degree


_SCALARS = {f.name for f in fields(ModelConfig)} - {"family", "roles"}


def _checkpoint(value: Any, where: str) -> Checkpoint:
    if isinstance(value, str):
        return Checkpoint(value)
    if isinstance(value, dict) and isinstance(value.get("checkpoint"), str):
        extra = set(value) - {"checkpoint", "pipeline", "revision", "variant", "steps", "guidance"}
        if extra:
            raise EngineConfigError(f"{where}: unknown keys {sorted(extra)}")
        return Checkpoint(value["checkpoint"], value.get("pipeline"), value.get("revision"), value.get("variant"),
                          value.get("steps"), value.get("guidance"))
    raise EngineConfigError(f"{where}: give a checkpoint (Hub id or path) or a table with `checkpoint = ...`")


def parse_model(model: str, raw: dict, defaults: dict, where: str) -> ModelConfig:
    merged = {**defaults, **raw}
    family = merged.pop("family", None)
    if family not in FAMILIES:
        raise EngineConfigError(f"{where}: `family` must be one of {', '.join(FAMILIES)}, got {family!r}")
    roles = {r: _checkpoint(merged.pop(r), f"{where}.{r}") for r in ROLES if r in merged}
    unknown = set(merged) - _SCALARS
    if unknown:
        raise EngineConfigError(f"{where}: unknown keys {sorted(unknown)}; see docs/diffusers.md")
    if not roles:
        raise EngineConfigError(f"{where}: map at least one of {', '.join(ROLES[:3])} to a checkpoint")
    for role, ckpt in roles.items():
        if role not in FAMILIES[family].pipelines and not ckpt.pipeline:
            raise EngineConfigError(f"{where}.{role}: family {family} has no {role} pipeline; name one with "
                                    "`pipeline = \"<diffusers class>\"` or remove the key")
    if "quantize" in merged:
        merged["quantize"] = quantize_table(merged["quantize"], where)
    cfg = ModelConfig(family=family, roles=roles, **merged)
    validate(cfg, where)
    if cfg.offload not in OFFLOAD:
        raise EngineConfigError(f"{where}.offload: one of {', '.join(OFFLOAD)}")
    if cfg.reference_strategy not in STRATEGIES:
        raise EngineConfigError(f"{where}.reference_strategy: one of {', '.join(STRATEGIES)}")
    return cfg


# ------------------------------------------------------------------------------ values


def quantize_table(value: Any, where: str) -> dict[str, str]:
    """`quantize = "int8"` (the denoiser) or `{ component = kind }` -> {component: kind}."""
    if value is None or value == "none":
        return {}
    table = {"transformer": value} if isinstance(value, str) else value
    if not isinstance(table, dict):
        raise EngineConfigError(f"{where}.quantize: a kind ({', '.join(QUANTIZATIONS)}) or a table "
                                "{ transformer = \"fp8\", text_encoder = \"int8\" }")
    out = {}
    for component, kind in table.items():
        if component not in QUANTIZABLE and component not in OPENVINO_QUANTIZABLE:
            raise EngineConfigError(f"{where}.quantize: unknown component {component!r}; one of {', '.join(QUANTIZABLE)} "
                                    "(backend = \"openvino\": also vae)")
        if kind != "none":
            if kind not in QUANTIZATIONS and kind not in OPENVINO_QUANTIZATIONS:
                raise EngineConfigError(f"{where}.quantize.{component}: one of none, {', '.join(QUANTIZATIONS)} "
                                        f"(backend = \"openvino\": {', '.join(OPENVINO_QUANTIZATIONS)})")
            out[component] = kind
    return out


def validate(cfg, where: str) -> None:
    """Acceleration values a config file can get wrong whatever the device (acceleration.py
    checks what the device can run, where the engine is built)."""
    if cfg.dtype is not None and cfg.dtype not in DTYPE_NAMES:
        raise EngineConfigError(f"{where}.dtype: one of {', '.join(DTYPE_NAMES)} (auto: bfloat16 where the device "
                                f"computes it natively, else float32), got {cfg.dtype!r}")
    if cfg.vae is not None and (not isinstance(cfg.vae, str) or not cfg.vae.strip()):
        raise EngineConfigError(f"{where}.vae: \"full\" (the checkpoint's VAE) or a tiny autoencoder's folder or "
                                "Hub id, e.g. \"madebyollin/taesd\"")
    if cfg.cache not in CACHES:
        raise EngineConfigError(f"{where}.cache: one of {', '.join(CACHES)}")
    if cfg.cache in ("first_block", "taylorseer") and cfg.family not in CACHE_FAMILIES:
        raise EngineConfigError(f"{where}.cache: diffusers has no step-cache hooks for the {cfg.family} family's "
                                f"denoiser (it has them for {', '.join(CACHE_FAMILIES)}); use cache = \"cache_dit\" or remove `cache`")
    if not 0 < cfg.cache_threshold < 10:
        raise EngineConfigError(f"{where}.cache_threshold: a relative change above 0 (0.05-0.2 is usual)")
    if cfg.cache_interval < 1 or cfg.cache_warmup_steps < 0 or cfg.cache_front_blocks < 1:
        raise EngineConfigError(f"{where}: cache_interval >= 1, cache_warmup_steps >= 0, cache_front_blocks >= 1")
    if cfg.max_batch < 1:
        raise EngineConfigError(f"{where}.max_batch: 1 (one image per pipeline call) or more")
    if cfg.ulysses_degree < 1 or cfg.ring_degree < 1:
        raise EngineConfigError(f"{where}: ulysses_degree and ring_degree are 1 (off) or more")
    _validate_parallel(cfg, where)
    _validate_backend(cfg, where)
    for size in cfg.warmup_sizes:
        if parse_size(size) is None:
            raise EngineConfigError(f"{where}.warmup_sizes: sizes as \"1024*1024\", got {size!r}")
    if cfg.warmup_sizes and not (cfg.compile and cfg.preload):
        raise EngineConfigError(f"{where}.warmup_sizes: warm-up compiles at start-up; set compile = true "
                                "and preload = true with it")


def _validate_backend(cfg, where: str) -> None:
    """backend = "openvino" converts an SD-family pipeline's modules; the torch-module options cannot act there."""
    if cfg.backend not in BACKENDS:
        raise EngineConfigError(f"{where}.backend: one of {', '.join(BACKENDS)}, got {cfg.backend!r}")
    if cfg.backend == "torch":
        for component, kind in cfg.quantize.items():
            if component not in QUANTIZABLE:
                raise EngineConfigError(f"{where}.quantize.{component}: only backend = \"openvino\" quantizes the "
                                        "VAE (its decoder's convolutions, int8_hybrid); set backend = \"openvino\" "
                                        "or remove it")
            if kind not in QUANTIZATIONS:
                raise EngineConfigError(f"{where}.quantize.{component} = \"{kind}\": OpenVINO's kind (its int8 "
                                        "convolutions); set backend = \"openvino\" or quantize = \"int8\"")
        return
    if cfg.family not in OPENVINO_FAMILIES:
        raise EngineConfigError(f"{where}.backend = \"openvino\": converts the {', '.join(OPENVINO_FAMILIES)} family's "
                                f"modules only, not the {cfg.family} family's; remove `backend` for this model")
    torch_only = [key for key, on in (("compile", cfg.compile), ("cache", cfg.cache != "none"), ("attention_backend", cfg.attention_backend),
                                      ("offload", cfg.offload != "none"), ("device_map", cfg.device_map),
                                      ("ulysses_degree / ring_degree", parallel_degree(cfg) > 1)) if on]
    if torch_only:
        raise EngineConfigError(f"{where}.backend = \"openvino\": {', '.join(torch_only)} act on torch modules, which "
                                "OpenVINO replaces; remove them or use backend = \"torch\"")
    for component, kind in cfg.quantize.items():
        if component not in OPENVINO_QUANTIZABLE:
            raise EngineConfigError(f"{where}.quantize.{component}: backend = \"openvino\" compresses the unet's and "
                                    f"the text_encoder's weights (the sd family has no {component}); remove it")
        if kind not in OPENVINO_QUANTIZATIONS:
            raise EngineConfigError(f"{where}.quantize.{component} = \"{kind}\": backend = \"openvino\" compresses "
                                    f"weights to {' or '.join(OPENVINO_QUANTIZATIONS)} only (NNCF); set "
                                    f"quantize.{component} = \"int8\", remove it, or use backend = \"torch\"")
        if component == "vae" and kind != "int8_hybrid":
            raise EngineConfigError(f"{where}.quantize.vae = \"{kind}\": the VAE's decoder is convolutions, which "
                                    "int8_hybrid quantizes; set quantize.vae = \"int8_hybrid\" or remove it")
        if kind == "int8_hybrid" and component == "text_encoder":
            raise EngineConfigError(f"{where}.quantize.text_encoder = \"int8_hybrid\": int8_hybrid quantizes the "
                                    "UNet's convolutions, and the text encoder has none; set quantize.text_encoder "
                                    "= \"int8\"")


def _validate_parallel(cfg, where: str) -> None:
    """Context parallelism (parallel.py) a config file can get wrong whatever the devices."""
    if parallel_degree(cfg) == 1:
        return
    if cfg.family not in CP_FAMILIES:
        raise EngineConfigError(f"{where}: diffusers has no context-parallel plan for the {cfg.family} family's "
                                f"denoiser (it has one for {', '.join(CP_FAMILIES)}); set ulysses_degree = 1 and "
                                "ring_degree = 1, or use WANIMAGE_DEVICES for one pipeline per device")
    if cfg.idle_unload_seconds > 0:
        raise EngineConfigError(f"{where}: idle_unload_seconds with context parallelism: every rank must hold the "
                                "same pipelines, so they stay resident; remove idle_unload_seconds")
    if cfg.offload != "none" or cfg.device_map:
        raise EngineConfigError(f"{where}: context parallelism puts the whole pipeline on each rank's device; "
                                "remove offload / device_map for this model")
    if cfg.parallel_timeout_seconds <= 0:
        raise EngineConfigError(f"{where}.parallel_timeout_seconds: seconds above 0 (a pipeline call's limit)")


# ------------------------------------------------------------------------------ files


def load_config(path: Path) -> dict[str, ModelConfig]:
    """model id -> ModelConfig, from a .toml, .yaml or .yml file."""
    return parse_config(read_config_file(path), str(path))


def read_config_file(path: Path) -> dict:
    """The file's raw tables (TOML or YAML), before any check."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"engine config {path} not found; see examples/engines.toml and docs/diffusers.md")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise EngineConfigError(f"{path}: {exc}") from exc
    return data


def parse_config(data: dict, where: str = "engine config") -> dict[str, ModelConfig]:
    defaults = data.get("defaults") or {}
    models = data.get("models") or {}
    if not isinstance(models, dict) or not models:
        raise EngineConfigError(f"{where}: a [models.\"wan2.7-image\"] table (and/or wan2.7-image-pro) is required")
    # tables with engine = "remote" are the remote engine's (engines/remote, docs/remote.md)
    ours = {m: {k: v for k, v in raw.items() if k != "engine"} for m, raw in models.items()
            if not (isinstance(raw, dict) and raw.get("engine") == "remote")}
    return expand_serves(ours, where,
                         lambda m, raw: parse_model(m, raw, defaults, f"{where}: models.{m}"))


def expand_serves(tables: dict[str, dict], where: str, parse) -> dict:
    """`serves = ["qwen-image-plus", "qwen-image-max"]` in a model's table: those ids are served by
    the same checkpoints and settings (models on one checkpoint share its loaded copy)."""
    out: dict = {}
    for model, raw in tables.items():
        extra = raw.pop("serves", []) if isinstance(raw, dict) else []
        if not isinstance(extra, list) or not all(isinstance(m, str) for m in extra):
            raise EngineConfigError(f"{where}: models.{model}.serves: a list of model ids, e.g. [\"qwen-image-plus\"]")
        cfg = parse(model, raw)
        for served in (model, *extra):
            if served in out:
                raise EngineConfigError(f"{where}: model {served} is configured twice (its own table or a `serves` list)")
            out[served] = cfg
    return out
