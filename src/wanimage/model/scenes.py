"""Scene plan -> sprite boxes: which objects (as phrases the sprite model understands), how many,
where, and on what background. The caller reads the prompt (the built-in engine parses English
with wanimage.prompts) and hands the model a ScenePlan; thinking mode may hand it boxes instead.

  ScenePlan([ObjectSpec("a red apple", 2, "left", (0, 0, 0.5, 1), colour="red"),
             ObjectSpec("a cat", 1, "right", (0.5, 0, 1, 1))], background=[(40, 110, 220)])
    -> two apples tiled in the left half, a cat in the right half, on blue."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

MAX_OBJECTS = 8  # sprites per image the model tiles itself; beyond this they get too small to read at 1K
MAX_BOXED = 12  # sprites per image in explicit boxes (thinking mode's layout: the planner sized them)
WHOLE = (0.0, 0.0, 1.0, 1.0)


@dataclass
class ObjectSpec:
    phrase: str  # what the sprite model is asked for, e.g. "a red apple"
    count: int = 1  # as asked; at most MAX_OBJECTS are drawn
    where: str | None = None  # the region's name ("left", "top right"), for reading
    region: tuple[float, float, float, float] | None = None  # where the instances tile (fractions)
    box: tuple[float, float, float, float] | None = None  # one explicit box (fractions): layout / bbox
    colour: str | None = None  # a captions.COLOURS name the sprite must show ("a blue apple")
    subject: str | None = None  # what the object is, in the prompt's words ("sedan"): looked up in
    #                             concepts.py when the model does not know it by that name
    context: str = ""  # the prompt's words after the phrase ("in the swamp"): they help that lookup


@dataclass
class ScenePlan:
    objects: list[ObjectSpec] = field(default_factory=list)
    background: list[tuple[int, int, int]] = field(default_factory=list)  # 0, 1 or 2 colours
    gradient: bool = False
    ground: tuple[int, int, int] | None = None  # a ground band under the sky ("in the snow", "on the beach")


@dataclass
class EditSpec:
    """What an edit asks of the model beyond its scene (the objects to draw)."""

    remove: bool = False  # fill the edit boxes from their surroundings
    background_only: bool = False  # without boxes: change the background, draw nothing
    background: tuple[int, int, int] | None = None  # the background's new colour, when named


def layout_boxes(plan: ScenePlan, aspect: float, rng: random.Random,
                 loose: bool = False) -> list[tuple[ObjectSpec, tuple]]:
    """Place every object instance: -> [(object, (x1, y1, x2, y2) fractions)]: every explicit box
    (at most MAX_BOXED), then at most MAX_OBJECTS tiled ones. Objects with a region share it; the
    rest share the whole canvas. `loose`: wider seeded jitter of place and size, so that n images
    of one prompt differ in layout."""
    boxed = [(o, o.box) for o in plan.objects if o.box is not None][:MAX_BOXED]
    tiled: list[tuple[ObjectSpec, tuple]] = []
    groups: dict[tuple, list[ObjectSpec]] = {}
    for o in plan.objects:
        if o.box is None:
            groups.setdefault(o.region or WHOLE, []).extend([o] * min(o.count, MAX_OBJECTS))
    for region, objects in groups.items():
        tiled.extend(zip(objects, tile(region, len(objects), aspect, rng, loose), strict=True))
    return boxed + tiled[:MAX_OBJECTS]


def tile(region: tuple, n: int, aspect: float, rng: random.Random, loose: bool = False) -> list[tuple]:
    """n square-ish cells inside region (fractions), with a little seeded jitter (more if loose)."""
    x1, y1, x2, y2 = region
    w, h = (x2 - x1) * aspect, y2 - y1  # in units of canvas height
    cols = max(1, round((n * w / h) ** 0.5))
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    cw, ch = (x2 - x1) / cols, (y2 - y1) / rows
    side = min(cw * aspect, ch) * (0.78 if n == 1 else 0.86)  # sprite side, canvas-height units
    jitter, smallest = (0.16, 0.7) if loose else (0.08, 0.88)
    out = []
    for k in range(n):
        r, c = divmod(k, cols)
        s = side * rng.uniform(smallest, 1.0)
        room = min(jitter, max(0.0, (1 - s / (min(cw * aspect, ch))) / 2))  # stay inside the cell
        cx = x1 + (c + 0.5) * cw + rng.uniform(-room, room) * cw
        cy = y1 + (r + 0.5) * ch + rng.uniform(-room, room) * ch
        sw = s / aspect
        out.append((cx - sw / 2, cy - s / 2, cx + sw / 2, cy + s / 2))
    return out
