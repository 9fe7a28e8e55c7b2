"""BuiltinModel: the whole generator behind the engine. One call renders a batch of images:
plan each image (scenes.py), generate every sprite of every image in ONE sampler run (so one
progress step = one denoising step for the whole job), upsample, compose (compose.py).

Every generated pixel comes from the networks: sprites from SpriteUNet + Upsampler; the rest is
a simple background or, for edits, the caller's own input pixels."""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import compose
from .captions import COLOURS, dominant_colour, is_blocked, nearest_colour_word
from .pipeline import (
    DEFAULT_CFG,
    DEFAULT_STEPS,
    clean_rgba,
    generate_sprites,
    to_straight_rgba,
    upsample,
)
from .scenes import ObjectSpec, ScenePlan, layout_boxes, parse_prompt

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in output pixels

_REMOVE_RE = re.compile(r"\b(?:remove|delete|erase|get rid of)\b")
_REPLACE_RE = re.compile(r"\b(?:replace|swap)\b.*?\b(?:with|by|for)\b\s+(.*)")
_INTO_RE = re.compile(r"\b(?:change|turn|make|transform)\b.*?\b(?:into|to)\b\s+(.*)")
COLOUR_WORD_TINT = 0.85  # how far a sprite moves toward a colour word it does not already show
_BG_EDIT_RE = re.compile(r"\b(?:background|backdrop)\b.*?\b(?:to|into)\b\s+(?:a |an )?(\w+)")


@dataclass
class ImageRequest:
    """One output image, in the model's own terms (no server types)."""

    prompt: str
    width: int
    height: int
    seed: int  # layout and sprite noise
    background_seed: int | None = None  # images of a set share it; None: use seed
    base: np.ndarray | None = None  # (H, W, 3) uint8: the image being edited, output-sized
    edit_boxes: list[Box] = field(default_factory=list)  # pixels outside all boxes are kept
    layout: list[tuple[str, Box]] | None = None  # planned objects from thinking mode
    palette: list[tuple[tuple[int, int, int], float]] | None = None
    shared_subject_seed: int | None = None  # sets: same phrase -> same sprite noise


@dataclass
class _Placed:
    phrase: str
    box: Box
    seed: int
    clip: Box | None = None
    tint: tuple[int, int, int] | None = None


