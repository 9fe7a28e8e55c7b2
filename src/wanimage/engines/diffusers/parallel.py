"""Context parallelism of one image over several devices: which devices a model's ranks use, what
can run there, and diffusers' `enable_parallelism` on a loaded denoiser (docs/diffusers.md,
"Several devices"). The ranks themselves (one process per device, every rank running the same
pipeline call) are ranks.py's.

    ulysses_degree = 2   Ulysses attention: all-to-all of the heads, every rank sees the whole sequence
    ring_degree = 2      ring attention: key/value shards passed round; needs an attention backend
                         that returns the log-sum-exp (flash, _native_cudnn, sage: CUDA only)

Ranks run on the first `degree` entries of WANIMAGE_DEVICES when it lists several devices, else
on cuda:0..degree-1. On a CPU (gloo) Ulysses runs too, for tests and checking a deployment's
wiring: only when asked for explicitly with WANIMAGE_DEVICES=cpu,cpu."""

from __future__ import annotations

from .config import AccelerationError, parallel_degree

# attention backends with context parallelism that also return the log-sum-exp ring attention needs
# (diffusers' native backend raises "Native attention does not support return_lse=True")
RING_BACKENDS = ("flash", "flash_hub", "flash_varlen_hub", "_flash_3_hub", "_flash_3_varlen_hub", "_native_cudnn",
                 "_native_flash", "sage", "sage_hub")


def rank_devices(cfg, device: str, devices: list[str] | None, where: str) -> list[str]:
    """The device of each rank (rank 0 first), or AccelerationError saying what to set."""
    import torch

    degree = parallel_degree(cfg)
    listed = [d for d in devices or [] if d] if devices and len(devices) > 1 else []
    kind = (listed[0] if listed else cfg.device or device).split(":")[0]
    fix = "Set ulysses_degree = 1 and ring_degree = 1, or use WANIMAGE_DEVICES for one pipeline per device"
    if kind == "cpu":
        if len(listed) < degree or any(d != "cpu" for d in listed[:degree]):
            raise AccelerationError(
                f"{where}: context parallelism over {degree} devices (ulysses_degree x ring_degree) runs on {degree} "
                f"CUDA GPUs; this model runs on the CPU. To check the wiring on a CPU, list one CPU rank per degree: "
                f"WANIMAGE_DEVICES={','.join(['cpu'] * degree)}. {fix}")
        if cfg.ring_degree > 1:
            raise AccelerationError(
                f"{where}.ring_degree = {cfg.ring_degree}: ring attention needs an attention backend that returns the "
                f"log-sum-exp ({', '.join(RING_BACKENDS[:1] + RING_BACKENDS[5:8])}), all CUDA-only; diffusers' "
                "native backend, the one a CPU has, does not. On a CPU use ulysses_degree only")
        return ["cpu"] * degree
    if kind != "cuda":
        raise AccelerationError(f"{where}: context parallelism runs on CUDA GPUs (or CPU ranks for tests), not {kind}")
    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    wanted = [f"cuda:{r}" for r in range(degree)]
    if found < degree:
        raise AccelerationError(f"{where}: context parallelism over {degree} GPUs (ulysses_degree x ring_degree) "
                                f"needs {degree} CUDA GPUs; this machine has {found}. {fix}")
    if listed and [_cuda_index(d) for d in listed[:degree]] != list(range(degree)):
        raise AccelerationError(f"{where}: the ranks of a context-parallel model use cuda:0..cuda:{degree - 1} in "
                                f"order (diffusers puts rank r on device r); WANIMAGE_DEVICES lists "
                                f"{','.join(listed[:degree])}. Choose the GPUs with CUDA_VISIBLE_DEVICES instead")
    _check_backend(cfg, where)
    return wanted


def _cuda_index(name: str) -> int:
    return int(name.split(":")[1]) if ":" in name else 0


def _check_backend(cfg, where: str) -> None:
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    supported = sorted(b.value for b in _AttentionBackendRegistry._supports_context_parallel)
    if cfg.attention_backend and cfg.attention_backend not in supported:
        raise AccelerationError(f"{where}.attention_backend = \"{cfg.attention_backend}\" has no context-parallel "
                                f"kernel in diffusers; with ulysses_degree / ring_degree use one of {', '.join(supported)}")
    if cfg.ring_degree > 1 and cfg.attention_backend not in RING_BACKENDS:
        raise AccelerationError(f"{where}.ring_degree = {cfg.ring_degree}: ring attention needs an attention backend "
                                f"that returns the log-sum-exp: attention_backend = one of {', '.join(RING_BACKENDS)} "
                                "(diffusers' default native backend does not)")


def context_parallel_config(cfg):
    """diffusers' ContextParallelConfig. With one kind of parallelism only, its "anything" mode:
    prompts of any token count (Qwen-Image's prompt embeddings are as long as the prompt) and head
    counts that do not divide by the degree; with both kinds, lengths must divide by the degree."""
    from diffusers import ContextParallelConfig

    return ContextParallelConfig(ulysses_degree=cfg.ulysses_degree, ring_degree=cfg.ring_degree,
                                 ulysses_anything=cfg.ring_degree == 1,
                                 ring_anything=cfg.ulysses_degree == 1)


def enable(denoiser, cfg, device: str) -> None:
    """`enable_parallelism` on the denoiser of this rank (torch.distributed is initialised by ranks.py)."""
    if device.startswith("cpu"):
        # diffusers 0.42.1 places rank r on device `r % torch.accelerator.device_count()`, 0 on a CPU
        # (ZeroDivisionError): resolve the same config with the CPU as the device, for this module only
        denoiser._resolve_parallel_config = lambda config: _resolve_on_cpu(denoiser, config)
    denoiser.enable_parallelism(config=context_parallel_config(cfg))


def _resolve_on_cpu(model, config):
    """diffusers' ModelMixin._resolve_parallel_config for context parallelism, device "cpu"."""
    import torch
    import torch.distributed as dist
    from diffusers.models._modeling_parallel import ParallelConfig

    config = ParallelConfig(context_parallel_config=config)
    cp = config.context_parallel_config
    mesh = cp.mesh or dist.device_mesh.init_device_mesh("cpu", mesh_shape=cp.mesh_shape,
                                                        mesh_dim_names=cp.mesh_dim_names)
    config.setup(dist.get_rank(), dist.get_world_size(), torch.device("cpu"), mesh=mesh)
    model._parallel_config = config
    return config
