"""diffusers engines: open checkpoints on GPUs, one module per family (docs/diffusers.md).

Importing this package is cheap: diffusers itself is imported when a pipeline first loads."""

from __future__ import annotations

from pathlib import Path

from .base import Family
from .flux import Flux
from .flux2 import Flux2
from .qwen_image import QwenImage
from .sd import StableDiffusion
from .sdxl import SDXL
from .wan import Wan
from .zimage import ZImage

FAMILIES: dict[str, Family] = {f.name: f for f in (QwenImage(), Flux(), SDXL(), ZImage(), Flux2(), Wan(),
                                                     StableDiffusion())}


def load_engines(config_path: Path, device: str = "cpu") -> dict:
    """model id -> factory building its DiffusersEngine, from the engine config file."""
    from .config import load_config

    return engines_from_configs(load_config(config_path), device)


def engines_from_configs(configs: dict, device: str = "cpu", preset: str | None = None) -> dict:
    """model id -> factory building its DiffusersEngine from parsed ModelConfigs (a config file's
    or a preset's: presets.py); `preset` names the preset in `describe()`."""
    from .acceleration import check_device, parallel_degree
    from .engine import DiffusersEngine
    from .loader import PipelinePool

    for model, cfg in configs.items():  # FP8 / flash attention on a CPU stops start-up, with the fix
        check_device(cfg, cfg.device or device, f"models.{model}")
    pool = PipelinePool()  # models on the same checkpoint share one loaded copy

    def factory(model: str):
        build = lambda: DiffusersEngine(model, configs[model], FAMILIES[configs[model].family], device,  # noqa: E731
                                        pool, preset=preset)
        build.gpus = parallel_degree(configs[model])  # Ray Serve reserves this many GPUs per replica
        return build

    return {model: factory(model) for model in configs}


__all__ = ["FAMILIES", "Family", "engines_from_configs", "load_engines"]
