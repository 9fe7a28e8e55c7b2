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


# ------------------------------------------------------------------ Chinese (model/chinese.py, model/zh_table.py)
KNOWN = {"狗", "公园", "球", "小猫", "围巾", "窗台", "满月", "夜空", "苹果", "桌子", "出租车", "沙发", "猫", "cat",
         "拉面", "黑猫", "信封", "木", "勺子", "冰淇淋", "筒", "木头", "积木", "盒子", "火箭", "飞", "太空"}


@pytest.mark.parametrize(("phrase", "first"), [
    ("两只狗在公园里玩球", "狗"),  # a place after 在, an object after the verb
    ("一只戴着红色围巾的小猫坐在窗台上", "小猫"),  # the scarf describes the kitten (…的), the sill is a place
    ("夜空中的满月", "满月"),
    ("桌子上有一个苹果", "苹果"),  # 桌子上: a place; what 有 introduces is the subject
    ("一只猫坐在红色的沙发上", "猫"),  # the earlier subject keeps its place against the sofa after the verb
    ("一辆黄色出租车", "出租车"),  # 黄色 is a colour, never the thing
    ("兩隻狗在公園裡玩球", "狗"),  # Traditional
    ("一只cat在沙发上", "cat"),  # mixed
    ("一只小黑猫", "黑猫"),  # an unknown compound by its known ending
    ("一个信封", "信封"),  # jieba reads it as a verb; known, it still counts
    ("一把木勺子", "勺子"),  # a compound's head is its last word
    ("一个木头积木盒子", "盒子"),  # ... however many come before it
    ("一枚火箭飞向太空", "火箭"),  # ... but one character after a noun is as often a verb jieba mis-tags
    ("一个冰淇淋甜筒", "冰淇淋"),  # ... but one character of an unknown word is only a guess
])
def test_a_chinese_phrase_is_read_for_its_subject(phrase, first):
    from wanimage.model.chinese import subject_terms

    assert subject_terms(phrase, KNOWN.__contains__)[0] == first


def test_traditional_turns_simplified_and_colours_describe_their_own_word():
    from wanimage.model.chinese import colour_of, has_chinese, simplified

    assert simplified("計程車") == "计程车" and simplified("a red apple") == "a red apple"
    assert has_chinese("a 红苹果") and not has_chinese("a red apple")
    assert colour_of("一辆黄色出租车", "出租车") == "yellow" and colour_of("红色的汽车", "汽车") == "red"
    assert colour_of("一个红苹果", "红苹果") == "red"  # at the word's own start
    assert colour_of("一只戴着红色围巾的小猫", "小猫") is None  # the scarf is red, not the kitten


def test_cedict_senses_become_english_names():
    from wanimage.model.zh_table import english_names

    assert english_names(["(loanword) guitar"]) == [["guitar"]]
    assert english_names(["windowsill; window ledge"]) == [["windowsill", "window ledge"]]
    assert english_names(["cat (CL:隻|只[zhi1])", "(dialect) to hide oneself"]) == [["cat"], []]
    assert english_names(["(of a baby) to reach one month of age", "the full moon"]) == [[], ["full moon"]]
    assert english_names(["variant of 碗[wan3]"]) == [[]]


def test_the_chinese_table_ranks_labels_tags_and_dictionary_senses():
    from wanimage.model.zh_table import SHARED_TAG, zh_table

    labels = ["taxi", "automobile", "red apple", "green apple"] + [f"animal {k}" for k in range(SHARED_TAG + 1)]
    zh_terms = {"taxi": [("出租车", True), ("计程车", False), ("汽车", False), ("黄色", False)],
                "automobile": [("汽车", True)], "red apple": [("红苹果", True), ("苹果", False)],
                "green apple": [("青苹果", True), ("苹果", False)]}
    zh_terms |= {f"animal {k}": [("动物", False)] for k in range(SHARED_TAG + 1)}
    cedict = [("轿车", "jiao4 che1", ["sedan (car)"]), ("苹果", "Ping2 guo3", ["Apple (company)"]),
              ("苹果", "ping2 guo3", ["apple"]), ("的士", "di1 shi4", ["(loanword) taxi"]),
              ("满月", "man3 yue4", ["to reach one month of age", "full moon"])]
    english = {"sedan": {1: 1}, "apple": {2: 1, 3: 1}, "taxi": {0: 0}, "company": {}}.get

    def closeness(names):  # "apple" is nearer the red one
        return torch.tensor([[0.0, 0.0, 0.9, 0.6] + [0.0] * (SHARED_TAG + 1) for _ in names])

    table = zh_table(zh_terms, labels, cedict, lambda name: english(name, {}), closeness)
    assert table["出租车"] == [0] and table["计程车"] == [0]  # a label, a tag
    assert table["汽车"] == [1]  # the automobile's label beats the taxi's tag
    assert table["轿车"] == [1] and table["的士"] == [0]  # CC-CEDICT's English, looked up the English way
    assert table["苹果"] == [2, 3]  # both apples' tag and "apple" agree; the closer first
    assert "动物" not in table and "黄色" not in table  # a tag on too many; a colour
    assert "满月" not in table  # "full moon" names nothing here


