"""Image-set prompts ("image 1: ... image 2: ...") and edit prompts: which images a prompt
refers to, which it takes content from, and what it asks (remove, replace, recolour, move)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .vocabulary import POSITION_WORDS, region_name

# Image sets: "image 1: ... image 2: ..."; the colon is what marks a part, so "like image 2."
# or "(see image 2)" in an edit prompt is a reference, not a part.
_SET_RE = re.compile(r"\b(?:image|picture|panel|frame|scene)\s*(\d{1,2})\s*[:：]\s*", re.I)
_IMAGE_REF_RE = re.compile(r"\b(?:image|picture|photo)\s*(\d+)\b", re.I)
# Edits (matched on the lower-cased prompt).
_REMOVE_RE = re.compile(r"\b(?:remove|delete|erase|get rid of)\b")
_REPLACE_RE = re.compile(r"\b(?:replace|swap)\b.*?\b(?:with|by|for)\b\s+(.*)")
_INTO_RE = re.compile(r"\b(?:change|turn|make|transform)\b.*?\b(?:into|to)\b\s+(.*)")
_BG_EDIT_RE = re.compile(r"\b(?:background|backdrop)\b.*?\b(?:to|into)\b\s+(?:a |an )?(\w+)")
_MOVE_RE = re.compile(r"\b(?:move|shift|drag|relocate)\b")
# "put / move / take ... of image k": bringing image k's content into the edited image.
_PUT_RE = re.compile(r"\b(?:put|place|paste|insert|move|shift|drag|relocate|take|copy|transfer|bring|add|"
                     r"transplant|swap)\b", re.I)
# "... in / into / onto the box of image k", "into image k": image k is where it goes, not what.
_DESTINATION_RE = re.compile(r"\b(?:in|into|onto|to|inside|on|within)\s+(?:the\s+)?"
                             r"(?:(?:marked\s+|selected\s+|red\s+|first\s+|second\s+)?"
                             r"(?:box|boxes|area|region|rectangle|frame|spot)\s+(?:of|in|on)\s+)?$", re.I)
_TO_PLACE_RE = re.compile(rf"\bto\s+(?:the\s+)?(?P<pos>{POSITION_WORDS})\b")


@dataclass(frozen=True)
class EditIntent:
    """What an edit prompt asks for, as far as rules can tell."""

    remove: bool = False  # remove / delete / erase / get rid of
    target: str | None = None  # what an object becomes: "replace the cat with <a dog>", "turn it into <...>"
    background: str | None = None  # "change the background to <blue>": the word after to / into
    move: bool = False  # move / shift / drag / relocate
    move_to: str | None = None  # "... to the top left": a REGIONS key
    image_refs: tuple[int, ...] = ()  # "image 1", "picture 2": 1-based input image numbers
    sources: tuple[int, ...] = ()  # the images whose content the prompt puts or moves (`source_images`)



def split_set(prompt: str, n: int) -> tuple[str, list[str]]:
    """'warm light. image 1: a cat. image 2: a dog' -> ('warm light', ['a cat', 'a dog']): the
    shared context and at most n parts ('' for a number skipped); no parts when none is marked."""
    parts = _SET_RE.split(prompt)
    if len(parts) < 3:
        return prompt.strip(), []
    per: dict[int, str] = {}
    for k in range(1, len(parts) - 1, 2):
        per[int(parts[k])] = parts[k + 1].strip(" .,;")
    return parts[0].strip(" .,;"), [per.get(i, "") for i in range(1, min(max(per), n) + 1)]


def set_prompts(prompt: str, n: int) -> list[str]:
    """One prompt per image: each part with the shared context after it; a plain prompt repeats
    n times. 'flat style. Image 1: a cat image 2: a dog', 1 -> ['a cat, flat style']."""
    shared, parts = split_set(prompt, n)
    if not parts:
        return [prompt] * n
    return [", ".join(p for p in (part, shared) if p) or prompt for part in parts]


def image_refs(prompt: str) -> list[int]:
    """'put the cat of image 1 into picture 2' -> [1, 2]."""
    return [int(k) for k in _IMAGE_REF_RE.findall(prompt)]


def source_images(prompt: str) -> list[int]:
    """The input images whose content an edit brings into the picture: 'put the cat of image 1
    into the box of image 2' -> [1]; 'put a balloon in the box of image 1' -> [] (image 1 is
    where, not what). Per clause with a put / move verb: a reference right after "in / into /
    onto (the box of)" is a destination; with several references the last destination is where
    things go and every other reference is a source."""
    sources: list[int] = []
    for sentence in re.split(r"[;.]", prompt):
        verb = False  # "put the dog of image 1 and the cat of image 2 into ...": one verb, two clauses
        for clause in re.split(r",\s*(?=and\b)|\band\s+(?=(?:an?|the|some|\d+)\s)", sentence):
            refs = list(_IMAGE_REF_RE.finditer(clause))
            verb = verb or bool(_PUT_RE.search(clause[: refs[-1].start()] if refs else clause))
            if not refs or not verb:
                continue
            sources += [k for k in _clause_sources(clause, refs) if k not in sources]
    return sources


def _clause_sources(clause: str, refs: list[re.Match[str]]) -> list[int]:
    destination = [bool(_DESTINATION_RE.search(clause[: r.start()])) for r in refs]
    last = max((k for k, d in enumerate(destination) if d), default=None)
    return [int(r.group(1)) for k, r in enumerate(refs)
            if (not destination[k] if len(refs) == 1 or last is None else k != last)]


def parse_edit(prompt: str) -> EditIntent:
    text = prompt.lower()
    target = _REPLACE_RE.search(text) or _INTO_RE.search(text)
    background = _BG_EDIT_RE.search(text)
    place = _TO_PLACE_RE.search(text)
    return EditIntent(
        remove=bool(_REMOVE_RE.search(text)),
        target=target.group(1) if target else None,
        background=background.group(1) if background else None,
        move=bool(_MOVE_RE.search(text)),
        move_to=region_name(place.group("pos")) if place else None,
        image_refs=tuple(image_refs(prompt)),
        sources=tuple(source_images(prompt)),
    )
