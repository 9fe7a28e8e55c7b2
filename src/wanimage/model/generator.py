"""BuiltinModel: the whole generator behind the engine. One call renders a batch of images:
place each image's scene (scenes.py; the caller parsed the prompt into it), generate every sprite of every image in ONE sampler run (so one
progress step = one denoising step for the whole job), upsample, compose (compose.py).

Every generated pixel comes from the networks: sprites from SpriteUNet + Upsampler; the rest is
a simple background or, for edits, the caller's own input pixels.

Open vocabulary (concepts.py): an object's subject the model does not know by that name is drawn
as its nearest known concept ("a sedan" -> "an automobile"). Variety (`vary`): each sprite's seed
also picks one of the concept's near variants and, for concepts that read the same mirrored, a
mirror image, and single objects get a looser place and size, so n images of one prompt differ
in more than the background; the same seed still gives the same pixels."""

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
from .captions import COLOURS, article, dominant_colour
from .chinese import colour_of, has_chinese
from .concepts import ConceptIndex, Match, load_concepts
from .pipeline import (
    DEFAULT_CFG,
    DEFAULT_STEPS,
    clean_rgba,
    generate_sprites,
    to_straight_rgba,
    upsample,
)
from .scenes import EditSpec, ObjectSpec, ScenePlan, layout_boxes

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
    mirror: bool = False  # drawn mirrored left to right (a pose of the same subject)


class BuiltinModel:
    def __init__(self, sprite, up, text_encoder, steps: int = DEFAULT_STEPS,
                 cfg_scale: float = DEFAULT_CFG, info: dict | None = None,
                 concepts: ConceptIndex | None = None, vary: bool = True):
        self.sprite, self.up, self.text = sprite, up, text_encoder
        self.steps, self.cfg_scale = steps, cfg_scale
        self.info = info or {}
        self.concepts = concepts  # None: phrases are drawn as written
        self.vary = vary
        self._matches: dict[str, Match | None] = {}

    @classmethod
    def from_file(cls, path: Path, device: str = "cpu", **kw) -> BuiltinModel:
        from .text import TextEncoder
        from .weights import load_weights

        sprite, up, info = load_weights(path, device)
        concepts = path.with_name("concepts.safetensors")
        kw.setdefault("concepts", load_concepts(concepts) if concepts.is_file() else None)
        return cls(sprite, up, TextEncoder(device), info=info, **kw)

    # 0. open vocabulary --------------------------------------------------------------------
    def matches(self, objects: list[ObjectSpec]) -> dict[str, Match | None]:
        """phrase -> its nearest known concept, for objects with a subject (memoised; None: none
        near). The phrase keeps its colour word, so "a red apple" finds "red apple"."""
        if self.concepts is None:
            return {}
        asked = {o.phrase: (o.subject, o.context) for o in reversed(objects) if looked_up(o)}  # first wins
        missing = [p for p in asked if (p, asked[p][1]) not in self._matches]
        for p in missing:  # one at a time: a phrase's vector never depends on what it was batched with
            subject, context = asked[p]
            if has_chinese(p) or has_chinese(subject):  # by the Chinese table, no vectors (chinese.py)
                self._matches[p, context] = self.concepts.match_chinese(p, subject)
                continue
            if not hasattr(self.text, "sentences"):
                self._matches[p, context] = None
                continue
            around = self.text.sentences([f"{p} {context}"]) if context else None
            names = [self.concepts.names_in(p, subject)]
            self._matches[p, context] = self.concepts.match(self.text.sentences([p]), names, around)[0]
        if len(self._matches) > 4096:  # bound memory in a long-running server
            for k in list(self._matches)[:1024]:
                if k[0] not in missing:
                    del self._matches[k]
        return {p: self._matches[p, context] for p, (_, context) in asked.items()}

    def sprite_phrase(self, o: ObjectSpec, seed: int, found: dict[str, Match | None]) -> tuple[str, bool]:
        """What the sprite network is asked for, and whether it is mirrored: the subject swapped
        for its concept (with `vary`, a near variant picked by the seed, never one whose label
        names another colour than the phrase)."""
        m = found.get(o.phrase) if looked_up(o) else None
        if m is None:
            return o.phrase, False
        rng = random.Random(seed ^ 0x5F3759DF)
        colour = object_colour(o, m)
        said = {w for w in o.phrase.lower().split() if w in COLOURS} | ({colour} if colour else set())
        fitting = [v for v in m.variants if not ({w for w in v.lower().split() if w in COLOURS} - said)]
        label = rng.choice(fitting or [m.label]) if self.vary else m.label
        mirror = self.vary and m.mirror and rng.random() < 0.5
        if m.term is not None:  # Chinese: the sprite network reads English, so it gets the label's words
            named = colour is None or any(w in COLOURS for w in label.lower().split())
            return article(label if named else f"{colour} {label}"), mirror
        return swap_subject(o.phrase, o.subject, label), mirror

    # 1. planning ---------------------------------------------------------------------------
    def plan(self, req: ImageRequest) -> tuple[list[_Placed], ScenePlan]:
        """Which sprites go where in this image, and the background."""
        rng = random.Random(req.seed)
        if req.base is not None:
            return self.plan_edit(req, rng)
        found = self.matches(req.scene.objects)
        placed = []
        for k, (o, box) in enumerate(layout_boxes(req.scene, req.width / req.height, rng, loose=self.vary)):
            seed = self.sprite_seed(req, o.phrase, k)
            phrase, mirror = self.sprite_phrase(o, seed, found)
            placed.append(_Placed(phrase, to_px(box, req.width, req.height), seed, colour=object_colour(o, found),
                                  mirror=mirror))
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
        found = self.matches(objects)
        if req.edit_boxes:
            for k, box in enumerate(req.edit_boxes):
                o = objects[min(k, len(objects) - 1)]
                seed = self.sprite_seed(req, o.phrase, k)
                phrase, mirror = self.sprite_phrase(o, seed, found)
                placed.append(_Placed(phrase, box, seed, clip=box, colour=object_colour(o, found), mirror=mirror))
        else:
            for k, (o, box) in enumerate(layout_boxes(ScenePlan(objects), req.width / req.height, rng)):
                small = shrink(box, 0.6)  # an added object should not hide the whole picture
                seed = self.sprite_seed(req, o.phrase, k)
                phrase, mirror = self.sprite_phrase(o, seed, found)
                placed.append(_Placed(phrase, to_px(small, req.width, req.height), seed,
                                      colour=object_colour(o, found), mirror=mirror))
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
                                        plan.gradient or len(colours) > 1, random.Random(bg_seed), plan.ground)
        for i, p in enumerate(placed):
            sprite = sprites[i].flip(-1) if p.mirror else sprites[i]
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


