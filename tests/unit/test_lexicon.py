"""WordNet's noun hierarchy in the open-vocabulary lookup (model/lexicon.py, model/concepts.py).

A tiny WordNet in WordNet's own file format is written per test; the shipped concept file is
checked on words MiniLM reads by their pieces, taken from the lookup's tuning list."""

from __future__ import annotations

import pytest
import torch

from wanimage.model.lexicon import TAG_COST, concepts_by_word, measure_words, read_wordnet

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by\n"
# offset: (words, hypernyms); offsets are the synsets' names in this tiny WordNet
SYNSETS = {
    50: (["food"], []), 60: (["container"], []), 70: (["cup"], [60]),
    100: (["sandwich"], [50]), 110: (["hoagie", "hero"], [100]), 120: (["hero"], [200]), 200: (["person"], []),
    300: (["cat"], []), 310: (["domestic_cat"], [300]), 320: (["tabby"], [310]), 330: (["tabby"], [200]),
    400: (["bull"], [410]), 410: (["cattle"], []), 420: (["ox"], [410]),
    500: (["television"], []), 510: (["television_set", "television"], []), 520: (["telly"], [510]),
}

SENSES = {"food": [50], "container": [60], "cup": [70], "sandwich": [100], "hoagie": [110], "hero": [120, 110],
          "person": [200], "cat": [300], "domestic_cat": [310], "tabby": [320, 330], "bull": [400],
          "cattle": [410], "ox": [420], "television": [500, 510], "television set": [510], "telly": [520]}


def write_wordnet(folder):
    data = [LICENCE]
    for offset, (words, hypernyms) in SYNSETS.items():
        lemmas = " ".join(f"{w} 0" for w in words)
        pointers = " ".join(f"@ {h:08d} n 0000" for h in hypernyms)
        data.append(f"{offset:08d} 13 n {len(words):02x} {lemmas} {len(hypernyms):03d} {pointers} | a gloss\n")
    index = [LICENCE] + [f"{w.replace(' ', '_')} n {len(s)} 1 @ {len(s)} 0 {' '.join(f'{o:08d}' for o in s)}\n"
                         for w, s in sorted(SENSES.items())]
    (folder / "data.noun").write_text("".join(data))
    (folder / "index.noun").write_text("".join(index))
    return read_wordnet(folder)


def test_a_word_is_filed_under_the_concepts_near_its_most_frequent_senses(tmp_path):
    wn = write_wordnet(tmp_path)
    assert wn.senses["domestic cat"] == [310] and wn.hypernyms[320] == [310]  # underscores read as spaces
    labels = {"sandwich": {0}, "superhero": {1}, "cat": {2}, "ox": {3}}
    table = concepts_by_word(wn, labels, {"hero": {1}})
    assert table["hoagie"] == {0: 1}  # "hero" is also the hoagie's word, but the tag means the myth's hero
    assert table["tabby"] == {2: 2}  # tabby -> domestic cat -> cat; its second sense (a person) is too far
    assert table["bull"] == {3: 2}  # up to cattle and down to ox
    assert "person" not in table  # the superhero (the hero's tag) is a kind of person: only down, left to the scores
    assert concepts_by_word(wn, {"cattle": {0}}, {})["ox"] == {0: 1} and "cattle" not in concepts_by_word(
        wn, {"ox": {0}}, {})  # ox -> cattle, but cattle is no ox


def test_a_tag_costs_more_than_a_label_at_the_same_sense(tmp_path):
    wn = write_wordnet(tmp_path)
    table = concepts_by_word(wn, {"cattle": {0}}, {"cattle": {1}})
    assert table["ox"] == {0: 1}  # the tag's concept is TAG_COST behind, beyond the slack: dropped
    assert concepts_by_word(wn, {}, {"cattle": {1}})["ox"] == {1: 1 + TAG_COST}


def test_a_label_is_placed_at_its_later_senses_a_step_further(tmp_path):
    """WordNet's first "television" is the medium; the emoji is the set, its second sense."""
    wn = write_wordnet(tmp_path)
    assert concepts_by_word(wn, {"television": {0}}, {})["telly"] == {0: 2}  # telly -> set, +1 for the sense
    assert concepts_by_word(wn, {"television set": {0}}, {})["telly"] == {0: 1}


def test_measure_words_are_containers_groups_and_parts(tmp_path):
    wn = write_wordnet(tmp_path)
    assert "cup" in measure_words(wn) and "sandwich" not in measure_words(wn)


@pytest.fixture(scope="module")
def shipped():
    from wanimage.engines.builtin import DEFAULT_WEIGHTS
    from wanimage.model.concepts import load_concepts
    from wanimage.model.text import TextEncoder

    index, encoder = load_concepts(DEFAULT_WEIGHTS.with_name("concepts.safetensors")), TextEncoder()

    def look(phrase: str, subject: str):
        return index.match(encoder.sentences([phrase]), [index.names_in(phrase, subject)])[0]

    return index, look


def test_the_shipped_file_knows_what_rare_words_are_kinds_of(shipped):
    index, look = shipped
    assert len(index.lexicon.rows) > 50_000 and "cup" in index.lexicon.measures
    assert index.match(torch.zeros(1, 384))[0] is None  # no names, nothing near: drawn as written
    for phrase, subject, want in [("a hoagie", "hoagie", "sandwich"), ("a frankfurter", "frankfurter", "hot dog"),
                                  ("an aubergine", "aubergine", "eggplant"), ("a clementine", "clementine", "tangerine")]:
        assert look(phrase, subject).label == want, phrase


def test_a_container_of_something_is_looked_up_as_the_something(shipped):
    index, look = shipped
    assert index.names_in("a cup of coffee", "cup of coffee")[0] == "coffee"
    assert look("a cup of coffee", "cup of coffee").label == "hot beverage"
    assert index.names_in("a picture of a dog", "picture of a dog")[0] == "picture of a dog"  # not a container
