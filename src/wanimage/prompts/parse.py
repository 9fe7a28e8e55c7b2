"""English prompt -> ParsedPrompt (objects, relations, background, style, kept text), image sets
-> per-image parts, edits -> EditIntent. Plain rules, offline, deterministic.

  "three red apples on the left and a cat above a dog, on a blue background"
    objects     3 x red apple @left, cat, dog        relations  cat above dog
    background  "blue"

Steps (`parse`): 1. protect quoted text, pull out style and background phrases; 2. split into
clauses (commas, "and a ...", sentences); 3. each clause is either a relation "A above B" or an
object phrase "[count] [size] [colour] noun [position] [detail]"; what parses as neither is kept
verbatim."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .vocabulary import (
    COLOUR_NOUNS,
    COLOURS,
    GROUNDS,
    ING_NOUNS,
    MAX_COUNT,
    META_NOUNS,
    NUMBERS,
    PAIRED,
    PLURAL_COUNT,
    POSITION_WORDS,
    QUALITY_TAGS,
    RELATION_KIND,
    SIZES,
    STOP,
    STYLE_WORDS,
    TIMES,
    VERBS,
    WEATHER,
    has_han,
    looks_plural,
    region_name,
    singular,
    zh_label,
)

_PAIR_RE = re.compile(r"^(a\s+)?pair\s+of\b", re.IGNORECASE)
_PAIRS_RE = re.compile(r"^pairs\s+of\s+", re.IGNORECASE)
_NUMBER_RE = re.compile(
    r"^(?P<w>" + "|".join(sorted((re.escape(k) for k in NUMBERS), key=len, reverse=True)) + r"|\d{1,3})\b\s*",
    re.I,
)
_POSITION_RE = re.compile(
    r"(?:\b(?:on|at|in|to|along|across|toward|towards|near)\s+)?(?:\bthe\s+)?(?:\b(?:far|very)\s+)?"
    rf"\b(?P<pos>{POSITION_WORDS})"
    r"(?:[\s-]*hand)?(?:\s+(?:side|corner|half|part|edge|area|third))?"
    r"(?:\s+of\s+the\s+(?:picture|image|frame|canvas|scene|page|photo))?\b",
    re.I,
)
_RELATION_RE = re.compile(
    r"\b(?P<rel>" + "|".join(sorted((re.escape(k) for k in RELATION_KIND), key=len, reverse=True)) + r")\b",
    re.I,
)
_STYLE_RES = (
    re.compile(r"\bin\s+the\s+style\s+of\s+(?P<s>[^,.;]{1,60})", re.I),
    re.compile(r"\b(?:in\s+)?(?:an?\s+|the\s+)?(?P<s>[\w'-]+(?:\s+[\w'-]+)?)[\s-]+style\b", re.I),
    re.compile(rf"\b(?:as\s+)?(?:an?\s+)?(?P<s>{STYLE_WORDS})(?:\s+of\b)?", re.I),
)
_BACKGROUND_RES = (
    re.compile(r"\b(?:the\s+)?background\s+(?:is|should be)\s+(?P<d>[^,.;]{1,40})", re.I),
    re.compile(r"\bbackground\s*:\s*(?P<d>[^,.;]{1,40})", re.I),
    re.compile(r"\b(?:on|against|over|with|in front of|set against)\s+(?:a|an|the)?\s*"  # the last "on ..."
               r"(?P<d>(?:(?!\b(?:on|against|over|with|in front of|and an?|and the)\b)[\w\s-]){0,40}?)"
               r"\s*\b(?:background|backdrop)\b", re.I),
    re.compile(r"(?:^|[,;.]\s*)(?:a|an|the)?\s*(?P<d>[\w-]+(?:\s+[\w-]+){0,2})\s+(?:background|backdrop)\b", re.I),
)
_FILLER_RE = re.compile(  # "please draw me a picture of", "add", "there are": not the object
    r"^\s*(?:please\s+)?(?:(?:draw|generate|create|make|show|render|paint|design|depict|illustrate|add|put|"
    r"place|insert)\s+)?(?:me\s+)?(?:(?:an?\s+|the\s+)?(?:picture|image|illustration|drawing|scene|poster|"
    r"composition|emoji|icon)\s+(?:of|with|showing|where)\s+)?(?:there\s+(?:is|are)\s+)?",
    re.I,
)
# A phrase that says what not to draw ("no people", "without text", "don't show a logo"): the
# Chinese rules keep "没有人" the same way.
_NEGATION_RE = re.compile(r"(?:no|not|without|nothing|never|avoid|don'?t|do not)\b(?!\.)", re.I)
_FRAMING_RE = re.compile(  # "a cinematic close-up photo of": kept, then the objects parsed
    r"\b(?:an?\s+|the\s+)?(?P<f>(?:[\w-]+\s+){0,2}(?:shot|close-up|closeup|view|portrait|photo|photograph|"
    r"render|painting|sketch))\s+of\s+", re.I)
_AND_RE = re.compile(r"\s+(?:and|plus|as well as|&)\s+", re.I)
_QUOTED_RE = re.compile(r'"[^"]{0,500}"|“[^”]{0,500}”|\'[^\']{1,200}\'(?!\w)')


@dataclass
class ParsedObject:
    """One object phrase: 'two big red apples on the left with leaves'."""

    noun: str  # singular head noun with its other adjectives, as written: "apple", "fluffy cat"
    count: int = 1  # as asked, at most MAX_COUNT
    colour: str | None = None  # a COLOURS name, or "black and white"
    size: str | None = None  # "big" | "small" | None
    where: str | None = None  # a REGIONS key
    detail: str = ""  # the words after the noun, as written: "with leaves"
    definite: bool = False  # "the cat": may refer to an earlier object
    asked: int | None = None  # the number written when it is above MAX_COUNT ("forty cats": 40)
    lang: str = "en"  # "zh": read from a Chinese clause; the noun may still be English ("两只cat")
    measure: str = ""  # Chinese: the measure word as written ("只" of "两只猫"), "" when none
    modifier: str = ""  # Chinese: the words before the noun, as written ("戴着围巾" of "戴着围巾的猫")

    @property
    def label(self) -> str:
        """One instance as a short phrase: 'a red apple' (Chinese: '一个红色的苹果')."""
        if self.lang == "zh":
            return zh_label(self.noun, self.colour, self.measure)
        words = " ".join(w for w in (self.colour, self.noun) if w)
        return ("an " if words[:1] in "aeiou" else "a ") + words


@dataclass(frozen=True)
class Scene:
    """Where the picture is set, as far as scene words say: 'a fox in the snow at dusk'."""

    time: str | None = None  # a TIMES value: dawn, morning, day, dusk, night
    weather: str | None = None  # a WEATHER value: rain, storm, snow, fog, cloud, sun
    ground: str | None = None  # a GROUNDS value: forest, grass, sand, snow, water, street


@dataclass
class ParsedPrompt:
    objects: list[ParsedObject] = field(default_factory=list)
    relations: list[tuple[str, int, list[int]]] = field(default_factory=list)  # kind, a, [b, (c)]
    background: str | None = None  # "blue", "pink and yellow gradient", "a starry night sky"
    style: str | None = None  # "watercolor", "Van Gogh"
    kept: list[str] = field(default_factory=list)  # text that is neither objects nor relations
    scene: Scene = field(default_factory=Scene)
    lang: str = "en"  # "zh": the prompt has Chinese (outside quotes); "zh-Hant": in Traditional characters

    def add(self, obj: ParsedObject) -> int:
        """Append an object, or merge "the cat" into an earlier cat; -> its index."""
        if obj.definite:
            for i, old in enumerate(self.objects):
                if old.noun.lower() == obj.noun.lower() or old.noun.lower().endswith(" " + obj.noun.lower()):
                    if obj.where and not old.where:
                        old.where = obj.where
                    return i
        self.objects.append(obj)
        return len(self.objects) - 1


# ------------------------------------------------------------------ the whole prompt


def parse(prompt: str) -> ParsedPrompt:
    """Objects, relations, background, style and kept text of one image's prompt. A prompt with
    Chinese outside its quotes is read by the Chinese rules (chinese.py), to the same result."""
    if is_chinese(prompt):
        from .chinese import parse_zh

        return parse_zh(prompt)
    text, restore = shield_quotes(" ".join(prompt.split()), _QUOTED_RE)
    text, style = extract_style(text)
    text, background = extract_background(text)
    parsed = ParsedPrompt(background=background and restore(background), style=style and restore(style),
                          scene=scene_words(text))
    framing = _FRAMING_RE.search(text)
    if framing:
        parsed.kept.append(framing.group("f"))
        text = _cut(text, framing)
    for clause, lenient in split_clauses(text):
        _parse_clause(parsed, clause, lenient)
    for obj in parsed.objects:
        obj.detail = restore(obj.detail)
    parsed.kept = [restore(k) for k in parsed.kept]
    return parsed


def shield_quotes(text: str, quotes: re.Pattern[str]) -> tuple[str, Callable[[str], str]]:
    """`text` with each quoted span (text to render: 'a sign saying "Hello, world"') replaced by
    a marker no rule matches, and the function that puts the spans back into any piece of it."""
    quoted: list[str] = []

    def protect(m: re.Match[str]) -> str:
        quoted.append(m.group())
        return f"\x02{len(quoted) - 1}\x03"

    def restore(piece: str) -> str:
        return re.sub(r"\x02(\d+)\x03", lambda m: quoted[int(m.group(1))], piece)

    return quotes.sub(protect, text), restore


def is_chinese(prompt: str) -> bool:
    """Chinese characters outside quoted text: 'a sign saying "你好"' is an English prompt."""
    return has_han(_QUOTED_RE.sub(" ", prompt))


def scene_words(text: str) -> Scene:
    """The first time-of-day, weather and ground word of a text (whole words, quotes excluded)."""
    words = re.findall(r"[a-z]+", re.sub(r"\x02\d+\x03", " ", text.lower()))
    pairs = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]

    def first(table: dict[str, str]) -> str | None:
        return next((table[w] for w in pairs if w in table), None)

    return Scene(first(TIMES), first(WEATHER), first(GROUNDS))


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


def extract_position(chunk: str) -> tuple[str, str | None]:
    m = _POSITION_RE.search(chunk)
    if not m:
        return chunk, None
    return _cut(chunk, m), region_name(m.group("pos"))


def _cut(text: str, m: re.Match[str]) -> str:
    return (text[: m.start()] + " " + text[m.end():]).strip()


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


def _parse_clause(parsed: ParsedPrompt, clause: str, lenient: bool) -> None:
    """A relation chain ("a star above a house above a car"), an object, or kept text."""
    matches = list(_RELATION_RE.finditer(clause))
    if matches and _parse_relations(parsed, clause, matches):
        return
    obj = parse_object(clause.replace("\x01", "and"), lenient=lenient)
    if obj is None:
        parsed.kept.append(clause.replace("\x01", "and").strip())
    else:
        parsed.add(obj)


def _parse_relations(parsed: ParsedPrompt, clause: str, matches: list[re.Match[str]]) -> bool:
    kinds = [RELATION_KIND[m.group("rel").lower()] for m in matches]
    bounds = [0, *[x for m in matches for x in (m.start(), m.end())], len(clause)]
    pieces = [clause[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2)]
    groups: list[list[ParsedObject]] = []
    for i, piece in enumerate(pieces):
        between = i > 0 and kinds[i - 1] == "between"
        parts = piece.split("\x01") if between else [piece]
        objs = [parse_object(p, lenient=True) for p in parts]
        if any(o is None for o in objs) or (len(parts) != 2 and between):
            return False
        groups.append([o for o in objs if o is not None])
    indices = [[parsed.add(o) for o in group] for group in groups]
    for i, kind in enumerate(kinds):  # A rel B rel C: (A rel B), (B rel C)
        parsed.relations.append((kind, indices[i][-1], indices[i + 1]))
    return True


# ------------------------------------------------------------------ one object phrase


def parse_object(chunk: str, *, lenient: bool = False) -> ParsedObject | None:
    """'two big red apples on the left with leaves' -> ParsedObject('apple', 2, 'red', 'big',
    'left', detail='with leaves'); None when the chunk does not read as an object phrase.
    Chinese chunks ('两个红苹果') are read by the Chinese rules."""
    if has_han(chunk):
        from .chinese import parse_object_zh

        return parse_object_zh(chunk, lenient=lenient)
    chunk = _FILLER_RE.sub("", chunk.strip(" .!?:")).strip()
    if QUALITY_TAGS.match(chunk) or _NEGATION_RE.match(chunk):  # "no people": kept, not drawn
        return None
    chunk, where = extract_position(chunk)
    paired = _PAIR_RE.match(chunk.strip(" ,.")) is not None
    count, counted, definite, chunk = _count(chunk.strip(" ,."))
    pairs = _PAIRS_RE.match(chunk)  # "two pairs of scissors": two things named in the plural
    if counted and pairs and set(re.findall(r"[\w'-]+", chunk[pairs.end():].lower())) & PAIRED:
        chunk, paired = chunk[pairs.end():], True
    tokens = list(re.finditer(r"[\w'-]+", chunk))
    words = [t.group() for t in tokens]
    if not words or any(w.lower() in VERBS for w in words):
        return None
    size, colour, k = _adjectives(words, counted)
    head, k = _head(words, k)
    detail = chunk[tokens[k].start():].strip() if k < len(tokens) else ""  # as written: quotes kept
    if not _is_noun(head):
        return None
    # the counted word: "bowls" of "three bowls of cherries", whose "cherries" stay as written
    n = next((i - 1 for i, w in enumerate(head) if i > 0 and w.lower() == "of"), len(head) - 1)
    if not (counted or where or colour or size or lenient or looks_plural(head[n])):
        return None
    paired = paired and head[n].lower() in PAIRED
    if paired and not pairs:  # "a pair of glasses": one thing, named in the plural
        count = 1
    elif not counted and looks_plural(head[n]):
        count = PLURAL_COUNT
    if (count > 1 or looks_plural(head[n])) and not paired:
        head[n] = singular(head[n])
    if head[0].istitle() and not counted and words[0].istitle():  # "Red apples": sentence case
        head[0] = head[0].lower()
    # Otherwise the words keep their case: names, brands and text to render ("EXIT sign").
    return ParsedObject(" ".join(head), max(1, min(count, MAX_COUNT)), colour, size, where, detail, definite,
                        count if count > MAX_COUNT else None)


def _count(chunk: str) -> tuple[int, bool, bool, str]:
    """A leading number word or digits -> (count, counted, definite, the rest)."""
    m = _NUMBER_RE.match(chunk)
    if not m:
        return 1, False, False, chunk
    word = m.group("w").lower()
    return int(word) if word.isdigit() else NUMBERS[word], True, word == "the", chunk[m.end():]


def _adjectives(words: list[str], counted: bool) -> tuple[str | None, str | None, int]:
    """Size and colour words, in any order before the noun -> (size, colour, next word)."""
    size = colour = None
    k = 0
    while k < len(words):
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
    if k == len(words) and counted and words[-1].lower() in COLOUR_NOUNS:  # "an orange": the fruit
        return size, None, k - 1
    return size, colour, k


def _head(words: list[str], k: int) -> tuple[list[str], int]:
    """The head noun with its other adjectives, up to a preposition or a verb in -ing."""
    head: list[str] = []
    while k < len(words):
        low = words[k].lower()
        if head and (low in STOP or (low.endswith("ing") and low not in ING_NOUNS)):
            break
        head.append(words[k])
        k += 1
    return head, k


def _is_noun(head: list[str]) -> bool:
    return (0 < len(head) <= 5 and all(re.fullmatch(r"[A-Za-z][A-Za-z'-]*", w) for w in head)
            and not QUALITY_TAGS.match(" ".join(head)) and singular(head[-1]).lower() not in META_NOUNS)
