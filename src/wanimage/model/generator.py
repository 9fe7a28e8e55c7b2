"""BuiltinModel: the whole generator behind the engine. One call renders a batch of images:
place each image's scene (scenes.py; the caller parsed the prompt into it), generate every sprite of every image in ONE sampler run (so one
progress step = one denoising step for the whole job), upsample, compose (compose.py).

Every generated pixel comes from the networks: sprites from SpriteUNet + Upsampler; the rest is
a simple background or, for edits, the caller's own input pixels."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import compose
from .captions import COLOURS, dominant_colour
from .pipeline import (
    DEFAULT_CFG,
    DEFAULT_STEPS,
    clean_rgba,
    generate_sprites,
    to_straight_rgba,
    upsample,
)
from .scenes import EditSpec, ScenePlan, layout_boxes

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in output pixels

COLOUR_WORD_TINT = 0.85  # how far a sprite moves toward a colour word it does not already show


@dataclass
class ImageRequest:
    """One output image, in the model's own terms (no server types, no English: the caller
    parses the prompt into `scene` and, for edits, `edit`)."""

    prompt: str
    width: int
    height: int
    seed: int  # layout and sprite noise
    scene: ScenePlan = field(default_factory=ScenePlan)  # what to draw; boxed objects: thinking mode
    edit: EditSpec = field(default_factory=EditSpec)  # with `base`: what the edit asks beyond the scene
    background_seed: int | None = None  # images of a set share it; None: use seed
    base: np.ndarray | None = None  # (H, W, 3) uint8: the image being edited, output-sized
    edit_boxes: list[Box] = field(default_factory=list)  # pixels outside all boxes are kept
    palette: list[tuple[tuple[int, int, int], float]] | None = None
    shared_subject_seed: int | None = None  # sets: same phrase -> same sprite noise


@dataclass
class _Placed:
    phrase: str
    box: Box
    seed: int
    clip: Box | None = None
    colour: str | None = None  # a COLOURS name the sprite must show


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
        if req.base is not None:
            return self.plan_edit(req, rng)
        placed = [
            _Placed(o.phrase, to_px(box, req.width, req.height), self.sprite_seed(req, o.phrase, k), colour=o.colour)
            for k, (o, box) in enumerate(layout_boxes(req.scene, req.width / req.height, rng))
        ]
        return placed, req.scene

    def plan_edit(self, req: ImageRequest, rng: random.Random):
        """Edits: the scene is what to draw; boxes (if any) say where."""
        if req.edit.remove and req.edit_boxes:
            return [], ScenePlan()  # compose() fills the boxes
        plan = ScenePlan(background=req.scene.background)
        objects = req.scene.objects
        if (req.edit.background_only and not req.edit_boxes) or not objects:
            return [], plan  # background recolour only
        placed = []
        if req.edit_boxes:
            for k, box in enumerate(req.edit_boxes):
                o = objects[min(k, len(objects) - 1)]
                placed.append(_Placed(o.phrase, box, self.sprite_seed(req, o.phrase, k), clip=box, colour=o.colour))
        else:
            for k, (o, box) in enumerate(layout_boxes(ScenePlan(objects), req.width / req.height, rng)):
                small = shrink(box, 0.6)  # an added object should not hide the whole picture
                placed.append(_Placed(o.phrase, to_px(small, req.width, req.height),
                                      self.sprite_seed(req, o.phrase, k), colour=o.colour))
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
            if req.edit.remove:
                for box in req.edit_boxes:
                    compose.fill_region(canvas, box)
            if req.edit.background is not None and not req.edit_boxes:
                compose.recolour_background(canvas, req.edit.background)
        else:
            colours = plan.background or [c for c, _ in palette[:2]]
            bg_seed = req.background_seed if req.background_seed is not None else req.seed
            canvas = compose.background(req.height, req.width, colours,
                                        plan.gradient or len(colours) > 1, random.Random(bg_seed))
        for i, p in enumerate(placed):
            sprite = sprites[i]
            word = p.colour
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


def sprite_colour(sprite: torch.Tensor) -> str:
    """The colour word covering most of a (4, H, W) premultiplied sprite's opaque area."""
    return dominant_colour(np.asarray(to_straight_rgba(sprite[None])[0]))


def to_px(f: tuple[float, float, float, float], w: int, h: int) -> Box:
    return round(f[0] * w), round(f[1] * h), round(f[2] * w), round(f[3] * h)


def shrink(f: tuple, s: float) -> tuple:
    cx, cy = (f[0] + f[2]) / 2, (f[1] + f[3]) / 2
    hw, hh = (f[2] - f[0]) * s / 2, (f[3] - f[1]) * s / 2
    return cx - hw, cy - hh, cx + hw, cy + hh
