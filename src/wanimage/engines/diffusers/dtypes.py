"""Which arithmetic a model computes in: the configured dtype, or "auto" (the default), the
fastest one that keeps the image on the device.

    cuda               bfloat16
    CPU with native    bfloat16: AVX512-BF16 or AMX-BF16 do bfloat16 dot products in hardware; the
    bfloat16           UNet and the decoder run in about half float32's time (docs/diffusers.md,
                       "CPU arithmetic") and the weights take half the memory
    other CPUs         float32: bfloat16 there is emulated and slower than float32

Weights stored as float16 (`variant = "fp16"` files) load straight into the compute dtype; on a
CPU float16 itself is not a compute dtype (no fast kernels), so "auto" never picks it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic


@cache
def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (read once from /proc/cpuinfo)."""
    try:
        return native_bfloat16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def native_bfloat16(cpuinfo: str) -> bool:
    """From /proc/cpuinfo's text: x86 AVX512-BF16 or AMX-BF16, or arm64's bf16 feature."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = set(value.split())
            return any(f in flags for f in BF16_FLAGS) or "bf16" in flags
    return False


def resolve_dtype(name: str | None, device: str) -> torch.dtype:
    """The configured dtype; None or "auto": bfloat16 on CUDA and on CPUs with native bfloat16,
    else float32."""
    if name and name != "auto":
        return DTYPES[name]
    if device.startswith("cuda") or (device.startswith("cpu") and cpu_has_bfloat16()):
        return torch.bfloat16
    return torch.float32
