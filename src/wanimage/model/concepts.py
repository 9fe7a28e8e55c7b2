"""Open vocabulary: an object phrase the sprite model does not know by its label ("a latte",
"a sedan", "a grizzly") -> the nearest concepts it does know ("hot beverage", "automobile",
"bear"), by the MiniLM sentence embedding the model already ships (text.py).

Every training icon is a concept: its label, and its tags: emojibase's ("bear": grizzly, honey,
...) and emojilib's keywords, the words people type for that emoji ("hot beverage": latte,
espresso, mug; "ox": bull, bullock, steer). A phrase scores each concept as

    score = cos(phrase, "a <label>") + TAG_WEIGHT * max over the concept's tags of cos(phrase, "a <tag>")

so a word that is only a tag ("grizzly", "coffee", "pasta") still finds its icon, and the label
decides between icons that share the tag. The vectors are precomputed (`build_concepts`, from
the dataset's meta.json) and shipped beside the weights as int8 with one scale per vector
(src/wanimage/weights/concepts.safetensors; `make concepts` rebuilds it).

A phrase that names a concept outright skips the scores: a label ("a balloon", "balloons"), or
a word WordNet files under concepts (lexicon.py: "a hoagie" -> sandwich, "a tabby" -> cat),
and then the best-scoring of those concepts wins. "A cup of coffee" is looked up as "coffee"
first, since "cup" is one of WordNet's containers.

    index.match(vectors)[0] -> Match(label="hot beverage", score=0.89, variants=("hot beverage",))"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from wanimage.prompts.vocabulary import singular

from .captions import article, is_blocked
from .chinese import has_chinese, subject_terms
from .lexicon import TAG_COST, WordNet, concepts_by_word, measure_words
from .zh_table import zh_table

TAG_WEIGHT = 0.5  # how much a matching tag adds to the label's similarity
MIN_SCORE = 0.75  # below this nothing is near enough: the phrase is drawn as written
CONTEXT_WEIGHT = 0.5  # the phrase with the prompt's words after it ("a gator in the swamp"), against the phrase alone
VARIANT_MARGIN = 0.05  # concepts this close to the best are drawn as its variants
MAX_VARIANTS = 4
NO_MIRROR_GROUPS = ("symbols", "flags")  # signs and text read wrong mirrored
LEXICON_STEP = 0.05  # score a WordNet step away costs, when a word is filed under several concepts


@dataclass(frozen=True)
class Lexicon:
    """lexicon.py's table as shipped: word -> {concept: WordNet steps}, and the measure words."""
    rows: dict[str, int]  # word -> its row
    offsets: np.ndarray  # (W + 1,) where each row's pairs start
    concept_ids: np.ndarray  # (P,)
    steps: np.ndarray  # (P,)
    measures: frozenset[str]

    @classmethod
    def empty(cls) -> Lexicon:
        return cls({}, np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), frozenset())

    def concepts(self, word: str) -> dict[int, int]:
        row = self.rows.get(word)
        if row is None:
            return {}
        a, b = self.offsets[row], self.offsets[row + 1]
        return dict(zip(self.concept_ids[a:b].tolist(), self.steps[a:b].tolist(), strict=True))

    @classmethod
    def ordered(cls, words: list[str], offsets: np.ndarray, concept_ids: np.ndarray) -> Lexicon:
        """A table whose rows are best first (the Chinese one): a concept's step is its place."""
        steps = np.arange(len(concept_ids)) - np.repeat(offsets[:-1], np.diff(offsets))
        return cls({w: k for k, w in enumerate(words)}, offsets, concept_ids, steps, frozenset())


@dataclass(frozen=True)
class Match:
    label: str  # the best concept
    score: float
    variants: tuple[str, ...]  # the best first, then the near ones
    mirror: bool  # the concept may be drawn mirrored
    term: str | None = None  # a Chinese phrase's word that named it ("出租车" of "一辆黄色出租车")


