"""Reading a Chinese object phrase for the concept lookup: which of its words is the thing to draw.

The prompt parser may hand the model a whole clause ("两只狗在公园里玩球"), a phrase
("一辆黄色出租车") or just its head noun ("苹果"); in Traditional ("計程車") or mixed with English
("一只cat在沙发上"). The phrase is turned Simplified (OpenCC's tables), segmented with jieba's
part-of-speech tagger, and every word or run of words the concept file knows (`known`) is a
candidate. A candidate loses rank for the roles a subject does not take:

  modifier     夜空中的满月: a noun before 的 (through locatives and adjectives) describes the one after
  place        在公园里, 桌子上有…: after a preposition, or before a locative with no 的 after it
  object       一只猫坐在沙发上: after a verb, once an earlier noun took the subject's place
  compound     木椅子, 草莓冰淇淋: a known word right before another describes it
and gains one when a numeral and measure word count it (一只, 两辆, 一碗). The best comes first;
ties go to the earlier word. A word the file does not know is tried by its known ending, since a
Chinese compound ends in its head ("小黑猫" -> 黑猫, "玩球" -> 球).

    subject_terms("一只戴着红色围巾的小猫坐在窗台上", known) -> ["小猫", "围巾", "窗台"]"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from .captions import COLOURS

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
MAX_RUN = 3  # words of a segmentation joined back into one known term ("生日" + "蛋糕")

# Chinese colour words -> captions.COLOURS names: adjectives of the thing, never the thing itself.
COLOUR_WORDS = {
    "红": "red", "红色": "red", "大红": "red", "深红": "red", "鲜红": "red", "赤": "red",
    "橙": "orange", "橙色": "orange", "橘色": "orange", "橘黄": "orange", "橘黄色": "orange", "橘红色": "orange",
    "黄": "yellow", "黄色": "yellow", "金色": "yellow", "金黄": "yellow", "金黄色": "yellow", "明黄色": "yellow",
    "绿": "green", "绿色": "green", "翠绿": "green", "翠绿色": "green", "深绿色": "green", "浅绿色": "green",
    "蓝": "blue", "蓝色": "blue", "天蓝色": "blue", "深蓝色": "blue", "浅蓝色": "blue", "湛蓝": "blue",
    "紫": "purple", "紫色": "purple", "淡紫色": "purple",
    "粉": "pink", "粉色": "pink", "粉红": "pink", "粉红色": "pink", "粉嫩": "pink",
    "棕": "brown", "棕色": "brown", "褐色": "brown", "咖啡色": "brown",
    "黑": "black", "黑色": "black", "乌黑": "black",
    "白": "white", "白色": "white", "雪白": "white", "洁白": "white",
    "灰": "gray", "灰色": "gray", "银色": "gray", "银灰色": "gray",
}
# part-of-speech tags (jieba's, ICTCLAS style) of words that are never the thing drawn: function
# words, locatives, punctuation. The rest are not trusted to be exact: jieba reads "相机" (camera)
# as an adverb and "本书" (this book) as a pronoun, so any other known word counts.
FUNCTION = ("c", "e", "f", "o", "p", "u", "w", "x", "y")
COUNTING = ("m", "q")  # numerals and measure words
GRAMMAR = set("的地得了着过个只把在是有和与就也都很")  # characters that end words without being things ("弯弯的")
LOCATIVES = set("上下里中内外前后旁边侧顶底")  # a trailing one makes "窗台上" a place
EXISTENTIAL = {"有", "是"}  # "桌子上有一个苹果": what comes after names the subject


@dataclass
class _Word:
    text: str
    flag: str


def has_chinese(text: str) -> bool:
    return bool(CJK.search(text or ""))


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC

    return OpenCC("t2s")


def simplified(text: str) -> str:
    """Traditional characters as Simplified ("計程車" -> "计程车"); Simplified text is unchanged."""
    return _t2s().convert(text) if has_chinese(text) else text


@lru_cache(maxsize=1)
def _tagger():
    import logging

    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict" chatter on the server's log
    return jieba.posseg.dt


def words(text: str) -> list[_Word]:
    """Segmented and tagged, blanks dropped; Latin words keep jieba's 'eng'."""
    return [_Word(w.word, w.flag) for w in _tagger().lcut(simplified(text)) if w.word.strip()]


def colour_of(text: str, term: str) -> str | None:
    """The colour word that describes `term` in a Chinese phrase, as a COLOURS name: at the
    term's start or right before it ("红苹果", "一辆黄色出租车", "红色的汽车" -> red, yellow, red);
    not one that describes something else ("戴着红色围巾的小猫", 小猫 -> None)."""
    text, term = simplified(text), simplified(term)
    at = text.find(term)
    if at < 0:
        return None
    before = text[:at].removesuffix("的")
    for n in (3, 2, 1):
        if term[:n] in COLOUR_WORDS and len(term) > n:
            return COLOUR_WORDS[term[:n]]
        if before[-n:] in COLOUR_WORDS and len(before) >= n:
            return COLOUR_WORDS[before[-n:]]
    return None


