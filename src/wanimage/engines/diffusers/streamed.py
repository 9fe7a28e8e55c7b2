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
from collections.abc import Iterator
from pathlib import Path

import torch

from ...memory import release_free_memory
from .acceleration import quantize_module
from .repo_files import _variant_of

log = logging.getLogger(__name__)
SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def read_safetensors(path: Path, dtype: torch.dtype, channels_last: bool = False) -> dict[str, torch.Tensor]:
    """Every tensor of a .safetensors file, floating ones converted to `dtype`, read one at a time."""
    return dict(iter_safetensors(path, dtype, channels_last))


def iter_safetensors(path: Path, dtype: torch.dtype, channels_last: bool = False) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for each tensor of the file in order, floating ones converted to `dtype`
    (4-d ones, convolution weights, laid out channels_last when asked: converted in the same copy,
    not re-laid later beside the first; measured: 0.45 GB of peak for sd-turbo)."""
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
            if tensor.is_floating_point():
                layout = torch.channels_last if channels_last and tensor.dim() == 4 else torch.contiguous_format
                tensor = tensor.to(dtype, memory_format=layout)
            yield name, tensor


def weight_file(folder: Path, variant: str | None) -> Path | None:
    """The one safetensors file a component folder loads (its variant where it has one, else the
    plain file); None when the weights are sharded, .bin only, or absent."""
    files = [p for p in folder.glob("*.safetensors")]
    chosen = [p for p in files if variant and _variant_of(p.name) == variant] or [
        p for p in files if _variant_of(p.name) is None]
    return chosen[0] if len(chosen) == 1 else None


def load_component(folder: Path, library: str, class_name: str, variant: str | None, dtype: torch.dtype,
                   quantize: str | None = None, channels_last: bool = False):
    """One component built without weights and filled from its file in `dtype`, or None.
    `quantize` (a torchao kind, "int8"): each Linear is quantized as soon as its weight is read, so
    the component never sits in memory at full width (measured: quantizing it whole after loading
    raised sd-turbo's peak by 0.4 GB)."""
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
    if quantize:
        state, quantized = _read_quantizing(model, file, dtype, quantize, channels_last)
    else:
        state, quantized = read_safetensors(file, dtype, channels_last), set()
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k.rpartition(".")[0] not in quantized]
    if any(p.is_meta for p in model.parameters()) or missing:
        log.info("%s: %d parameter(s) not in %s; loading it with from_pretrained", folder.name, len(missing), file.name)
        return None
    if unexpected:  # e.g. position_ids saved by older transformers as a persistent buffer
        log.debug("%s: ignored %d key(s) of %s: %s", folder.name, len(unexpected), file.name, unexpected[:3])
    if not quantize and not channels_last:
        return model.to(dtype).eval()  # buffers built in float32 join the parameters' dtype
    _buffers_to(model, dtype)  # not .to(): the int8 weights stay as they are
    if not quantize:
        return model.eval()
    for name, module in model.named_modules():  # a Linear whose weight the file named otherwise
        if isinstance(module, torch.nn.Linear) and name not in quantized:
            quantize_module(module, quantize)
    model._wanimage_quantized = quantize  # acceleration.apply leaves it as it is
    return model.eval()


def _read_quantizing(model, file: Path, dtype: torch.dtype, kind: str, channels_last: bool = False) -> tuple[dict, set[str]]:
    """The file's tensors, except the Linear layers': those are set on the model and quantized
    the moment both their weight and bias are read (their names returned)."""
    linears = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    state, quantized = {}, set()
    for key, tensor in iter_safetensors(file, dtype, channels_last):
        owner, _, leaf = key.rpartition(".")
        linear = linears.get(owner)
        if linear is None or leaf not in ("weight", "bias"):
            state[key] = tensor
            continue
        setattr(linear, leaf, torch.nn.Parameter(tensor, requires_grad=False))
        if not any(p.is_meta for p in linear.parameters(recurse=False)):
            quantize_module(linear, kind)
            quantized.add(owner)
            release_free_memory()  # the full-width weight just freed goes back to the system, not into heap holes
    return state, quantized



def _buffers_to(model: torch.nn.Module, dtype: torch.dtype) -> None:
    for module in model.modules():
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf is not None and buf.is_floating_point() and buf.dtype != dtype:
                setattr(module, name, buf.to(dtype))


def preload_components(path: Path, variant: str | None, dtype: torch.dtype, skip: set[str],
                       quantize: dict[str, str] | None = None, channels_last: bool = False) -> dict:
    """name -> module for every component of a pipeline folder that streams; the caller hands
    them to `from_pretrained`, which then loads only the rest (tokenizers, scheduler, ...).
    `quantize`: component name -> torchao kind, applied while it streams in."""
    try:
        index = json.loads((path / "model_index.json").read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for name, spec in index.items():
        if name.startswith("_") or name in skip or not (isinstance(spec, list) and len(spec) == 2 and spec[1]):
            continue
        if (path / name).is_dir():
            module = load_component(path / name, spec[0], spec[1], variant, dtype, (quantize or {}).get(name),
                                    channels_last)
            if module is not None:
                out[name] = module
    return out
