"""Which files of a diffusers repository a pipeline loads: what `wanimage pull` downloads.

A diffusers repository holds a pipeline as `model_index.json` plus one folder per component
(unet/, transformer/, vae/, text_encoder/, tokenizer/, scheduler/, ...), and often much more:
the original single-file checkpoint at the root, the same weights as .bin, .ckpt, .msgpack or
ONNX, fp16 / fp32 / other variants side by side, sample images. `from_pretrained` reads only the
components model_index.json names, one format (safetensors when there is one) and one variant,
so that is all `select_files` keeps: the same rules as diffusers' own loader
(`variant_compatible_siblings`), applied before the download instead of after it."""

from __future__ import annotations

import re
from collections.abc import Iterable

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx", ".onnx_data",
                   ".pb", ".gguf", ".mlmodel", ".pkl")
ROOT_KEEP = ("model_index.json", "README.md", "LICENSE", "LICENSE.md", "LICENSE.txt")
_SHARD = re.compile(r"-\d{5}-of-\d{5}")


class NotAPipeline(ValueError):
    """The repository has no model_index.json: it is not a diffusers pipeline."""


def components(model_index: dict) -> list[str]:
    """Component folders model_index.json names ([library, class], not [null, null])."""
    return [k for k, v in model_index.items()
            if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[1] is not None]


def _variant_of(name: str) -> str | None:
    """`model.fp16.safetensors` -> fp16; `model.fp16-00001-of-00002.safetensors` -> fp16;
    `model.safetensors.index.fp16.json` -> fp16; `model.safetensors` -> None."""
    stem = _SHARD.sub("", name)
    parts = stem.split(".")
    if stem.endswith(".json") and ".index." in stem:  # diffusion_pytorch_model.safetensors.index.fp16.json
        return parts[-2] if parts[-2] != "index" else None
    return parts[-2] if len(parts) >= 3 else None


def _format_of(name: str) -> str | None:
    """The weight format a file belongs to (its index file included), else None."""
    if name.startswith("openvino_"):  # openvino_model.xml and .bin: another runtime's format
        return ".openvino"
    if name.endswith(".json") and ".index" in name:
        name = name.split(".index")[0]
    name = _SHARD.sub("", name)
    for suffix in WEIGHT_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


def _weights(files: list[str], variant: str | None) -> list[str]:
    """One format (safetensors first, then .bin) in one variant: `variant` where the folder has
    it, else the plain files (what diffusers loads when a folder lacks the variant)."""
    by_format: dict[str, list[str]] = {}
    for f in files:
        fmt = _format_of(f.rsplit("/", 1)[-1])
        if fmt:
            by_format.setdefault(fmt, []).append(f)
    for fmt in (".safetensors", ".bin"):
        candidates = by_format.get(fmt, [])
        if not candidates:
            continue
        wanted = [f for f in candidates if _variant_of(f.rsplit("/", 1)[-1]) == variant] if variant else []
        plain = [f for f in candidates if _variant_of(f.rsplit("/", 1)[-1]) is None]
        chosen = wanted or plain
        if chosen:
            return chosen
    return []


def select_files(files: Iterable[str], model_index: dict | None, variant: str | None = None) -> list[str]:
    """The files a pipeline of this repository loads, sorted. Raises NotAPipeline without
    model_index.json, and ValueError naming the component whose folder holds no weights."""
    files = sorted(files)
    if model_index is None or "model_index.json" not in files:
        raise NotAPipeline("no model_index.json at its root: `wanimage pull` fetches diffusers-format pipelines")
    keep = [f for f in files if f in ROOT_KEEP]
    for name in components(model_index):
        inside = [f for f in files if f.startswith(name + "/") and f.count("/") == 1]
        if not inside:
            continue  # a component the pipeline builds without files (e.g. a feature extractor default)
        other = [f for f in inside if _format_of(f.rsplit("/", 1)[-1]) is None]
        weights = _weights(inside, variant)
        has_weights = any(_format_of(f.rsplit("/", 1)[-1]) for f in inside)
        if has_weights and not weights:
            raise ValueError(f"{name}/ holds no safetensors or .bin weights diffusers can load")
        keep += other + weights
    return sorted(keep)


MODEL_KEEP = ("config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json",
              "tokenizer.json", "vocab.json", "source.spm", "target.spm", "spiece.model", "sentencepiece.bpe.model")


def select_model_files(files: Iterable[str]) -> list[str]:
    """A transformers model folder (e.g. a MarianMT translator): config, tokenizer files and one
    weight format at the root (safetensors, else pytorch_model.bin), sorted. ValueError without
    config.json or weights."""
    files = sorted(files)
    if "config.json" not in files:
        raise ValueError("no config.json at its root: not a transformers model folder")
    root = [f for f in files if "/" not in f]
    weights = _weights([f for f in root if f.startswith(("model", "pytorch_model"))], None)
    if not weights:
        raise ValueError("no model.safetensors or pytorch_model.bin at its root")
    return sorted([f for f in root if f in MODEL_KEEP or f in ROOT_KEEP] + weights)


def select_component_files(files: Iterable[str]) -> list[str]:
    """One diffusers model at a repository's root (e.g. madebyollin/taesd, an AutoencoderTiny):
    config.json and `diffusion_pytorch_model` in one format (safetensors, else .bin), sorted; the
    original-format copies beside them (taesd_encoder.safetensors, ...) are not what
    `from_pretrained` reads. ValueError without config.json or those weights."""
    files = sorted(files)
    if "config.json" not in files:
        raise ValueError("no config.json at its root: not a diffusers model folder")
    root = [f for f in files if "/" not in f]
    weights = _weights([f for f in root if f.startswith("diffusion_pytorch_model")], None)
    if not weights:
        raise ValueError("no diffusion_pytorch_model.safetensors or .bin at its root")
    return sorted([f for f in root if f == "config.json" or f in ROOT_KEEP] + weights)