class BuiltinModel:
    def __init__(self, sprite, up, text_encoder, steps: int = DEFAULT_STEPS,
                 cfg_scale: float = DEFAULT_CFG, info: dict | None = None):
        self.sprite, self.up, self.text = sprite, up, text_encoder
        self.steps, self.cfg_scale = steps, cfg_scale
        self.info = info or {}

    @classmethod
    def from_file(cls, path: Path, device: str = "cpu", **kw) -> BuiltinModel:
        from .text import TextEncoder
        from .weights import load_weights

        sprite, up, info = load_weights(path, device)
        return cls(sprite, up, TextEncoder(device), info=info, **kw)

    # 1. planning ---------------------------------------------------------------------------
    def plan(self, req: ImageRequest) -> tuple[list[_Placed], ScenePlan]:
        """Which sprites go where in this image, and the background."""
        rng = random.Random(req.seed)
        text = req.prompt.lower()
        if req.base is not None:
            return self.plan_edit(req, text, rng)
        plan = parse_prompt(req.prompt)
        if req.layout:
            plan.objects = [ObjectSpec(phrase=label, box=frac(b, req.width, req.height))
                            for label, b in req.layout]
        if not plan.objects:  # nothing parsed: the whole prompt, unless it names a blocked thing
            text = req.prompt.strip()
            plan.objects = [ObjectSpec(phrase=text if text and not is_blocked(text) else "a smiling face")]
        placed = [
            _Placed(phrase, to_px(box, req.width, req.height), self.sprite_seed(req, phrase, k))
            for k, (phrase, box) in enumerate(layout_boxes(plan, req.width / req.height, rng))
        ]
        return placed, plan

    def plan_edit(self, req: ImageRequest, text: str, rng: random.Random):
        """Edits: the object phrase comes after the verb; boxes (if any) say where."""
        plan = ScenePlan()
        if _REMOVE_RE.search(text) and req.edit_boxes:
            return [], plan  # compose() fills the boxes
        m = _REPLACE_RE.search(text) or _INTO_RE.search(text)
        target = parse_prompt(m.group(1) if m else text)
        plan.background = target.background
        if _BG_EDIT_RE.search(text) and not req.edit_boxes:
            return [], plan  # background recolour only
        objects = target.objects or [ObjectSpec(phrase="a smiling face" if is_blocked(text) else text)]
        placed = []
        if req.edit_boxes:
            for k, box in enumerate(req.edit_boxes):
                phrase = objects[min(k, len(objects) - 1)].phrase
                placed.append(_Placed(phrase, box, self.sprite_seed(req, phrase, k), clip=box))
        else:
            for k, (phrase, box) in enumerate(layout_boxes(ScenePlan(objects), req.width / req.height, rng)):
                small = shrink(box, 0.6)  # an added object should not hide the whole picture
                placed.append(_Placed(phrase, to_px(small, req.width, req.height),
                                      self.sprite_seed(req, phrase, k)))
        return placed, plan

    def sprite_seed(self, req: ImageRequest, phrase: str, k: int) -> int:
        if req.shared_subject_seed is not None:  # sets: the same subject in every image
            return (req.shared_subject_seed + zlib.crc32(phrase.encode()) + k) % 2**31
        return (req.seed * 1009 + k) % 2**31

    # 2. the whole job ------------------------------------------------------------------------
    def generate(self, reqs: list[ImageRequest],
                 progress: Callable[[float, Callable[[], list[Image.Image]] | None], None] | None = None,
                 ) -> list[Image.Image]:
        plans = [self.plan(r) for r in reqs]
        placed = [p for ps, _ in plans for p in ps]
        sprites = torch.zeros(0, 4, 256, 256)
        if placed:
            ctx, mask = self.text.encode_cached([p.phrase for p in placed])

            def callback(info: dict) -> None:
                if progress is not None:
                    x0 = clean_rgba(info["denoised"])
                    progress((info["i"] + 1) / info["n"],
                             lambda: self.compose_all(reqs, plans, torch.nn.functional.interpolate(
                                 x0, scale_factor=8, mode="bilinear")))

            lo = generate_sprites(self.sprite, ctx, mask, [p.seed for p in placed],
                                  self.steps, self.cfg_scale, callback)  # (S, 4, 32, 32)
            sprites = torch.cat([upsample(self.up, lo[i : i + 8]) for i in range(0, len(lo), 8)])
        elif progress is not None:
            progress(1.0, None)
        return self.compose_all(reqs, plans, sprites)

    # 3. compositing -------------------------------------------------------------------------
    def compose_all(self, reqs, plans, sprites: torch.Tensor) -> list[Image.Image]:
        out, k = [], 0
        for req, (placed, plan) in zip(reqs, plans, strict=True):
            out.append(self.compose_one(req, placed, plan, sprites[k : k + len(placed)]))
            k += len(placed)
        return out

    def compose_one(self, req: ImageRequest, placed: list[_Placed], plan: ScenePlan,
                    sprites: torch.Tensor) -> Image.Image:
        palette = sorted(req.palette or [], key=lambda c: -c[1])
        if req.base is not None:
            canvas = req.base.astype(np.float32) / 255  # (H, W, 3)
            text = req.prompt.lower()
            if _REMOVE_RE.search(text):
                for box in req.edit_boxes:
                    compose.fill_region(canvas, box)
            m = _BG_EDIT_RE.search(text)
            if m and m.group(1) in COLOURS and not req.edit_boxes:
                compose.recolour_background(canvas, COLOURS[m.group(1)])
        else:
            colours = plan.background or [c for c, _ in palette[:2]]
            bg_seed = req.background_seed if req.background_seed is not None else req.seed
            canvas = compose.background(req.height, req.width, colours,
                                        plan.gradient or len(colours) > 1, random.Random(bg_seed))
        for i, p in enumerate(placed):
            sprite = sprites[i]
            word = colour_word(p.phrase)
            if word is None and len(palette) > 1:
                sprite = compose.tint(sprite, palette[1 + i % (len(palette) - 1)][0], 0.35)
            elif word is not None and sprite_colour(sprite) != word:
                # "a blue apple": the network draws apples in their own colours; the asked
                # colour wins, with the network's shading kept.
                sprite = compose.recolour(sprite, COLOURS[word], COLOUR_WORD_TINT)
            compose.paste(canvas, sprite, p.box, clip=p.clip)
        arr = np.clip(np.round(canvas * 255), 0, 255).astype(np.uint8)
        if req.base is not None and req.edit_boxes:  # exactness outside boxes, whatever happened
            keep = np.ones(arr.shape[:2], bool)
            for x1, y1, x2, y2 in req.edit_boxes:
                keep[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = False
            arr[keep] = req.base[keep]
        return Image.fromarray(arr, "RGB")


def colour_word(phrase: str) -> str | None:
    """The first colour word of an object phrase ('a blue apple' -> 'blue'), or None."""
    return next((w for w in phrase.lower().split() if w in COLOURS), None)


def sprite_colour(sprite: torch.Tensor) -> str:
    """The colour word covering most of a (4, H, W) premultiplied sprite's opaque area."""
    return dominant_colour(np.asarray(to_straight_rgba(sprite[None])[0]))


def frac(b: Box, w: int, h: int) -> tuple[float, float, float, float]:
    return b[0] / w, b[1] / h, b[2] / w, b[3] / h


def to_px(f: tuple[float, float, float, float], w: int, h: int) -> Box:
    return round(f[0] * w), round(f[1] * h), round(f[2] * w), round(f[3] * h)


def shrink(f: tuple, s: float) -> tuple:
    cx, cy = (f[0] + f[2]) / 2, (f[1] + f[3]) / 2
    hw, hh = (f[2] - f[0]) * s / 2, (f[3] - f[1]) * s / 2
    return cx - hw, cy - hh, cx + hw, cy + hh


def palette_word(rgb: tuple[int, int, int]) -> str:
    return nearest_colour_word(rgb)
