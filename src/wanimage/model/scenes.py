"""Prompt -> scene plan: which objects (as phrases the sprite model understands), how many, where,
and on what background. Plain rules, no network: thinking mode may hand us boxes instead.

"two red apples on the left and a cat on the right on a blue background" ->
  objects [("a red apple", 2, "left"), ("a cat", 1, "right")], background colours [blue]."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from .captions import COLOURS, is_blocked

NUMBERS = {"a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "pair of": 2, "a pair of": 2,
           "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 8,
           "ten": 8, "several": 3, "some": 3, "many": 5}  # capped at MAX_OBJECTS
MAX_OBJECTS = 8  # sprites per image; beyond this they get too small to read at 1K

# Regions as (x1, y1, x2, y2) fractions of the canvas.
WHERE: dict[str, tuple[float, float, float, float]] = {
    "top left": (0.0, 0.0, 0.5, 0.5), "top right": (0.5, 0.0, 1.0, 0.5),
    "bottom left": (0.0, 0.5, 0.5, 1.0), "bottom right": (0.5, 0.5, 1.0, 1.0),
    "left": (0.0, 0.0, 0.5, 1.0), "right": (0.5, 0.0, 1.0, 1.0),
    "top": (0.0, 0.0, 1.0, 0.5), "bottom": (0.0, 0.5, 1.0, 1.0),
    "center": (0.2, 0.2, 0.8, 0.8), "middle": (0.2, 0.2, 0.8, 0.8),
}
_WHERE_RE = re.compile(
    r"\b(?:on|at|in|to)?\s*(?:the\s+)?(top left|top right|bottom left|bottom right|upper left|"
    r"upper right|lower left|lower right|left|right|top|bottom|center|centre|middle)"
    r"(?:\s+(?:side|corner|half|part))?\b"
)
_BG_RE = re.compile(  # the words between the last "on/with/against" and "background"
    r"\b(?:on|with|against|over)\s+(?:a|an|the)?\s*"
    r"((?:(?!\b(?:on|with|against|over|and a|and an)\b)[\w\s-])*?)\s*background\b"
)
_FILLER_RE = re.compile(
    r"^(?:please\s+)?(?:draw|generate|create|make|show|render|paint|add|put|place|insert)?\s*"
    r"(?:me\s+)?(?:an?\s+)?(?:(?:picture|image|photo|illustration|drawing|emoji|icon)\s+of\s+)?"
)
_SPLIT_RE = re.compile(r"\s*(?:,|;|\.\s+|\.$|\band\b|\bnext to\b|\bbeside\b|\bplus\b)\s*")
_STYLE_RE = re.compile(r"\s*\b(?:in|with)\s+(?:an?\s+)?(?:[\w-]+\s+){0,2}style\b")
# Chunks that describe the picture rather than an object ("Three objects in total.", "flat style").
_META_RE = re.compile(
    r"\b(?:in total|objects?|style|scene|composition|lighting|quality|detailed|resolution|"
    r"aspect|colou?rs?|palette|centered|centred|background)\b"
)
_SET_RE = re.compile(r"\bimage\s*(\d+)\s*[:：]\s*", re.I)


@dataclass
class ObjectSpec:
    phrase: str  # what the sprite model is asked for, e.g. "a red apple"
    count: int = 1
    where: str | None = None  # a WHERE key
    box: tuple[float, float, float, float] | None = None  # explicit fractions (layout / bbox)


@dataclass
class ScenePlan:
    objects: list[ObjectSpec] = field(default_factory=list)
    background: list[tuple[int, int, int]] = field(default_factory=list)  # 0, 1 or 2 colours
    gradient: bool = False


def split_set_prompt(prompt: str, n: int) -> list[str]:
    """'image 1: a cat. image 2: a dog' -> per-image prompts; a plain prompt repeats n times.
    Text before the first 'image k:' is shared context and prefixes every image."""
    parts = _SET_RE.split(prompt)
    if len(parts) < 3:
        return [prompt] * n
    shared = parts[0].strip(" .,;")
    per: dict[int, str] = {}
    for k in range(1, len(parts) - 1, 2):
        per[int(parts[k])] = parts[k + 1].strip(" .,;")
    out = []
    for i in range(1, max(per) + 1):
        text = per.get(i, "")
        out.append(", ".join(p for p in (text, shared) if p) or prompt)
    return out[:n]


def singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "oes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def parse_background(text: str) -> tuple[str, list[tuple[int, int, int]], bool]:
    """Remove 'on a blue and white gradient background' from text; return its colours."""
    m = _BG_RE.search(text)
    if not m:
        return text, [], False
    desc = m.group(1)
    colours = [COLOURS[w] for w in re.findall(r"[a-z]+", desc) if w in COLOURS]
    colours += [COLOURS["gray"] for w in re.findall(r"grey", desc)]
    gradient = "gradient" in desc or len(colours) > 1
    return (text[: m.start()] + text[m.end():]).strip(), colours[:2], gradient


def parse_object(chunk: str) -> ObjectSpec | None:
    """'two red apples on the left' -> ObjectSpec('a red apple', 2, 'left')."""
    where = None
    m = _WHERE_RE.search(chunk)
    if m:
        where = m.group(1).replace("upper", "top").replace("lower", "bottom").replace("centre", "center")
        chunk = (chunk[: m.start()] + chunk[m.end():]).strip()
    chunk = _FILLER_RE.sub("", chunk.strip(" .!")).strip()
    chunk = _STYLE_RE.sub("", chunk).strip()  # "a cat in flat style" -> "a cat"
    if _META_RE.search(chunk):
        return None
    count = 1
    for word, n in sorted(NUMBERS.items(), key=lambda kv: -len(kv[0])):
        if re.match(rf"{word}\b", chunk):
            count, chunk = n, chunk[len(word):].strip()
            break
    else:
        m = re.match(r"(\d+)\s+", chunk)
        if m:
            count, chunk = max(1, min(int(m.group(1)), MAX_OBJECTS)), chunk[m.end():]
    chunk = re.sub(r"^(?:the|of)\s+", "", chunk).strip()
    if not chunk or is_blocked(chunk):
        return None
    words = chunk.split()
    if count > 1:
        words[-1] = singular(words[-1])
    noun = " ".join(words)
    return ObjectSpec(("an " if noun[0] in "aeiou" else "a ") + noun, count, where)


def parse_prompt(prompt: str) -> ScenePlan:
    text = " ".join(prompt.lower().split())
    text, colours, gradient = parse_background(text)
    objects = [o for o in (parse_object(c) for c in _SPLIT_RE.split(text) if c.strip()) if o]
    return ScenePlan(objects=objects, background=colours, gradient=gradient)


def layout_boxes(plan: ScenePlan, aspect: float, rng: random.Random) -> list[tuple[str, tuple]]:
    """Place every object instance: -> [(phrase, (x1, y1, x2, y2) fractions)], at most
    MAX_OBJECTS. Objects with a region share it; the rest share the whole canvas."""
    placed: list[tuple[str, tuple]] = []
    groups: dict[tuple, list[str]] = {}
    for o in plan.objects:
        if o.box is not None:
            placed.append((o.phrase, o.box))
            continue
        region = WHERE.get(o.where or "", (0.0, 0.0, 1.0, 1.0))
        groups.setdefault(region, []).extend([o.phrase] * o.count)
    for region, phrases in groups.items():
        placed.extend(zip(phrases, tile(region, len(phrases), aspect, rng), strict=True))
    return placed[:MAX_OBJECTS]


def tile(region: tuple, n: int, aspect: float, rng: random.Random) -> list[tuple]:
    """n square-ish cells inside region (fractions), with a little seeded jitter."""
    x1, y1, x2, y2 = region
    w, h = (x2 - x1) * aspect, y2 - y1  # in units of canvas height
    cols = max(1, round((n * w / h) ** 0.5))
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    cw, ch = (x2 - x1) / cols, (y2 - y1) / rows
    side = min(cw * aspect, ch) * (0.78 if n == 1 else 0.86)  # sprite side, canvas-height units
    out = []
    for k in range(n):
        r, c = divmod(k, cols)
        cx = x1 + (c + 0.5) * cw + rng.uniform(-0.08, 0.08) * cw
        cy = y1 + (r + 0.5) * ch + rng.uniform(-0.08, 0.08) * ch
        s = side * rng.uniform(0.88, 1.0)
        sw = s / aspect
        out.append((cx - sw / 2, cy - s / 2, cx + sw / 2, cy + s / 2))
    return out
