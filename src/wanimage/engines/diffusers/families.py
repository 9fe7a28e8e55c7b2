"""The model families by name, as the engine config file's `family` key names them."""

from __future__ import annotations

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
