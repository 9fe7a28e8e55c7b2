"""The built-in planner: English prompt -> scene plan -> revised prompt + layout. Plain rules,
offline, no model. Deterministic: the same prompt and size give the same plan.

  "three red apples on the left and a cat above a dog, on a blue background"
    objects   3 x red apple (left), cat (above the dog), dog
    revised   "Three red apples on the left, one cat above the dog and one dog in the
               bottom-right corner, on a blue background. Five objects in total."
    layout    3 boxes in the left half, one box top right, one box bottom right (output pixels)

Steps (`plan_text`): 1. pull out style and background phrases; 2. split into clauses
(commas, "and a ...", sentences); 3. each clause is either a relation "A above B" or an object
phrase "[count] [size] [colour] noun [position] [detail]"; what parses as neither is kept
verbatim; 4. place the objects (absolute positions, then relations, then the rest in the free
space); 5. spell the plan out."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace

from ..types import Box, LayoutItem
from .base import Brief, Plan, PlannedObject

log = logging.getLogger(__name__)

MAX_INSTANCES = 12  # layout boxes per image; the built-in model itself draws at most 8
MAX_COUNT = 20
Region = tuple[float, float, float, float]  # x1, y1, x2, y2 as fractions of the canvas

# ------------------------------------------------------------------ vocabulary

NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "a dozen": 12, "dozen": 12, "a couple of": 2, "a pair of": 2, "pair of": 2, "couple of": 2,
    "a few": 3, "few": 3, "several": 3, "some": 3, "many": 5, "lots of": 5, "a lot of": 5,
    "a single": 1, "single": 1, "a": 1, "an": 1, "the": 1, "another": 1,
}
_NUMBER_RE = re.compile(
    r"^(?P<w>" + "|".join(sorted((re.escape(k) for k in NUMBERS), key=len, reverse=True)) + r"|\d{1,3})\b\s*",
    re.I,
)
COUNT_WORDS = {v: k for k, v in NUMBERS.items() if k.isalpha() and " " not in k and v <= 20
               and k not in ("a", "an", "the", "single", "another", "several", "some", "many", "few", "dozen")}
COLOURS = {
    "red": "red", "orange": "orange", "yellow": "yellow", "green": "green", "blue": "blue",
    "purple": "purple", "pink": "pink", "brown": "brown", "black": "black", "white": "white",
    "gray": "gray", "grey": "gray", "gold": "gold", "golden": "golden", "silver": "silver",
    "cyan": "cyan", "teal": "teal", "turquoise": "turquoise", "navy": "navy", "violet": "violet",
    "magenta": "magenta", "beige": "beige", "maroon": "maroon", "crimson": "crimson",
    "lime": "lime", "indigo": "indigo",
}
SIZES = {"big": "big", "large": "big", "huge": "big", "giant": "big", "enormous": "big",
         "massive": "big", "small": "small", "tiny": "small", "little": "small", "mini": "small",
         "miniature": "small"}
SIZE_SCALE = {"big": 0.98, None: 0.8, "small": 0.5}  # sprite side as a fraction of its cell
IRREGULAR = {"mice": "mouse", "geese": "goose", "people": "person", "children": "child",
             "men": "man", "women": "woman", "teeth": "tooth", "feet": "foot", "leaves": "leaf",
             "knives": "knife", "wolves": "wolf", "shelves": "shelf", "loaves": "loaf",
             "potatoes": "potato", "tomatoes": "tomato", "mangoes": "mango", "heroes": "hero",
             "cookies": "cookie", "movies": "movie", "zombies": "zombie", "pies": "pie",
             "ties": "tie", "dice": "die", "buses": "bus", "lenses": "lens", "gases": "gas", "oxen": "ox", "cacti": "cactus", "fungi": "fungus"}
PLURAL = {v: k for k, v in IRREGULAR.items()}
INVARIANT = {"sheep", "fish", "deer", "moose", "glass", "grass", "bus", "dress", "cactus",
             "octopus", "canvas", "gas", "news", "series", "species", "chess", "moss", "cross",
             "compass", "class", "boss", "lens", "iris", "bass", "hummus", "asparagus", "lotus",
             "walrus", "virus", "platypus", "hippopotamus", "circus", "bonus", "atlas"}
QUALITY_TAGS = re.compile(
    r"^(?:high quality|best quality|highly detailed|detailed|ultra detailed|masterpiece|4k|8k|hd|uhd|"
    r"sharp focus|sharp|beautiful|cinematic lighting|cinematic|award winning|trending on \w+|"
    r"professional|intricate|vivid colou?rs|soft lighting|studio lighting|golden hour|blue hour|sunset|"
    r"sunrise|night|at night|dusk|dawn|daylight|morning|evening|bokeh|wide angle|close-up)$", re.I)
_VERBS = {"is", "are", "was", "were", "be", "been", "has", "have", "had", "looks", "look",
          "seems", "feels", "should", "must", "can", "will", "make", "makes", "do", "does"}
_STOP = {"in", "on", "at", "with", "for", "from", "that", "which", "who", "while", "near", "under",
         "into", "onto", "over", "through", "across", "against", "by", "to", "without", "holding",
         "inside", "outside", "around", "behind", "wearing", "eating", "made", "covered", "full"}
_ING_NOUNS = {"king", "ring", "wing", "thing", "string", "spring", "swing", "building", "painting",
              "ceiling", "pudding", "dumpling", "earring", "sling", "sibling", "seedling", "duckling",
              "icing", "ping", "bling", "viking", "lightning", "stocking", "wedding", "clothing"}

# Regions as fractions of the canvas; names are how the revised prompt says them.
REGIONS: dict[str, Region] = {
    "top left": (0.0, 0.0, 0.5, 0.5), "top right": (0.5, 0.0, 1.0, 0.5),
    "bottom left": (0.0, 0.5, 0.5, 1.0), "bottom right": (0.5, 0.5, 1.0, 1.0),
    "left": (0.0, 0.0, 0.5, 1.0), "right": (0.5, 0.0, 1.0, 1.0),
    "top": (0.0, 0.0, 1.0, 0.5), "bottom": (0.0, 0.5, 1.0, 1.0),
    "center": (0.2, 0.2, 0.8, 0.8), "whole": (0.0, 0.0, 1.0, 1.0),
}
REGION_WORDS = {"left": "on the left", "right": "on the right", "top": "at the top",
                "bottom": "at the bottom", "center": "in the center"}

_V = r"(?:top|upper|bottom|lower)"
_H = r"(?:left|right)"
_POSITION_RE = re.compile(
    r"(?:\b(?:on|at|in|to|along|across|toward|towards|near)\s+)?(?:\bthe\s+)?(?:\b(?:far|very)\s+)?"
    rf"\b(?P<pos>{_V}[\s-]*{_H}|{_H}[\s-]*{_V}|{_V}|{_H}|center|centre|middle|centered|centred)"
    r"(?:[\s-]*hand)?(?:\s+(?:side|corner|half|part|edge|area|third))?"
    r"(?:\s+of\s+the\s+(?:picture|image|frame|canvas|scene|page|photo))?\b",
    re.I,
)
_RELATION_RE = re.compile(
    r"\b(?P<rel>to the left of|to the right of|on the left of|on the right of|left of|right of|"
    r"on top of|on the top of|sitting on top of|above|over|below|under|underneath|beneath|"
    r"next to|beside|alongside|near|between|in front of|behind)\b",
    re.I,
)
RELATION_KIND = {
    "to the left of": "left of", "on the left of": "left of", "left of": "left of",
    "to the right of": "right of", "on the right of": "right of", "right of": "right of",
    "on top of": "above", "on the top of": "above", "sitting on top of": "above", "above": "above",
    "over": "above", "below": "below", "under": "below", "underneath": "below", "beneath": "below",
    "next to": "next to", "beside": "next to", "alongside": "next to", "near": "next to",
    "between": "between", "in front of": "in front of", "behind": "behind",
}
_STYLE_WORDS = (
    r"watercolou?r(?:\s+painting)?|oil painting|acrylic painting|pixel art|line art|pencil sketch|"
    r"charcoal sketch|sketch|cartoon|anime|manga|photorealistic|photograph|3d render|flat illustration|"
    r"vector art|low poly|isometric|ukiyo-e|art nouveau|art deco|comic book|claymation|origami|"
    r"stained glass|minimalist|impressionist|cubist|surrealist|children's book illustration"
)
_STYLE_RES = (
    re.compile(r"\bin\s+the\s+style\s+of\s+(?P<s>[^,.;]{1,60})", re.I),
    re.compile(r"\b(?:in\s+)?(?:an?\s+|the\s+)?(?P<s>[\w'-]+(?:\s+[\w'-]+)?)[\s-]+style\b", re.I),
    re.compile(rf"\b(?:as\s+)?(?:an?\s+)?(?P<s>{_STYLE_WORDS})(?:\s+of\b)?", re.I),
)
_BACKGROUND_RES = (
    re.compile(r"\b(?:the\s+)?background\s+(?:is|should be)\s+(?P<d>[^,.;]{1,40})", re.I),
    re.compile(r"\bbackground\s*:\s*(?P<d>[^,.;]{1,40})", re.I),
    re.compile(r"\b(?:on|against|over|with|in front of|set against)\s+(?:a|an|the)?\s*"
               r"(?P<d>[\w\s-]{0,40}?)\s*\b(?:background|backdrop)\b", re.I),
    re.compile(r"(?:^|[,;.]\s*)(?:a|an|the)?\s*(?P<d>[\w-]+(?:\s+[\w-]+){0,2})\s+(?:background|backdrop)\b", re.I),
)
_FILLER_RE = re.compile(
    r"^\s*(?:please\s+)?(?:(?:draw|generate|create|make|show|render|paint|design|depict|illustrate)\s+)?"
    r"(?:me\s+)?(?:(?:an?\s+|the\s+)?(?:picture|image|illustration|drawing|scene|poster|composition)\s+"
    r"(?:of|with|showing|where)\s+)?(?:there\s+(?:is|are)\s+)?",
    re.I,
)
_FRAMING_RE = re.compile(  # "a cinematic close-up photo of": kept, then the objects parsed
    r"\b(?:an?\s+|the\s+)?(?P<f>(?:[\w-]+\s+){0,2}(?:shot|close-up|closeup|view|portrait|photo|photograph|"
    r"render|painting|sketch))\s+of\s+", re.I)
_SET_RE = re.compile(r"\b(?:image|picture|panel|frame|scene)\s*(\d{1,2})\s*[:：.)\-–]\s*", re.I)
_AND_RE = re.compile(r"\s+(?:and|plus|as well as|&)\s+", re.I)


@dataclass
class _Obj:
    """An object while planning; becomes a PlannedObject."""

    noun: str
    count: int = 1
    colour: str | None = None
    size: str | None = None
    where: str | None = None
    detail: str = ""
    definite: bool = False  # "the cat": may refer to an earlier object
    relations: list[str] = field(default_factory=list)
    region: Region | None = None

    def frozen(self) -> PlannedObject:
        return PlannedObject(self.noun, self.count, self.colour, self.size, self.where,
                             "; ".join(self.relations) or None, self.detail)


# ------------------------------------------------------------------ words


def singular(word: str) -> str:
    w = word.lower()
    if w in IRREGULAR:
        return IRREGULAR[w]
    if w in INVARIANT or len(w) <= 3 or w.endswith(("ss", "us", "is")):
        return word
    if w.endswith("ies") and len(w) > 4:
        return word[:-3] + "y"
    if w.endswith(("sses", "ches", "shes", "xes", "zes")):
        return word[:-2]
    if w.endswith("ves") and w[:-3] + "f" in PLURAL.values():
        return word[:-3] + "f"
    if w.endswith("s"):
        return word[:-1]
    return word


def plural(word: str) -> str:
    w = word.lower()
    if w in PLURAL:
        return PLURAL[w]
    if w in INVARIANT and not w.endswith("ss"):
        return word
    if w.endswith("y") and len(w) > 1 and w[-2] not in "aeiou":
        return word[:-1] + "ies"
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def plural_phrase(noun: str) -> str:
    """'bowl of fruit' -> 'bowls of fruit'; 'fluffy cat' -> 'fluffy cats'."""
    head, sep, tail = noun.partition(" of ")
    words = head.split()
    words[-1] = plural(words[-1])
    return " ".join(words) + (sep + tail if sep else "")


def looks_plural(word: str) -> bool:
    w = word.lower()
    return w in IRREGULAR or (singular(w) != w and w not in INVARIANT)


def count_word(n: int) -> str:
    return COUNT_WORDS.get(n, str(n))


def region_name(pos: str) -> str:
    """'upper-left' / 'left top' / 'centre' -> a REGIONS key."""
    p = pos.lower().replace("-", " ").replace("upper", "top").replace("lower", "bottom")
    p = " ".join(p.split())
    if p in ("centre", "middle", "centered", "centred"):
        return "center"
    parts = p.split()
    if len(parts) == 2 and parts[0] in ("left", "right"):  # "left top" -> "top left"
        p = f"{parts[1]} {parts[0]}"
    return p


# ------------------------------------------------------------------ phrases


def extract_style(text: str) -> tuple[str, str | None]:
    for k, pattern in enumerate(_STYLE_RES):
        m = pattern.search(text)
        if m:
            style = m.group("s").strip()
            if style.lower() in ("the", "a", "an", "same", "this", "that"):
                continue
            if k > 0:  # "Warm watercolor style" at the start of a prompt reads "warm watercolor"
                style = style[:1].lower() + style[1:]
            return _cut(text, m), style
    return text, None


def extract_background(text: str) -> tuple[str, str | None]:
    for pattern in _BACKGROUND_RES:
        m = pattern.search(text)
        if m:
            words = [w for w in m.group("d").split() if w.lower() not in ("plain", "solid", "simple", "a", "an", "the")]
            desc = " ".join(words).strip(" -")
            colours = [COLOURS[w.lower()] for w in words if w.lower() in COLOURS]
            if not desc:
                continue
            if colours and len(colours) == len(words):  # only colour words: normalise them
                desc = " and ".join(colours)
            return _cut(text, m), desc
    return text, None


def _cut(text: str, m: re.Match[str]) -> str:
    return (text[: m.start()] + " " + text[m.end():]).strip()


def extract_position(chunk: str) -> tuple[str, str | None]:
    m = _POSITION_RE.search(chunk)
    if not m:
        return chunk, None
    return _cut(chunk, m), region_name(m.group("pos"))


def parse_object(chunk: str, *, lenient: bool = False) -> _Obj | None:
    """'two big red apples on the left with leaves' -> _Obj('apple', 2, 'red', 'big', 'left',
    detail='with leaves'); None when the chunk does not read as an object phrase."""
    chunk = _FILLER_RE.sub("", chunk.strip(" .!?:")).strip()
    if QUALITY_TAGS.match(chunk):
        return None
    chunk, where = extract_position(chunk)
    chunk = chunk.strip(" ,.")
    count, definite, counted = 1, False, False
    m = _NUMBER_RE.match(chunk)
    if m:
        word = m.group("w").lower()
        count = int(word) if word.isdigit() else NUMBERS[word]
        definite, counted = word == "the", True
        chunk = chunk[m.end():]
    tokens = list(re.finditer(r"[\w'-]+", chunk))
    words = [t.group() for t in tokens]
    if not words or any(w.lower() in _VERBS for w in words):
        return None
    size = colour = None
    k = 0
    while k < len(words):  # size and colour words may come in any order before the noun
        w = words[k].lower()
        if w in SIZES and size is None:
            size = SIZES[w]
        elif w in COLOURS and colour is None:
            colour = COLOURS[w]
        elif w in COLOURS and colour is not None and words[k - 1].lower() == "and":
            colour = f"{colour} and {COLOURS[w]}"  # "black and white"
        elif w in ("and", "very", "coloured", "colored") and (size or colour):
            pass
        else:
            break
        k += 1
    head: list[str] = []
    while k < len(words):
        w = words[k]
        low = w.lower()
        if head and (low in _STOP or (low.endswith("ing") and low not in _ING_NOUNS)):
            break
        head.append(w)
        k += 1
    detail = chunk[tokens[k].start():].strip() if k < len(tokens) else ""  # as written: quotes kept
    if not head or len(head) > 5 or not all(re.fullmatch(r"[A-Za-z][A-Za-z'-]*", w) for w in head):
        return None
    if not (counted or where or colour or size or lenient or looks_plural(head[-1])):
        return None
    if QUALITY_TAGS.match(" ".join(head)):
        return None
    if not counted and looks_plural(head[-1]):
        count = 3  # "apples on the left": a few
    if count > 1 or looks_plural(head[-1]):
        head[-1] = singular(head[-1])
    if head[0].istitle() and not counted and words[0].istitle():  # "Red apples": sentence case
        head[0] = head[0].lower()
    # Otherwise the words keep their case: names, brands and text to render ("EXIT sign").
    return _Obj(" ".join(head), max(1, min(count, MAX_COUNT)), colour, size, where, detail, definite)


# ------------------------------------------------------------------ clauses


def split_clauses(text: str) -> list[tuple[str, bool]]:
    """-> [(clause, lenient)]: lenient clauses were joined by "and" to another one, so a bare
    noun there is an object ("mice and cheese") rather than a mood word ("cinematic")."""
    text = re.sub(r"\bbetween\s+([^,;.]+?)\s+and\s+", lambda m: f"between {m.group(1)} \x01 ", text, flags=re.I)
    clauses = []
    for sentence in re.split(r"[,;]|\.(?:\s|$)|\n", text):
        parts = [c.strip() for c in _split_and(sentence) if c.strip()]
        clauses += [(c, len(parts) > 1) for c in parts]
    if len(clauses) == 1:
        clauses = [(clauses[0][0], True)]
    return clauses


def _split_and(sentence: str) -> list[str]:
    """'a cat and a dog' -> two clauses; 'a black and white cat' stays one."""
    parts, start = [], 0
    for m in _AND_RE.finditer(sentence):
        before = sentence[start : m.start()].split()
        if before and before[-1].lower() in COLOURS or (before and before[-1].lower() in SIZES):
            continue
        parts.append(sentence[start : m.start()])
        start = m.end()
    return parts + [sentence[start:]]


@dataclass
class _Scene:
    objects: list[_Obj] = field(default_factory=list)
    relations: list[tuple[str, int, list[int]]] = field(default_factory=list)  # kind, a, [b, (c)]
    kept: list[str] = field(default_factory=list)

    def add(self, obj: _Obj) -> int:
        if obj.definite:  # "the cat" after "a cat": the same object
            for i, old in enumerate(self.objects):
                if old.noun.lower() == obj.noun.lower() or old.noun.lower().endswith(" " + obj.noun.lower()):
                    if obj.where and not old.where:
                        old.where = obj.where
                    return i
        self.objects.append(obj)
        return len(self.objects) - 1


def parse_clause(scene: _Scene, clause: str, lenient: bool) -> None:
    """A relation chain ("a star above a house above a car"), an object, or kept text."""
    matches = list(_RELATION_RE.finditer(clause))
    if matches and _parse_relations(scene, clause, matches):
        return
    obj = parse_object(clause.replace("\x01", "and"), lenient=lenient)
    if obj is None:
        scene.kept.append(clause.replace("\x01", "and").strip())
    else:
        scene.add(obj)


def _parse_relations(scene: _Scene, clause: str, matches: list[re.Match[str]]) -> bool:
    kinds = [RELATION_KIND[m.group("rel").lower()] for m in matches]
    bounds = [0, *[x for m in matches for x in (m.start(), m.end())], len(clause)]
    pieces = [clause[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2)]
    groups: list[list[_Obj]] = []
    for i, piece in enumerate(pieces):
        parts = piece.split("\x01") if i > 0 and kinds[i - 1] == "between" else [piece]
        objs = [parse_object(p, lenient=True) for p in parts]
        if any(o is None for o in objs) or (len(parts) != 2 and i > 0 and kinds[i - 1] == "between"):
            return False
        groups.append([o for o in objs if o is not None])
    indices = [[scene.add(o) for o in group] for group in groups]
    for i, kind in enumerate(kinds):  # A rel B rel C: (A rel B), (B rel C)
        scene.relations.append((kind, indices[i][-1], indices[i + 1]))
    return True


# ------------------------------------------------------------------ layout


def _place_relations(scene: _Scene) -> None:
    """Regions for objects placed by relations, next to absolute ones or each other."""
    wheres = {o.where for o in scene.objects if o.where in REGIONS}
    thirds = "center" in wheres and len(wheres) > 1  # "a house in the middle, a tree on the left"
    for obj in scene.objects:
        if obj.where in REGIONS:
            obj.region = _third(obj.where) if thirds else REGIONS[obj.where]
    for kind, ia, ib in scene.relations:
        a, objs = scene.objects[ia], [scene.objects[i] for i in ib]
        b = objs[0]
        # Objects placed by nothing but this relation share the space nobody has taken yet.
        free = _free_region([o.region for o in scene.objects if o.region is not None])
        fx1, fy1, fx2, fy2 = free
        if kind == "between" and len(objs) == 2:
            c = objs[1]
            third, pad = (fx2 - fx1) / 3, 0.15 * (fy2 - fy1)
            b.region = b.region or (fx1, fy1 + pad, fx1 + third, fy2 - pad)
            c.region = c.region or (fx2 - third, fy1 + pad, fx2, fy2 - pad)
            mid = (b.region[2] + c.region[0]) / 2
            a.region = a.region or (mid - third / 2, fy1 + pad, mid + third / 2, fy2 - pad)
            a.relations.append(f"between {_ref(b)} and {_ref(c)}")
            continue
        a.relations.append(f"{RELATION_WORDS.get(kind, kind)} {_ref(b)}")
        axis = {"above": 1, "below": 1, "left of": 0, "right of": 0, "next to": 0}.get(kind)
        if axis is None:  # in front of / behind: overlapping, drawn in order
            w, h = fx2 - fx1, fy2 - fy1
            b.region = b.region or (fx1 + 0.2 * w, fy1 + 0.1 * h, fx2 - 0.2 * w, fy1 + 0.75 * h)
            if a.region is None:
                r = b.region
                a.region = (r[0] + 0.1 * (r[2] - r[0]), r[1] + 0.25 * (r[3] - r[1]), r[2] - 0.1 * (r[2] - r[0]),
                            min(1.0, r[3] + 0.15 * (r[3] - r[1])))
            continue
        first = kind in ("above", "left of", "next to")  # a takes the top / left part
        a.region, b.region = _pair(a.region, b.region, axis, first, free)


def _third(where: str) -> Region:
    """Regions on a 3 x 3 grid, so that the center does not overlap the sides."""
    if where == "center":
        return (1 / 3, 1 / 3, 2 / 3, 2 / 3)
    parts = where.split()
    x = (0.0, 1 / 3) if "left" in parts else (2 / 3, 1.0) if "right" in parts else (0.0, 1.0)
    y = (0.0, 1 / 3) if "top" in parts else (2 / 3, 1.0) if "bottom" in parts else (0.0, 1.0)
    return (x[0], y[0], x[1], y[1])


RELATION_WORDS = {"left of": "to the left of", "right of": "to the right of"}


def _ref(obj: _Obj) -> str:
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


def _free_region(taken: list[Region]) -> Region:
    """The largest half or quadrant of the canvas that overlaps the taken regions least."""
    if not taken:
        return REGIONS["whole"]
    candidates = [REGIONS[k] for k in ("right", "left", "bottom", "top", "bottom right", "top right",
                                       "bottom left", "top left")]

    def overlap(r: Region) -> float:
        return sum(max(0.0, min(r[2], t[2]) - max(r[0], t[0])) * max(0.0, min(r[3], t[3]) - max(r[1], t[1]))
                   for t in taken)

    return min(candidates, key=lambda r: (round(overlap(r), 3), -(r[2] - r[0]) * (r[3] - r[1])))


def _split(region: Region, k: int, aspect: float) -> list[Region]:
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


def layout(scene: _Scene, width: int, height: int) -> list[LayoutItem]:
    _place_relations(scene)
    taken = [o.region for o in scene.objects if o.region is not None]
    loose = [o for o in scene.objects if o.region is None]
    if loose:
        free = _free_region(taken)
        for obj, part in zip(loose, _split(free, len(loose), width / height), strict=True):
            obj.region = part
    # Objects sharing one region split it between them.
    groups: dict[Region, list[_Obj]] = {}
    for obj in scene.objects:
        assert obj.region is not None
        groups.setdefault(obj.region, []).append(obj)
    items: list[LayoutItem] = []
    for region, objs in groups.items():
        parts = _split(region, len(objs), width / height) if len(objs) > 1 else [region]
        for obj, part in zip(objs, parts, strict=True):
            label = PlannedObject(obj.noun, colour=obj.colour).label
            for box in tile(part, obj.count, SIZE_SCALE[obj.size], width, height):
                items.append(LayoutItem(label, box))
    return items[:MAX_INSTANCES]


# ------------------------------------------------------------------ revised prompt


def describe(obj: _Obj) -> str:
    noun = plural_phrase(obj.noun) if obj.count > 1 else obj.noun
    words = [count_word(obj.count), obj.size, obj.colour, noun]
    text = " ".join(w for w in words if w)
    if obj.detail:
        text += " " + obj.detail
    if obj.where:
        text += " " + REGION_WORDS.get(obj.where, f"in the {obj.where.replace(' ', '-')} corner")
    elif obj.region is not None and not obj.relations:
        named = next((REGION_WORDS.get(k, f"in the {k.replace(' ', '-')} corner")
                      for k, r in REGIONS.items() if r == obj.region and k != "whole"), None)
        if named:
            text += " " + named
    for rel in obj.relations:
        text += " " + rel
    return text


def revise(scene: _Scene, background: str | None, style: str | None) -> str:
    parts = [describe(o) for o in scene.objects]
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    text = text[:1].upper() + text[1:]
    if background:
        text += f", on a {background} background"
    if style:
        text += f", {style}" + ("" if re.search(r"\b(?:style|art|painting|render|sketch)\b", style, re.I)
                                else " style")
    if scene.kept:
        text += ", " + ", ".join(scene.kept)
    text += "."
    total = sum(o.count for o in scene.objects)
    if len(scene.objects) > 1:
        text += f" {count_word(total).capitalize()} objects in total."
    return text


# ------------------------------------------------------------------ the planner


_QUOTED_RE = re.compile(r'"[^"]{0,500}"|“[^”]{0,500}”|\'[^\']{1,200}\'(?!\w)')


def plan_text(prompt: str, width: int, height: int, *, planner: str = "builtin") -> Plan:
    """One image: the whole plan of `prompt` for a width x height output."""
    quoted: list[str] = []  # text to render ("a sign saying "Hello, world"") is never parsed

    def protect(m: re.Match[str]) -> str:
        quoted.append(m.group())
        return f"\x02{len(quoted) - 1}\x03"

    def restore(text: str) -> str:
        return re.sub(r"\x02(\d+)\x03", lambda m: quoted[int(m.group(1))], text)

    text = _QUOTED_RE.sub(protect, " ".join(prompt.split()))
    text, style = extract_style(text)
    text, background = extract_background(text)
    scene = _Scene()
    framing = _FRAMING_RE.search(text)
    if framing:
        scene.kept.append(framing.group("f"))
        text = _cut(text, framing)
    clauses = split_clauses(text)
    for clause, lenient in clauses:
        parse_clause(scene, clause, lenient)
    if not scene.objects:  # nothing to lay out: the prompt as given
        return Plan(prompt, None, planner, background=background, style=style,
                    kept=tuple(restore(k) for k in scene.kept))
    items = layout(scene, width, height)
    return Plan(
        restore(revise(scene, background, style)),
        items,
        planner,
        objects=tuple(replace(o.frozen(), detail=restore(o.detail)) for o in scene.objects),
        background=background,
        style=style and restore(style),
        kept=tuple(restore(k) for k in scene.kept),
    )


def split_set(prompt: str, n: int) -> tuple[str, list[str]]:
    """'warm light. image 1: a cat. image 2: a dog' -> ('warm light', ['a cat', 'a dog'])."""
    parts = _SET_RE.split(prompt)
    if len(parts) < 3:
        return prompt.strip(), []
    per: dict[int, str] = {}
    for k in range(1, len(parts) - 1, 2):
        per[int(parts[k])] = parts[k + 1].strip(" .,;")
    return parts[0].strip(" .,;"), [per.get(i, "") for i in range(1, min(max(per), n) + 1)]


def plan_set(prompt: str, n: int, width: int, height: int) -> Plan:
    """Image sets: one plan per 'image k:' part, with the shared context in each."""
    shared, parts = split_set(prompt, n)
    if not parts:
        one = plan_text(prompt, width, height)
        return replace(one, images=(one,))
    plans = tuple(plan_text(", ".join(p for p in (part, shared) if p), width, height) for part in parts)
    revised = " ".join(f"Image {k}: {p.revised_prompt}" for k, p in enumerate(plans, start=1))
    return Plan(revised, None, "builtin", images=plans, kept=(shared,) if shared else ())


class BuiltinPlanner:
    name = "builtin"

    def plan(self, brief: Brief) -> Plan:
        try:
            if brief.sequential:
                return plan_set(brief.prompt, brief.n, brief.width, brief.height)
            return plan_text(brief.prompt, brief.width, brief.height)
        except Exception as exc:  # a rule bug must not fail the task: draw the prompt as given
            log.exception("thinking: built-in planner failed; using the prompt as given")
            return Plan(brief.prompt, None, self.name, note=f"built-in planner error: {exc}")
