"""Acceleration options of the engine config file, applied to a loaded pipeline (docs/diffusers.md,
"Acceleration"). Every option is off unless set; each is done by the library that owns it:

    cache = "first_block"     diffusers' FirstBlockCacheConfig: skip the remaining blocks while the
                              first block's residual changes by less than cache_threshold
    cache = "taylorseer"      diffusers' TaylorSeerCacheConfig: compute every cache_interval steps,
                              predict the steps between (after cache_warmup_steps full steps)
    compile = true            torch.compile of the repeated transformer blocks (regional: compiled
                              once per block class and shape, seconds instead of minutes)
    quantize = "int8"         torchao weight-only int8 / FP8 of the denoiser, or a table per
                              component: quantize = { transformer = "fp8", text_encoder = "int8" }
                              (backend = "openvino": int8 only, NNCF on the IR: openvino_backend.py)
    attention_backend = ...   diffusers' set_attention_backend ("flash", "sage", "_native_cudnn", ...)
    ulysses_degree / ring_degree  context parallelism of one image over several GPUs (diffusers'
                              ContextParallelConfig; one process per rank: parallel.py, ranks.py)

The values themselves are checked where the config file is parsed (config.py); `check_device`
refuses, with the fix, what the model's device cannot run (FP8 or flash attention on a CPU, a missing package); `apply`
sets the options on a freshly loaded pipeline (pipelines built from it with from_pipe share the
modules, so each module is accelerated once)."""

from __future__ import annotations

import logging
from typing import Any

from . import parallel
from .config import QUANTIZATIONS, AccelerationError, parallel_degree

log = logging.getLogger(__name__)

CPU_ATTENTION = ("native", "_native_math", "flex")  # backends that run without CUDA
ATTENTION_PACKAGES = {"flash": "flash-attn", "sage": "sageattention", "xformers": "xformers",
                      "_flash_3": "flash-attn 3 (built from source)", "aiter": "aiter"}
FP8_CAPABILITY = (8, 9)  # Ada, Hopper, Blackwell


# ------------------------------------------------------------------------------ device time


def check_device(cfg, device: str, where: str, devices: list[str] | None = None) -> None:
    """Refuse what `device` cannot run, before anything loads (`devices`: WANIMAGE_DEVICES, where a
    context-parallel model's ranks go: parallel.py)."""
    if cfg.cache == "cache_dit":
        try:
            import cache_dit  # noqa: F401
        except ImportError:
            raise AccelerationError(f"{where}.cache = \"cache_dit\" needs the cache-dit package: "
                                    "`pip install --no-deps cache-dit` (its other requirements are already here)") from None
    for component, kind in cfg.quantize.items() if cfg.backend != "openvino" else ():  # OpenVINO: NNCF, below
        _check_quantization(kind, device, f"{where}.quantize.{component}")
    if cfg.attention_backend:
        _check_attention(cfg.attention_backend, device, f"{where}.attention_backend")
    if parallel_degree(cfg) > 1:
        parallel.rank_devices(cfg, device, devices, where)
    if cfg.device_map:
        _check_device_map(cfg, device, where)
    if cfg.backend == "openvino":
        _check_openvino(cfg, device, where)


def _check_openvino(cfg, device: str, where: str) -> None:
    """The CPU, the openvino package, and NNCF where the IR's weights are compressed (quantize;
    config.py has refused the kinds OpenVINO's path cannot make)."""
    if not device.startswith("cpu"):
        raise AccelerationError(f"{where}.backend = \"openvino\" runs on the CPU; this model runs on {device}: "
                                "remove `backend` (torch) or set device = \"cpu\"")
    try:
        import openvino  # noqa: F401
    except ImportError:
        raise AccelerationError(f"{where}.backend = \"openvino\" needs the openvino package: "
                                "`pip install 'wanimage[openvino]'`, or remove `backend` (torch)") from None
    for component, kind in cfg.quantize.items():
        try:
            import nncf  # noqa: F401
        except ImportError:
            raise AccelerationError(f"{where}.quantize.{component} = \"{kind}\" with backend = \"openvino\" needs "
                                    "the nncf package (it compresses the IR's weights): `pip install "
                                    "'wanimage[openvino]'`, or remove `quantize`") from None


def _check_device_map(cfg, device: str, where: str) -> None:
    import torch

    if cfg.device_map != "balanced":
        raise AccelerationError(f"{where}.device_map: \"balanced\" (diffusers' one strategy for pipelines)")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not device.startswith("cuda") or gpus < 2:
        raise AccelerationError(f"{where}.device_map = \"balanced\" spreads a model's components over several "
                                f"GPUs; this model runs on {device} with {gpus} CUDA GPU(s). On one GPU use "
                                "offload = \"model\" instead")
    if cfg.offload != "none":
        raise AccelerationError(f"{where}: device_map and offload are exclusive; keep one")


def _check_quantization(kind: str, device: str, where: str) -> None:
    try:
        import torchao  # noqa: F401
    except ImportError:
        raise AccelerationError(f"{where} = \"{kind}\" needs the torchao package: `pip install torchao` "
                                "(a release built for your torch)") from None
    if kind.startswith("fp8"):
        import torch

        if not device.startswith("cuda") or not torch.cuda.is_available():
            raise AccelerationError(f"{where} = \"{kind}\": FP8 runs on NVIDIA GPUs of compute capability "
                                    f"{FP8_CAPABILITY[0]}.{FP8_CAPABILITY[1]}+ (Ada, Hopper, Blackwell); this model "
                                    f"runs on {device}: use \"int8\" there")
        capability = torch.cuda.get_device_capability(torch.device(device))
        if capability < FP8_CAPABILITY:
            raise AccelerationError(f"{where} = \"{kind}\": {device} has compute capability "
                                    f"{capability[0]}.{capability[1]}, FP8 needs 8.9+; use \"int8\"")


