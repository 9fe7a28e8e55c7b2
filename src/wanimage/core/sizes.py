"""The `size` parameter (api-spec.md §1.4, §4.3): parsing a tier or W*H, the bounds each model id
and mode allow (core/model_rules.py), and the output size a tier gives once the last input image
is known."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter
from .model_rules import ModelRules, rules_for

TIERS = {"1K": 1024, "2K": 2048, "4K": 4096}
DEFAULT_SIZE = "2K"
MAX_PIXELS_PRO_T2I = 4096 * 4096
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


def default_size(rules: ModelRules, n_images: int) -> SizeSpec:
    """What an id draws when `size` is not sent: its text-to-image default, or with input images
    its edit tier (a pixel budget in the last image's ratio)."""
    return parse_size(rules.sizes.default_edit if n_images else rules.sizes.default_t2i)


def check_size_allowed(spec: SizeSpec, model: str | ModelRules, n_images: int, sequential: bool) -> None:
    rules = rules_for(model) if isinstance(model, str) else model
    sizes, name = rules.sizes, rules.id
    pure_t2i = n_images == 0 and not sequential
    if spec.tier == "4K" and sizes.four_k:
        if not pure_t2i:
            raise InvalidParameter(
                "size: 4K is available only for text-to-image (no input images, enable_sequential=false); use 1K or 2K",
                field="size",
            )
        return
    if spec.tier is not None:
        if spec.tier in sizes.tiers:
            return
        if spec.tier == "4K" and "2K" in sizes.tiers:
            raise InvalidParameter(
                f"size: 4K is available only on wan2.7-image-pro text-to-image; use 1K or 2K with {name}",
                field="size",
            )
        raise InvalidParameter(f"size: {name} takes {_what_it_takes(rules)}, not {spec.tier}", field="size")
    w, h = spec.width or 0, spec.height or 0
    if sizes.fixed:
        if (w, h) not in sizes.fixed:
            raise InvalidParameter(f"size: {name} takes {_what_it_takes(rules)}, not {w}*{h}", field="size")
        return
    if w == 0 or h == 0 or max(w, h) / min(w, h) > sizes.max_ratio:
        r = f"{sizes.max_ratio:g}"
        raise InvalidParameter(
            f"size: {w}*{h} has an aspect ratio beyond 1:{r} or {r}:1; choose sides within a factor of {r}",
            field="size",
        )
    if sizes.side_range and not all(sizes.side_range[0] <= v <= sizes.side_range[1] for v in (w, h)):
        low, high = sizes.side_range
        raise InvalidParameter(f"size: {w}*{h}: each side must lie between {low} and {high} pixels on {name}",
                               field="size")
    high = MAX_PIXELS_PRO_T2I if (sizes.four_k and pure_t2i) else sizes.max_pixels
    low = sizes.min_pixels
    if not low <= w * h <= high:
        lo_side, hi_side = math.isqrt(low), math.isqrt(high)
        raise InvalidParameter(
            f"size: {w}*{h} = {w * h} pixels; the total must lie between {lo_side}*{lo_side} ({low}) and "
            f"{hi_side}*{hi_side} ({high}) for this model and mode",
            field="size",
        )


def _what_it_takes(rules: ModelRules) -> str:
    sizes = rules.sizes
    if sizes.fixed:
        return "one of " + ", ".join(f"{w}*{h}" for w, h in sizes.fixed)
    tiers = f" or a tier ({', '.join(sizes.tiers)})" if sizes.tiers else ""
    return f"width*height with {math.isqrt(sizes.min_pixels)}*{math.isqrt(sizes.min_pixels)} to " \
           f"{math.isqrt(sizes.max_pixels)}*{math.isqrt(sizes.max_pixels)} pixels{tiers}"


def output_size(spec: SizeSpec, last_image: tuple[int, int] | None,
                tiers: dict[str, int] | None = None) -> tuple[int, int]:
    """Output (width, height): explicit W*H exactly; a tier's pixel budget (`tiers`: the model
    id's, e.g. wan2.6-image's 1K is 1280*1280), square without input images, else in the aspect
    ratio of the last input image, sides rounded to multiples of 16."""
    if spec.tier is None:
        return spec.width or 0, spec.height or 0
    side = {**TIERS, **(tiers or {})}[spec.tier]
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
