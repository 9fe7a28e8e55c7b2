"""The built-in planner's layout: parsed objects -> regions -> one box per instance.

Absolute positions first ("on the left"), then relations ("a cat above a dog") next to them or
each other, then the objects nothing placed share the free space; objects sharing a region split
it, and each object's instances tile its part."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..prompts import REGIONS, ParsedObject, ParsedPrompt, Region, plural_phrase
from ..prompts.zh_words import RELATION_ZH
from ..types import Box, LayoutItem

MAX_INSTANCES = 12  # layout boxes per image; the built-in model itself draws at most 8
SIZE_SCALE = {"big": 0.98, None: 0.8, "small": 0.5}  # sprite side as a fraction of its cell
RELATION_WORDS = {"left of": "to the left of", "right of": "to the right of"}


@dataclass
class Placed:
    """An object while it is being placed."""

    obj: ParsedObject
    region: Region | None = None
    relations: list[str] = field(default_factory=list)  # as the revised prompt says them


def layout(parsed: ParsedPrompt, width: int, height: int) -> tuple[list[Placed], list[LayoutItem]]:
    """-> the placed objects (in prompt order) and their boxes in output pixels."""
    placed = [Placed(o) for o in parsed.objects]
    place_relations(placed, parsed.relations)
    loose = [p for p in placed if p.region is None]
    if loose:
        free = free_region([p.region for p in placed if p.region is not None])
        for p, part in zip(loose, split(free, len(loose), width / height), strict=True):
            p.region = part
    # Objects sharing one region split it between them.
    groups: dict[Region, list[Placed]] = {}
    for p in placed:
        assert p.region is not None
        groups.setdefault(p.region, []).append(p)
    items: list[LayoutItem] = []
    for region, members in groups.items():
        parts = split(region, len(members), width / height) if len(members) > 1 else [region]
        for p, part in zip(members, parts, strict=True):
            for box in tile(part, p.obj.count, SIZE_SCALE[p.obj.size], width, height):
                items.append(LayoutItem(p.obj.label, box))
    return placed, items[:MAX_INSTANCES]


def place_relations(placed: list[Placed], relations: list[tuple[str, int, list[int]]]) -> None:
    """Regions for objects placed by relations, next to absolute ones or each other."""
    wheres = {p.obj.where for p in placed if p.obj.where in REGIONS}
    thirds = "center" in wheres and len(wheres) > 1  # "a house in the middle, a tree on the left"
    for p in placed:
        if p.obj.where in REGIONS:
            p.region = _third(p.obj.where) if thirds else REGIONS[p.obj.where]
    for kind, ia, ib in relations:
        a, others = placed[ia], [placed[i] for i in ib]
        # Objects placed by nothing but this relation share the space nobody has taken yet.
        free = free_region([p.region for p in placed if p.region is not None])
        if kind == "between" and len(others) == 2:
            _between(a, others[0], others[1], free)
            continue
        b = others[0]
        a.relations.append(f"在{b.obj.noun}的{RELATION_ZH.get(kind, kind)}" if a.obj.lang == "zh"
                           else f"{RELATION_WORDS.get(kind, kind)} {ref(b.obj)}")
        axis = {"above": 1, "below": 1, "left of": 0, "right of": 0, "next to": 0}.get(kind)
        if axis is None:  # in front of / behind: overlapping, drawn in order
            _overlapping(a, b, free)
            continue
        first = kind in ("above", "left of", "next to")  # a takes the top / left part
        a.region, b.region = _pair(a.region, b.region, axis, first, free)


def _between(a: Placed, b: Placed, c: Placed, free: Region) -> None:
    fx1, fy1, fx2, fy2 = free
    third, pad = (fx2 - fx1) / 3, 0.15 * (fy2 - fy1)
    b.region = b.region or (fx1, fy1 + pad, fx1 + third, fy2 - pad)
    c.region = c.region or (fx2 - third, fy1 + pad, fx2, fy2 - pad)
    mid = (b.region[2] + c.region[0]) / 2
    a.region = a.region or (mid - third / 2, fy1 + pad, mid + third / 2, fy2 - pad)
    a.relations.append(f"在{b.obj.noun}和{c.obj.noun}之间" if a.obj.lang == "zh"
                       else f"between {ref(b.obj)} and {ref(c.obj)}")


def _overlapping(a: Placed, b: Placed, free: Region) -> None:
    fx1, fy1, fx2, fy2 = free
    w, h = fx2 - fx1, fy2 - fy1
    b.region = b.region or (fx1 + 0.2 * w, fy1 + 0.1 * h, fx2 - 0.2 * w, fy1 + 0.75 * h)
    if a.region is None:
        r = b.region
        a.region = (r[0] + 0.1 * (r[2] - r[0]), r[1] + 0.25 * (r[3] - r[1]), r[2] - 0.1 * (r[2] - r[0]),
                    min(1.0, r[3] + 0.15 * (r[3] - r[1])))


def _third(where: str) -> Region:
    """Regions on a 3 x 3 grid, so that the center does not overlap the sides."""
    if where == "center":
        return (1 / 3, 1 / 3, 2 / 3, 2 / 3)
    parts = where.split()
    x = (0.0, 1 / 3) if "left" in parts else (2 / 3, 1.0) if "right" in parts else (0.0, 1.0)
    y = (0.0, 1 / 3) if "top" in parts else (2 / 3, 1.0) if "bottom" in parts else (0.0, 1.0)
    return (x[0], y[0], x[1], y[1])


def ref(obj: ParsedObject) -> str:
    return "the " + (plural_phrase(obj.noun) if obj.count > 1 else obj.noun)


def _pair(ra: Region | None, rb: Region | None, axis: int, a_first: bool, free: Region) -> tuple[Region, Region]:
    """Split along axis (0: x, 1: y) so that a comes first (left/top) when a_first."""
    def halves(r: Region) -> tuple[Region, Region]:
        mid = (r[axis] + r[axis + 2]) / 2
        lo, hi = list(r), list(r)
        lo[axis + 2], hi[axis] = mid, mid
        return tuple(lo), tuple(hi)  # type: ignore[return-value]

    if ra is None and rb is None:
        lo, hi = halves(free)
        return (lo, hi) if a_first else (hi, lo)
    if ra is None or rb is None:
        known = ra if ra is not None else rb
        assert known is not None
        span = known[axis + 2] - known[axis]
        other = list(known)
        before = (ra is None) == a_first  # the unknown one goes before the known one
        if before and known[axis] >= 0.3:
            other[axis], other[axis + 2] = max(0.0, known[axis] - span), known[axis]
        elif not before and known[axis + 2] <= 0.7:
            other[axis], other[axis + 2] = known[axis + 2], min(1.0, known[axis + 2] + span)
        else:  # no room beside it: share the known region
            lo, hi = halves(known)
            new, kept = (lo, hi) if before else (hi, lo)
            return (new, kept) if ra is None else (kept, new)
        return (tuple(other), known) if ra is None else (known, tuple(other))  # type: ignore[return-value]
    return ra, rb


def free_region(taken: list[Region]) -> Region:
    """The largest half or quadrant of the canvas that overlaps the taken regions least."""
    if not taken:
        return REGIONS["whole"]
    candidates = [REGIONS[k] for k in ("right", "left", "bottom", "top", "bottom right", "top right",
                                       "bottom left", "top left")]

    def overlap(r: Region) -> float:
        return sum(max(0.0, min(r[2], t[2]) - max(r[0], t[0])) * max(0.0, min(r[3], t[3]) - max(r[1], t[1]))
                   for t in taken)

    return min(candidates, key=lambda r: (round(overlap(r), 3), -(r[2] - r[0]) * (r[3] - r[1])))


def split(region: Region, k: int, aspect: float) -> list[Region]:
    """k equal parts along the region's longer side (in pixels)."""
    x1, y1, x2, y2 = region
    out = []
    for i in range(k):
        if (x2 - x1) * aspect >= (y2 - y1):
            w = (x2 - x1) / k
            out.append((x1 + i * w, y1, x1 + (i + 1) * w, y2))
        else:
            h = (y2 - y1) / k
            out.append((x1, y1 + i * h, x2, y1 + (i + 1) * h))
    return out


def tile(region: Region, n: int, scale: float, width: int, height: int) -> list[Box]:
    """n square boxes in a grid inside region, each `scale` of its cell, in output pixels."""
    x1, y1, x2, y2 = region[0] * width, region[1] * height, region[2] * width, region[3] * height
    cols = max(1, min(n, round((n * (x2 - x1) / max(1.0, y2 - y1)) ** 0.5)))
    rows = -(-n // cols)
    cw, ch = (x2 - x1) / cols, (y2 - y1) / rows
    side = max(2.0, min(cw, ch) * scale)
    boxes = []
    for k in range(n):
        r, c = divmod(k, cols)
        in_row = min(cols, n - r * cols)  # centre a short last row
        cx = x1 + (c + 0.5 + (cols - in_row) / 2) * cw
        cy = y1 + (r + 0.5) * ch
        boxes.append(_pixel_box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, width, height))
    return boxes


def _pixel_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> Box:
    bx1, by1 = max(0, min(width - 1, round(x1))), max(0, min(height - 1, round(y1)))
    return Box(bx1, by1, max(bx1 + 1, min(width, round(x2))), max(by1 + 1, min(height, round(y2))))
