"""The `size` parameter (api-spec.md §1.4, §4.3): parsing a tier or W*H, the bounds each model and
mode allow, and the output size a tier gives once the last input image is known."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter
from ..types import PRO_MODEL

TIERS = {"1K": 1024, "2K": 2048, "4K": 4096}
DEFAULT_SIZE = "2K"
MIN_PIXELS = 768 * 768
MAX_PIXELS = 2048 * 2048
MAX_PIXELS_PRO_T2I = 4096 * 4096
MAX_RATIO = 8.0
SIZE_MULTIPLE = 16  # tier sizes are rounded to multiples of 16 (reproduces 2976*1408, 1488*704)

# re.ASCII: without it \d also matches other scripts' digits ("１０２４*768"), which int() happily
# converts; the wire forms are ASCII only.
_EXPLICIT_SIZE = re.compile(r"^\s*(\d{1,5})\s*[*xX]\s*(\d{1,5})\s*$", re.ASCII)


@dataclass(frozen=True)
class SizeSpec:
    tier: str | None  # "1K" | "2K" | "4K"
    width: int | None  # explicit W*H
    height: int | None

    def __str__(self) -> str:
        return self.tier or f"{self.width}*{self.height}"


def parse_size(size: Any) -> SizeSpec:
    if size is None:
        return SizeSpec(DEFAULT_SIZE, None, None)
    if not isinstance(size, str):
        raise InvalidParameter(f"size: must be a string such as \"2K\" or \"1280*720\", got {size!r}", field="size")
    tier = size.strip().upper()
    if tier in TIERS:
        return SizeSpec(tier, None, None)
    m = _EXPLICIT_SIZE.match(size)
    if not m:
        raise InvalidParameter(
            f"size: {size!r} is not a size; use a tier (1K, 2K, 4K) or width*height such as 1280*720",
            field="size",
        )
    return SizeSpec(None, int(m.group(1)), int(m.group(2)))


def check_size_allowed(spec: SizeSpec, model: str, n_images: int, sequential: bool) -> None:
    pure_t2i = n_images == 0 and not sequential
    if spec.tier == "4K":
        if model != PRO_MODEL:
            raise InvalidParameter(
                f"size: 4K is available only on {PRO_MODEL} text-to-image; use 1K or 2K with {model}",
                field="size",
            )
        if not pure_t2i:
            raise InvalidParameter(
                "size: 4K is available only for text-to-image (no input images, enable_sequential=false); use 1K or 2K",
                field="size",
            )
        return
    if spec.tier is not None:
        return
    w, h = spec.width or 0, spec.height or 0
    if w == 0 or h == 0 or max(w, h) / min(w, h) > MAX_RATIO:
        raise InvalidParameter(
            f"size: {w}*{h} has an aspect ratio beyond 1:8 or 8:1; choose sides within a factor of 8",
            field="size",
        )
    high = MAX_PIXELS_PRO_T2I if (model == PRO_MODEL and pure_t2i) else MAX_PIXELS
    if not MIN_PIXELS <= w * h <= high:
        side = int(math.isqrt(high))
        raise InvalidParameter(
            f"size: {w}*{h} = {w * h} pixels; the total must lie between 768*768 ({MIN_PIXELS}) and "
            f"{side}*{side} ({high}) for this model and mode",
            field="size",
        )


def output_size(spec: SizeSpec, last_image: tuple[int, int] | None) -> tuple[int, int]:
    """Output (width, height): explicit W*H exactly; a tier's pixel budget, square without input
    images, else in the aspect ratio of the last input image, sides rounded to multiples of 16."""
    if spec.tier is None:
        return spec.width or 0, spec.height or 0
    side = TIERS[spec.tier]
    if last_image is None:
        return side, side
    ratio = last_image[0] / last_image[1]
    height = math.sqrt(side * side / ratio)
    width = height * ratio

    def snap(v: float) -> int:
        return max(SIZE_MULTIPLE, int(round(v / SIZE_MULTIPLE)) * SIZE_MULTIPLE)

    # Rounding both sides up can overshoot the tier's pixel budget (2K with a 2985x1405 image
    # gave 2992*1408 = 4.21 MP > 2048*2048, which an engine capped at the tier refuses). While
    # over budget, take 16 px off the side whose removal keeps the ratio closest to the target:
    # this reproduces the upstream samples 2976*1408 (2K) and 1488*704 (1K).
    w, h = snap(width), snap(height)
    while w * h > side * side and min(w, h) > SIZE_MULTIPLE:
        narrower = abs(math.log((w - SIZE_MULTIPLE) / h / ratio))
        shorter = abs(math.log(w / (h - SIZE_MULTIPLE) / ratio))
        if narrower <= shorter:
            w -= SIZE_MULTIPLE
        else:
            h -= SIZE_MULTIPLE
    return w, h