class ConceptIndex:
    def __init__(self, labels: list[str], groups: list[str], label_vec: torch.Tensor, tag_vec: torch.Tensor,
                 tag_icon: torch.Tensor, lexicon: Lexicon | None = None, chinese: Lexicon | None = None):
        self.labels, self.groups = labels, groups
        self.label_vec = label_vec  # (N, 384) unit vectors
        self.tag_vec = tag_vec  # (U, 384) unit vectors
        self.tag_icon = tag_icon  # (E, 2) long: (tag, icon) pairs
        self.lexicon = lexicon or Lexicon.empty()
        self.chinese = chinese or Lexicon.empty()  # Chinese word -> concepts, best first (zh_table.py)
        self._index = {label.lower(): k for k, label in enumerate(labels)}

    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        """(Q, 384) unit vectors -> (Q, N) concept scores."""
        by_label = queries @ self.label_vec.T  # (Q, N)
        by_tag = (queries @ self.tag_vec.T)[:, self.tag_icon[:, 0]]  # (Q, E)
        best_tag = torch.full_like(by_label, 0.0)
        index = self.tag_icon[:, 1].expand(len(queries), -1)  # (Q, E)
        best_tag = best_tag.scatter_reduce(1, index, by_tag.clamp(min=0), reduce="amax")  # (Q, N)
        return by_label + TAG_WEIGHT * best_tag

    def match(self, queries: torch.Tensor, names: list[list[str]] | None = None,
              contexts: torch.Tensor | None = None) -> list[Match | None]:
        """Per query vector the best concept and its near variants; None when nothing is near.

        names[i]: the words query i was made from ("red apple", "apple"). A concept called exactly
        that is the best whatever the scores say: a tag shared with a longer label ("balloon" of
        "thought balloon") must not outrank the label itself. Variants are near concepts of the
        same kind: the best one's head noun, in its emoji group ("evergreen tree" for "deciduous
        tree"; not "bus stop" for "bus", nor the symbol "thought balloon" for "balloon").

        contexts: the same phrases with the words around them ("a gator in the swamp"); their
        scores are blended in, since the words around a word MiniLM reads by its pieces tell
        what kind of thing it is."""
        scores = self.scores(queries)
        if contexts is not None:
            scores = (1 - CONTEXT_WEIGHT) * scores + CONTEXT_WEIGHT * self.scores(contexts)
        out: list[Match | None] = []
        for k, row in enumerate(scores):
            named = self._named(row, [n.lower() for n in (names[k] if names else []) if n])
            first = int(row.argmax()) if named is None else named
            best = row[first].item()
            if best < MIN_SCORE and named is None:
                out.append(None)
                continue
            out.append(self._with_variants(row, first))
        return out

    def _with_variants(self, row: torch.Tensor, first: int) -> Match:
        best = row[first].item()
        values, idx = row.topk(MAX_VARIANTS + 1)
        near = [self.labels[first]] + [
            self.labels[i] for v, i in zip(values.tolist(), idx.tolist(), strict=True)
            if i != first and v >= best - VARIANT_MARGIN and self._same_kind(i, first)
        ][: MAX_VARIANTS - 1]
        return Match(near[0], round(best, 4), tuple(near), self.groups[first] not in NO_MIRROR_GROUPS)

    def match_chinese(self, phrase: str, subject: str | None = None) -> Match | None:
        """A phrase with Chinese in it -> the concept its subject names, by the Chinese table (and
        the English names of a mixed phrase); None when no word of it is known. The parser's
        subject is read first, then the whole phrase (chinese.py picks the subject's word)."""
        for text in dict.fromkeys(t for t in (subject, phrase) if t):
            for term in subject_terms(text, self.knows):
                concepts = self.concepts_of(term)
                if concepts:  # near concepts of the same kind by the English label's own scores
                    m = self._with_variants(self.scores(self.label_vec[concepts[0]][None])[0], concepts[0])
                    return replace(m, term=term)
        return None

    def knows(self, term: str) -> bool:
        return bool(self.concepts_of(term))

    def concepts_of(self, term: str) -> list[int]:
        """A Chinese word's concepts best first; an English word's: its label, else WordNet's nearest."""
        if has_chinese(term):
            return list(self.chinese.concepts(term))
        word = term.lower()
        for form in (word, singular(word)):
            if form in self._index:
                return [self._index[form]]
        near = self.lexicon.concepts(word) or self.lexicon.concepts(singular(word))
        head = singular(word.split()[-1]) if word else ""  # among equals, a label with the word in it:
        return sorted(near, key=lambda c: (near[c], head_noun(self.labels[c]) != head))  # apple -> red apple

    def _named(self, row: torch.Tensor, names: list[str]) -> int | None:
        """The concept a phrase names: a label, or the best-scoring concept WordNet files the
        name under (fewer steps away counting LEXICON_STEP each); None: the scores decide."""
        for n in names:
            for form in (n, singular(n)):
                if form in self._index:
                    return self._index[form]
        for n in names:
            near = self.lexicon.concepts(n) or self.lexicon.concepts(singular(n))
            if near:
                return max(near, key=lambda c: row[c].item() - LEXICON_STEP * near[c])
        return None

    def names_in(self, phrase: str, subject: str | None) -> list[str]:
        """names_in, with "coffee" first for "a cup of coffee" (a container, group or part "of" Y)."""
        names = names_in(phrase, subject)
        before, of, after = names[0].partition(" of ")
        if of and before and singular(before.split()[-1].lower()) in self.lexicon.measures:
            names.insert(0, names_in(after, None)[0])
        return names

    def _same_kind(self, i: int, j: int) -> bool:
        return self.groups[i] == self.groups[j] and head_noun(self.labels[i]) == head_noun(self.labels[j])