def _package_for(backend: str) -> str | None:
    if backend.endswith("_hub"):
        return "kernels"
    return next((pkg for prefix, pkg in sorted(ATTENTION_PACKAGES.items(), key=lambda kv: -len(kv[0]))
                 if backend.startswith(prefix)), None)


def _check_attention(backend: str, device: str, where: str) -> None:
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    names = [b.value for b in AttentionBackendName]
    if backend not in names:
        raise AccelerationError(f"{where}: unknown backend {backend!r}; diffusers has {', '.join(names)}")
    package = _package_for(backend)
    problems = []
    if not device.startswith("cuda") and backend not in CPU_ATTENTION:
        problems.append(f"it runs on CUDA GPUs and this model runs on {device} (there: {', '.join(CPU_ATTENTION)})")
    try:
        _check_attention_backend_requirements(AttentionBackendName(backend))
    except (RuntimeError, ImportError) as exc:
        problems.append(f"the {package or 'package it needs'} package is not installed "
                        f"(`pip install {package or '...'}`; diffusers: {str(exc).splitlines()[0]})")
    if problems:
        raise AccelerationError(f"{where} = \"{backend}\" cannot be used: " + "; and ".join(problems))


# ------------------------------------------------------------------------------ apply


def accelerated(cfg) -> bool:
    """Whether any option changes the pipeline's modules (channels_last too: it re-lays their weights)."""
    return bool(cfg.compile or cfg.cache != "none" or cfg.quantize or cfg.attention_backend
                or parallel_degree(cfg) > 1 or cfg.channels_last)


def apply(pipe, cfg, device: str) -> None:
    """Quantize, then attention backend, step cache, context parallelism, and compile last (it
    traces the modules as the other options left them)."""
    # backend = "openvino": the modules are OpenVINO's, their IR weights compressed at conversion
    for component, kind in cfg.quantize.items() if cfg.backend != "openvino" else ():
        module = getattr(pipe, component, None)
        if module is None and component == "transformer":  # `quantize = "int8"`: the denoiser, a UNet here
            module = getattr(pipe, "unet", None)
        if module is None:
            log.warning("quantize: %s has no %s; skipped", type(pipe).__name__, component)
            continue
        quantize_module(module, kind)
    denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
    if denoiser is None:
        return
    if cfg.attention_backend or parallel_degree(cfg) > 1:  # context parallelism needs one that supports it
        set_attention_backend(denoiser, cfg.attention_backend or "native")
    if cfg.cache == "cache_dit":
        _enable_cache_dit(pipe, cfg)
    elif cfg.cache != "none":
        _enable_cache(denoiser, cfg)
    if parallel_degree(cfg) > 1:
        parallel.enable(denoiser, cfg, device)
    if cfg.compile:
        _compile(denoiser, cfg)


def set_attention_backend(denoiser, backend: str) -> None:
    """This model's attention processors on `backend`. diffusers' set_attention_backend also makes
    it the process-wide default, which every other model without a backend of its own would then
    use (one model's "sage", or a test's "_native_math" that context parallelism refuses): that
    default is put back."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    default = _AttentionBackendRegistry._active_backend
    try:
        denoiser.set_attention_backend(backend)
    finally:
        _AttentionBackendRegistry.set_active_backend(default)


def quantize_module(module, kind: str) -> None:
    """torchao's `kind` on every Linear of the module, once (the CPU loader quantizes each component
    as it streams in, before `apply` sees the pipeline: streamed.py)."""
    import torchao.quantization as tq

    if getattr(module, "_wanimage_quantized", None):
        return
    tq.quantize_(module, getattr(tq, QUANTIZATIONS[kind])())
    module._wanimage_quantized = kind


def cache_config(cfg, dtype):
    """The diffusers hook config for `cache`; Taylor factors kept in the model's dtype."""
    from diffusers import FirstBlockCacheConfig, TaylorSeerCacheConfig

    if cfg.cache == "first_block":
        return FirstBlockCacheConfig(threshold=cfg.cache_threshold)
    return TaylorSeerCacheConfig(cache_interval=cfg.cache_interval, disable_cache_before_step=cfg.cache_warmup_steps,
                                 taylor_factors_dtype=dtype)


def _enable_cache(denoiser, cfg) -> None:
    if not hasattr(denoiser, "enable_cache"):
        raise AccelerationError(f"cache = \"{cfg.cache}\": diffusers' {type(denoiser).__name__} has no cache "
                                "hooks (enable_cache); remove `cache` for this model")
    denoiser.enable_cache(cache_config(cfg, denoiser.dtype))


def _enable_cache_dit(pipe, cfg) -> None:
    """cache-dit's DBCache: the first cache_front_blocks blocks always run; the rest are skipped
    while their input residual changes by less than cache_threshold, after cache_warmup_steps."""
    import cache_dit

    cache_dit.enable_cache(pipe, cache_config=cache_dit.DBCacheConfig(
        Fn_compute_blocks=cfg.cache_front_blocks, Bn_compute_blocks=0, residual_diff_threshold=cfg.cache_threshold,
        max_warmup_steps=cfg.cache_warmup_steps))


def _compile(denoiser, cfg) -> None:
    """Regional compilation where diffusers names the repeated blocks, else the whole module."""
    kwargs: dict[str, Any] = {"dynamic": cfg.compile_dynamic}
    if cfg.compile_mode:
        kwargs["mode"] = cfg.compile_mode
    if cfg.compile_backend:
        kwargs["backend"] = cfg.compile_backend
    if getattr(denoiser, "_repeated_blocks", None):
        denoiser.compile_repeated_blocks(**kwargs)
    else:
        denoiser.compile(**kwargs)
