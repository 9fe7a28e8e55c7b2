"""A pulled pipeline's weights read one tensor at a time, straight into the compute dtype.

`from_pretrained` memory-maps each safetensors file and converts it whole: while the UNet of
SD-Turbo loads, its fp16 file pages (1.7 GB, counted in the process's RSS once touched) and its
bfloat16 copy (1.7 GB) are both resident. Here each component is built without weights
(accelerate's init_empty_weights), then every tensor is read with a plain file read, converted,
and assigned: the peak is the converted model plus one tensor. The page cache holds the file,
not the process.

Used for local folders on the CPU. A component this cannot place exactly (a sharded or .bin
file, a parameter the file lacks, a class that is not a torch module) is left to
`from_pretrained`, which then loads it as before."""

from __future__ import annotations

import importlib
import json
import logging
import struct
from collections.abc import Callable
from pathlib import Path

import torch

from .repo_files import _variant_of

log = logging.getLogger(__name__)
SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def read_safetensors(path: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every tensor of a .safetensors file, floating ones converted to `dtype`, read one at a time."""
    out: dict[str, torch.Tensor] = {}
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        base = 8 + length
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            stored = SAFETENSORS_DTYPES[info["dtype"]]
            if end == start:
                tensor = torch.empty(info["shape"], dtype=stored)
            else:
                buf = bytearray(end - start)
                f.seek(base + start)
                f.readinto(buf)
                tensor = torch.frombuffer(buf, dtype=stored).reshape(info["shape"])
            out[name] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return out


def weight_file(folder: Path, variant: str | None) -> Path | None:
    """The one safetensors file a component folder loads (its variant where it has one, else the
    plain file); None when the weights are sharded, .bin only, or absent."""
    files = [p for p in folder.glob("*.safetensors")]
    chosen = [p for p in files if variant and _variant_of(p.name) == variant] or [
        p for p in files if _variant_of(p.name) is None]
    return chosen[0] if len(chosen) == 1 else None


def load_component(folder: Path, library: str, class_name: str, variant: str | None, dtype: torch.dtype):
    """One component built without weights and filled from its file in `dtype`, or None."""
    from accelerate import init_empty_weights

    file = weight_file(folder, variant)
    if file is None or library not in ("diffusers", "transformers"):
        return None
    cls = getattr(importlib.import_module(library), class_name, None)
    if cls is None or not issubclass(cls, torch.nn.Module):
        return None
    with init_empty_weights():  # parameters on the meta device: no memory, no random init
        if library == "diffusers":
            model = cls.from_config(cls.load_config(folder))
        else:
            model = cls(cls.config_class.from_pretrained(folder))
    state = read_safetensors(file, dtype)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if any(p.is_meta for p in model.parameters()) or missing:
        log.info("%s: %d parameter(s) not in %s; loading it with from_pretrained", folder.name, len(missing), file.name)
        return None
    if unexpected:  # e.g. position_ids saved by older transformers as a persistent buffer
        log.debug("%s: ignored %d key(s) of %s: %s", folder.name, len(unexpected), file.name, unexpected[:3])
    return model.to(dtype).eval()  # buffers built in float32 join the parameters' dtype


def preload_components(path: Path, variant: str | None, dtype: torch.dtype, skip: set[str],
                       prepare: Callable[[str, torch.nn.Module], None] | None = None) -> dict:
    """name -> module for every component of a pipeline folder that streams; the caller hands
    them to `from_pretrained`, which then loads only the rest (tokenizers, scheduler, ...).
    `prepare(name, module)` runs on each as soon as it is loaded (int8 quantization: the peak then
    holds one component at full width, not all of them)."""
    try:
        index = json.loads((path / "model_index.json").read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for name, spec in index.items():
        if name.startswith("_") or name in skip or not (isinstance(spec, list) and len(spec) == 2 and spec[1]):
            continue
        if (path / name).is_dir():
            module = load_component(path / name, spec[0], spec[1], variant, dtype)
            if module is not None:
                if prepare is not None:
                    prepare(name, module)
                out[name] = module
    return out
