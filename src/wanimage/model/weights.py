"""Checkpoints (training state, resumable) and exported weights (EMA only, fp16 safetensors).

Both carry the constructor arguments, so inference rebuilds the nets from the file alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .net import SpriteUNet, Upsampler, config_dict, sprite_from_dict, upsampler_from_dict


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic write: a crash mid-save never leaves a truncated checkpoint behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def export_weights(sprite: SpriteUNet, up: Upsampler, path: Path, info: dict) -> None:
    """Write EMA nets as fp16 safetensors with configs and training info in the metadata."""
    tensors = {f"sprite.{k}": v.detach().half().contiguous() for k, v in sprite.state_dict().items()}
    tensors |= {f"up.{k}": v.detach().half().contiguous() for k, v in up.state_dict().items()}
    meta = {
        "sprite_config": json.dumps(config_dict(sprite.cfg)),
        "upsampler_config": json.dumps(config_dict(up.cfg)),
        "info": json.dumps(info),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)  # a committed, package-data file: readable by everyone
    os.replace(tmp, path)


def load_weights(path: Path, device: str = "cpu") -> tuple[SpriteUNet, Upsampler, dict]:
    """Rebuild both nets (float32, eval mode) from an exported safetensors file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path), device=device)
    sprite = sprite_from_dict(json.loads(meta["sprite_config"]))
    up = upsampler_from_dict(json.loads(meta["upsampler_config"]))
    sprite.load_state_dict({k[7:]: v.float() for k, v in tensors.items() if k.startswith("sprite.")})
    up.load_state_dict({k[3:]: v.float() for k, v in tensors.items() if k.startswith("up.")})
    return sprite.eval().to(device), up.eval().to(device), json.loads(meta.get("info", "{}"))