def _thing(w: _Word) -> bool:
    if w.flag.startswith("a") and w.flag != "an":  # an adjective ("小", "圆") describes the thing
        return False
    return w.text not in COLOUR_WORDS and (w.flag == "eng" or not w.flag.startswith(FUNCTION + COUNTING))


def _candidates(ws: list[_Word], known: Callable[[str], bool]) -> list[tuple[int, int, str]]:
    """(first word, last word, term): known runs of words, longest first; else a word's known ending."""
    found, i = [], 0
    while i < len(ws):
        for n in range(min(MAX_RUN, len(ws) - i), 0, -1):
            run = ws[i : i + n]
            latin = not has_chinese(run[0].text)
            if any(has_chinese(w.text) == latin for w in run):
                continue  # runs are all Chinese or all Latin ("hot dog")
            term = (" " if latin else "").join(w.text for w in run)
            if (n > 1 or _thing(run[0])) and term not in COLOUR_WORDS and term.lower() not in COLOURS \
                    and known(term):
                found.append((i, i + n - 1, term))
                i += n
                break
        else:
            w = ws[i]
            if _thing(w) and has_chinese(w.text):
                text = w.text.rstrip("".join(LOCATIVES)) or w.text
                ending = next((text[k:] for k in range(0 if text != w.text else 1, len(text))
                               if text[k:] not in COLOUR_WORDS and text[k:] not in GRAMMAR and known(text[k:])),
                              None)
                if ending is not None:
                    found.append((i, i, ending))
            i += 1
    return found


def subject_terms(text: str, known: Callable[[str], bool]) -> list[str]:
    """The known terms of a phrase, the likeliest subject first (see the module's docstring)."""
    ws = words(text)
    found = _candidates(ws, known)
    ranked: list[tuple[int, int, str]] = []  # (last word, cost, term)
    modifiers: set[int] = set()  # places in `ranked` of the first words of compounds
    subject_seen = False
    for a, b, term in found:
        cost = 1 if a == b and ws[a].flag == "v" else 0  # a known word jieba read as a verb ("信封")
        cost += len(term) == 1 and ws[a].text != term  # one character of an unknown word is a guess ("甜筒": 筒)
        after = ws[b + 1 :]
        upto_de = next((j for j, w in enumerate(after) if w.text == "的"), None)
        if upto_de is not None and all(not w.flag.startswith(("v", "p")) or w.flag == "vn" for w in after[:upto_de]) \
                and not any(c[0] > b and c[0] <= b + upto_de for c in found):
            cost += 2  # modifier: 夜空中的…, 猫的玩具
        before = ws[:a]
        last_de = max((j for j, w in enumerate(before) if w.text == "的"), default=-1)
        clause = before[last_de + 1 :]
        if any(w.flag == "p" for w in clause):
            cost += 2  # place: 在公园里
        elif (after and after[0].text in LOCATIVES or ws[b].text[-1:] in LOCATIVES and ws[b].text != term) \
                and upto_de is None:
            cost += 1  # place: 桌子上有…, 窗台上
        if subject_seen and any(w.flag.startswith("v") and w.flag != "vn" for w in clause) \
                and not any(w.text in EXISTENTIAL for w in clause):
            cost += 1  # object of an earlier subject's verb
        whole = len(term) > 1 and "".join(w.text for w in ws[a : b + 1]) == term
        if ranked and ranked[-1][0] == a - 1 and whole and has_chinese(term) and has_chinese(ranked[-1][2]):
            # known words in a row: the last is the head ("木椅子": a chair), when it is a whole word
            # of two characters or more (one after a noun is as often a verb jieba mis-tags: 火箭飞向太空)
            end, c, prev = ranked[-1]
            ranked[-1] = (end, c + 1, prev)
            modifiers.add(len(ranked) - 1)
        counted = max((j for j, w in enumerate(before) if w.flag.startswith(COUNTING)), default=None)
        if counted is not None and not any(counted < end < a and c <= 0 and k not in modifiers
                                           for k, (end, c, _) in enumerate(ranked)):
            cost -= 1  # 一只…, 两辆…: counted, and by no earlier subject
        ranked.append((b, cost, term))
        subject_seen = subject_seen or cost <= 0
    order = sorted(range(len(ranked)), key=lambda k: (ranked[k][1], k))
    return [ranked[k][2] for k in order]