def looked_up(o: ObjectSpec) -> bool:
    """Objects the concept lookup reads: those with a subject, and any Chinese phrase (a layout
    label in Chinese comes without one)."""
    return bool(o.subject) or has_chinese(o.phrase)


def object_colour(o: ObjectSpec, found: dict[str, Match | None] | Match | None) -> str | None:
    """The colour the object must show: the parser's, else for a Chinese phrase the colour word
    describing the word its concept was found by ("一辆黄色出租车" -> yellow)."""
    m = found.get(o.phrase) if isinstance(found, dict) else found
    if o.colour is not None or m is None or m.term is None:
        return o.colour
    return colour_of(o.phrase, m.term) or (colour_of(o.subject, m.term) if o.subject else None)


def swap_subject(phrase: str, subject: str, label: str) -> str:
    """'a gold sedan', 'sedan', 'automobile' -> 'a gold automobile' (the article fixed)."""
    at = phrase.lower().rfind(subject.lower())
    words = (phrase[:at] + label + phrase[at + len(subject):]) if at >= 0 else label
    words = re.sub(r"\b(\w+) \1\b", r"\1", words.strip(), flags=re.I)  # 'a red red apple'
    first, _, rest = words.partition(" ")
    return article(rest if first.lower() in ("a", "an") and rest else words)


def sprite_colour(sprite: torch.Tensor) -> str:
    """The colour word covering most of a (4, H, W) premultiplied sprite's opaque area."""
    return dominant_colour(np.asarray(to_straight_rgba(sprite[None])[0]))


def to_px(f: tuple[float, float, float, float], w: int, h: int) -> Box:
    return round(f[0] * w), round(f[1] * h), round(f[2] * w), round(f[3] * h)


def shrink(f: tuple, s: float) -> tuple:
    cx, cy = (f[0] + f[2]) / 2, (f[1] + f[3]) / 2
    hw, hh = (f[2] - f[0]) * s / 2, (f[3] - f[1]) * s / 2
    return cx - hw, cy - hh, cx + hw, cy + hh