def names_in(phrase: str, subject: str | None) -> list[str]:
    """What a phrase may call its object by: ('a red apple', 'apple') -> ['red apple', 'apple']."""
    first, _, rest = phrase.partition(" ")
    return [rest if first.lower() in ("a", "an") and rest else phrase] + ([subject] if subject else [])


def head_noun(label: str) -> str:
    """'evergreen tree' -> 'tree', 'houses' -> 'house': what kind of thing a label names."""
    return singular(label.split()[-1].lower())


# ------------------------------------------------------------------ the shipped file


def _quantise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = x.abs().amax(1, keepdim=True).clamp(min=1e-8) / 127  # (N, 1)
    return (x / scale).round().to(torch.int8), scale.squeeze(1).half()


def _dequantise(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(q.float() * scale.float()[:, None], dim=-1)


def usable_tag(tag: str) -> bool:
    """Words, not codes ("1st", "t-rex", "cat2") nor fragments, and nothing the blocklist keeps out."""
    return len(tag) > 2 and all(w.isalpha() for w in tag.split()) and not is_blocked(tag)


def build_concepts(icons: list[dict], encoder, path: Path, keywords: dict[str, list[str]] | None = None,
                   wordnet: WordNet | None = None, zh_terms: dict[str, list[tuple[str, bool]]] | None = None,
                   cedict: list[tuple[str, str, list[str]]] | None = None) -> dict:
    """meta.json icons -> the concept file: label and tag vectors from `encoder.sentences`.
    An icon's tags are its emojibase tags and its emojilib `keywords` (label -> words); with
    `wordnet`, the file also carries which concepts each WordNet noun is a kind of; with
    `zh_terms` (emojibase's Chinese label and tags per English label) and `cedict` (CC-CEDICT's
    entries), which concepts each Chinese word names (zh_table.py)."""
    icons = [i for i in icons if not is_blocked(i["label"])]
    labels = [i["label"] for i in icons]
    tag_sets = [sorted({t for t in [*i["tags"], *(keywords or {}).get(i["label"], [])] if usable_tag(t)})
                for i in icons]
    tags = sorted({t for ts in tag_sets for t in ts})
    where = {t: k for k, t in enumerate(tags)}
    pairs = [(where[t], k) for k, ts in enumerate(tag_sets) for t in ts]
    label_q, label_s = _quantise(encoder.sentences([article(x) for x in labels]))
    tag_q, tag_s = _quantise(encoder.sentences([article(t) for t in tags]))
    tensors = {"label_vec": label_q, "label_scale": label_s, "tag_vec": tag_q, "tag_scale": tag_s,
               "tag_icon": torch.tensor(pairs, dtype=torch.int16)}
    meta = {"labels": json.dumps(labels), "groups": json.dumps([i["group"] for i in icons]),
            "tags": json.dumps(tags)}
    table: dict[str, dict[int, int]] = {}
    if wordnet is not None:
        table, lexicon_tensors, lexicon_meta = _lexicon_table(wordnet, labels, tag_sets)
        tensors |= lexicon_tensors
        meta |= lexicon_meta
    if zh_terms is not None:
        scorer = ConceptIndex(labels, [i["group"] for i in icons], _dequantise(label_q, label_s),
                              _dequantise(tag_q, tag_s), tensors["tag_icon"].long())
        chinese = zh_table(zh_terms, labels, cedict or [], english_route(labels, tag_sets, table),
                           lambda names: scorer.scores(encoder.sentences([article(n) for n in names])))
        words = sorted(chinese)
        tensors |= {"zh_offsets": torch.tensor(np.cumsum([0] + [len(chinese[w]) for w in words]), dtype=torch.int32),
                    "zh_concepts": torch.tensor([c for w in words for c in chinese[w]], dtype=torch.int16)}
        meta["zh_words"] = json.dumps(words, ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return {"concepts": len(labels), "tags": len(tags), "pairs": len(pairs),
            "lexicon_words": len(tensors.get("lexicon_offsets", [0])) - 1,
            "zh_words": len(tensors.get("zh_offsets", [0])) - 1, "bytes": path.stat().st_size}


def english_route(labels: list[str], tag_sets: list[list[str]], table: dict[str, dict[int, int]],
                  max_tagged: int = 6):
    """An English name -> {concept: cost}, as the lookup names concepts outright: a label (0), a
    WordNet noun filed under concepts (its steps, one less where the name is also the concept's
    tag), a tag of a few concepts (lexicon.TAG_COST)."""
    by_label = {singular(label.lower()): k for k, label in enumerate(labels)}
    by_label |= {label.lower(): k for k, label in enumerate(labels)}  # "pancakes" by its singular too
    by_tag: dict[str, set[int]] = {}
    for k, ts in enumerate(tag_sets):
        for t in ts:
            by_tag.setdefault(t.lower(), set()).add(k)

    def route(name: str) -> dict[int, int]:
        forms = (name, singular(name))
        for form in forms:
            if form in by_label:
                return {by_label[form]: 0}
        found = next((dict(table[f]) for f in forms if f in table), {})
        tagged = next((by_tag[f] for f in forms if 0 < len(by_tag.get(f, ())) <= max_tagged), ())
        for c in tagged:  # a word that is both WordNet's and the emoji's own tag ("orange": the tangerine)
            found[c] = found[c] - 1 if c in found else TAG_COST
        return found
    return route


def _lexicon_table(wordnet: WordNet, labels: list[str], tag_sets: list[list[str]]) -> tuple[dict, dict, dict]:
    by_label = {label.lower(): {k} for k, label in enumerate(labels)}
    by_tag: dict[str, set[int]] = {}
    for k, ts in enumerate(tag_sets):
        for t in ts:
            by_tag.setdefault(t.lower(), set()).add(k)
    table = concepts_by_word(wordnet, by_label, by_tag, usable=usable_tag)
    words = sorted(table)
    offsets = np.cumsum([0] + [len(table[w]) for w in words])
    tensors = {"lexicon_offsets": torch.from_numpy(offsets.astype(np.int32)),
               "lexicon_concepts": torch.tensor([c for w in words for c in table[w]], dtype=torch.int16),
               "lexicon_steps": torch.tensor([s for w in words for s in table[w].values()], dtype=torch.uint8)}
    return table, tensors, {"lexicon_words": json.dumps(words), "measure_words": json.dumps(measure_words(wordnet))}


def load_concepts(path: Path) -> ConceptIndex:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items())
    lexicon = None
    if "lexicon_words" in meta:  # files from before the WordNet table have none
        lexicon = Lexicon({w: k for k, w in enumerate(json.loads(meta["lexicon_words"]))},
                          t["lexicon_offsets"].long().numpy(), t["lexicon_concepts"].long().numpy(),
                          t["lexicon_steps"].long().numpy(), frozenset(json.loads(meta["measure_words"])))
    chinese = None
    if "zh_words" in meta:  # files from before the Chinese table have none
        chinese = Lexicon.ordered(json.loads(meta["zh_words"]), t["zh_offsets"].long().numpy(),
                                  t["zh_concepts"].long().numpy())
    return ConceptIndex(json.loads(meta["labels"]), json.loads(meta["groups"]),
                        _dequantise(t["label_vec"], t["label_scale"]), _dequantise(t["tag_vec"], t["tag_scale"]),
                        t["tag_icon"].long(), lexicon, chinese)