def test_the_shipped_file_reads_chinese():
    """The Chinese tuning phrases (tests/fixtures/lookup/tuning_zh.txt; the bench's prompts are
    elsewhere): 76 of 82 today, held to 85 %."""
    from pathlib import Path

    from wanimage.engines.builtin import DEFAULT_WEIGHTS
    from wanimage.model.concepts import load_concepts

    index = load_concepts(DEFAULT_WEIGHTS.with_name("concepts.safetensors"))
    path = Path(__file__).resolve().parents[1] / "fixtures" / "lookup" / "tuning_zh.txt"
    lines = [x.split(" | ") for x in path.read_text(encoding="utf-8").splitlines() if " | " in x and x[0] != "#"]
    found = [index.match_chinese(phrase, phrase) for phrase, _ in lines]
    right = sum(m is not None and m.label in {w.strip() for w in want.split(";")}
                for m, (_, want) in zip(found, lines, strict=True))
    assert len(lines) == 82 and right / len(lines) >= 0.85
    assert len(index.chinese.rows) > 20_000
    taxi = index.match_chinese("計程車")
    assert taxi.label == "taxi" and taxi.term == "计程车" and "oncoming taxi" in taxi.variants
    assert index.match_chinese("xqzv 的") is None


def test_a_word_known_only_as_a_tag_goes_to_the_emoji_its_ending_names():
    from wanimage.model.zh_table import zh_table

    zh_terms = {"bird": [("鸟", True)], "badminton": [("羽毛球", True), ("小鸟", False)],
                "bear": [("熊", True)], "teddy bear": [("泰迪熊", True), ("玩具熊", False)]}
    cedict = [("小鸟", "xiao3 niao3", ["small bird", "birdie"])]

    def closeness(names):  # "small bird" is nearer the bird
        return torch.tensor([[0.9, 0.5, 0.0, 0.0] for _ in names])

    table = zh_table(zh_terms, ["bird", "badminton", "bear", "teddy bear"], cedict, lambda name: {}, closeness)
    assert table["小鸟"] == [0, 1]  # the little bird before the birdie, by its English name
    assert table["玩具熊"] == [3, 2]  # no English name: the tag's emoji first, the head's just behind
    assert table["羽毛球"] == [1]


def test_emojibase_chinese_and_cc_cedict_are_read_as_shipped(tmp_path):
    """emojibase's zh/zh-hant data.json join the English labels by code point (Traditional turned
    Simplified); cc-cedict's data/all.js is an ES module around JSON; the Makefile fetches the
    version the build reads."""
    import json
    from pathlib import Path

    from wanimage.model.chinese import simplified
    from wanimage.model.zh_table import CEDICT_PKG, CEDICT_VERSION, emojibase_zh, read_cedict

    for locale, rows in {"en": [{"hexcode": "1F695", "label": "taxi"}, {"hexcode": "1F408", "label": "cat"}],
                         "zh": [{"hexcode": "1F695", "label": "出租车", "tags": ["的士", "计程车"]}],
                         "zh-hant": [{"hexcode": "1F695", "label": "計程車", "tags": ["的士"]},
                                     {"hexcode": "1F408", "label": "貓"}]}.items():
        (tmp_path / locale).mkdir()
        (tmp_path / locale / "data.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    assert emojibase_zh(tmp_path, simplified) == {
        "taxi": [("出租车", True), ("的士", False), ("计程车", False), ("计程车", True)], "cat": [("猫", True)]}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "all.js").write_text('export default {"all":[["出租車","出租车","chu1 zu1 che1",'
                                              '["taxi","(Tw) rental car"],[],[]],["貓","猫","mao1","cat",[],[35]]]}',
                                              encoding="utf-8")
    assert read_cedict(tmp_path) == [("出租车", "chu1 zu1 che1", ["taxi", "(Tw) rental car"]), ("猫", "mao1", ["cat"])]
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert f"{CEDICT_PKG}@{CEDICT_VERSION}" in makefile
