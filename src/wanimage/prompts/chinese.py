"""Chinese prompt -> ParsedPrompt, the same result the English parser gives, so every reader of a
parse (the built-in engine, the built-in planner) serves both languages. Simplified, Traditional
(converted to Simplified first, with OpenCC's tables) and Chinese mixed with English: a clause
without Chinese characters is read by the English rules, a Latin noun inside a Chinese clause
stays English ("两只cat" -> 2 x cat).

  "左边三个红苹果，一只猫在一只狗的上面，蓝色背景"
    objects     3 x red 苹果 @left, 猫, 狗         relations  猫 above 狗
    background  "blue"

Steps (`parse_zh`): 1. protect quoted text, convert to Simplified, pull out style and background;
2. split into clauses (punctuation, 、, 和 / 与 / 以及 between objects); 3. each clause is a
negation (kept), a relation "A在B的上面", an object phrase "[region][数词+量词][modifier 的][colour]
[size] noun [the rest]" or kept text. Words come from jieba (segmentation and word classes),
loaded once, lazily, behind a lock (`warm`)."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from . import zh_words as zh
from .vocabulary import MAX_COUNT, PLURAL_COUNT, region_name

if TYPE_CHECKING:
    from .parse import ParsedObject, ParsedPrompt

_lock = threading.Lock()
_tools: dict[str, Any] = {}


def warm() -> None:
    """Load jieba's dictionary and OpenCC's tables once (about a second); thread-safe. The server
    calls it at start-up so that the first Chinese request does not pay for it."""
    if _tools:
        return
    with _lock:
        if _tools:
            return
        import logging

        import jieba
        import jieba.posseg
        from opencc import OpenCC

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        jieba.posseg.lcut("一只猫")  # loads the word-class tables too
        _tools.update(posseg=jieba.posseg, t2s=OpenCC("t2s"), s2t=OpenCC("s2t"))


def has_han(text: str) -> bool:
    return zh.HAN_RE.search(text) is not None


def to_simplified(text: str) -> str:
    warm()
    return _tools["t2s"].convert(text)


def to_traditional(text: str) -> str:
    warm()
    return _tools["s2t"].convert(text)


_PLACEHOLDER_RE = re.compile(r"(\x02\d+\x03)")


def words(text: str) -> list[tuple[str, str]]:
    """jieba's words with their word classes; runs of English words ("red apple") stay one word."""
    warm()
    out: list[tuple[str, str]] = []
    # HMM=False: jieba's guessing of unknown words costs seconds on long odd input ("和" * 2000);
    # quoted text (a placeholder here) is one word, a name
    pairs: list[tuple[str, str]] = []
    for piece in _PLACEHOLDER_RE.split(text):
        if _PLACEHOLDER_RE.fullmatch(piece):
            pairs.append((piece, "nz"))
        elif piece:
            pairs += [(p.word, p.flag) for p in _tools["posseg"].lcut(piece, HMM=False)]
    for w, f in pairs:
        if out and out[-1][1] == "eng" and (f == "eng" or (w.isspace() and w)):
            out[-1] = (out[-1][0] + w, "eng")
        else:
            out.append((w, f))
    return [(w.strip() if f == "eng" else w, f) for w, f in out if w.strip()]


# ------------------------------------------------------------------ numbers and colours


def zh_int(text: str) -> int | None:
    """'十二' -> 12, '两' -> 2, '3' -> 3, '一百' -> 100; None when it is not a numeral."""
    text = text.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if text.isdigit():
        return int(text)
    total, num = 0, 0
    for ch in text:
        if ch in zh.DIGITS:
            num = zh.DIGITS[ch]
        elif ch in zh.UNITS:
            total += (num or 1) * zh.UNITS[ch]
            num = 0
        else:
            return None
    return total + num


_MEASURE = "|".join(sorted(zh.MEASURES, key=len, reverse=True))
_QUANTITY = "|".join(sorted(zh.QUANTITIES, key=len, reverse=True))
_COUNT_RE = re.compile(
    rf"^(?P<def>[{''.join(zh.DEFINITE)}])?(?:(?P<q>{_QUANTITY})(?P<qm>{_MEASURE})?|"
    rf"(?P<num>[0-9０-９]{{1,3}})\s*(?P<dm>{_MEASURE})?|(?P<zn>{zh.NUMERAL})(?P<zm>{_MEASURE})|"
    rf"(?P<few>[{zh.FEW}])(?P<fm>{_MEASURE})|"
    rf"(?<=[{''.join(zh.DEFINITE)}])(?P<bm>{_MEASURE}))")
_SHADE = "|".join(zh.SHADES)
_COLOUR = "|".join(sorted(zh.COLOURS, key=len, reverse=True))
_COLOUR_WORD_RE = re.compile(rf"(?:(?P<shade>{_SHADE}))?(?P<c>{_COLOUR})(?P<se>色)?")
_COLOUR_LIST_RE = re.compile(
    rf"^(?:(?:{_SHADE})?(?:{_COLOUR})色?(?:和|与|、|到|至|或|跟)?)+(?:的)?(?:渐变色?)?$")


def count_phrase(chunk: str) -> tuple[int, int | None, str | None, bool, str]:
    """A leading numeral + measure word -> (count, counted: the number as written or None,
    measure word, definite, the rest). '两只猫' -> (2, 2, '只', False, '猫')."""
    m = _COUNT_RE.match(chunk)
    if not m or not m.group():
        return 1, None, None, False, chunk
    definite = m.group("def") is not None
    measure = m.group("qm") or m.group("dm") or m.group("zm") or m.group("fm") or m.group("bm")
    if m.group("q"):
        n: int | None = zh.QUANTITIES[m.group("q")]
    elif m.group("few"):
        n = 3
    elif m.group("num") or m.group("zn"):
        n = zh_int(m.group("num") or m.group("zn"))
    else:
        n = 1
    if n is None or n == 0:
        return 1, None, None, False, chunk
    if measure in zh.PAIR_MEASURES:  # 一双鞋: two shoes
        n, measure = 2 * n, zh.PAIR_MEASURES[measure]
    return n, (n if not (definite and m.group("bm")) else None), measure, definite, chunk[m.end():]


def colour_name(text: str) -> str | None:
    """'红色' / '红' / '浅蓝色的' -> 'red' / 'red' / 'light blue'; None when it is not a colour."""
    text = text.removesuffix("的")
    m = _COLOUR_WORD_RE.fullmatch(text)
    if not m or (m.group("c") in zh.NOUN_COLOURS and not m.group("se")):  # 咖啡 is coffee, 咖啡色 brown
        return None
    name = zh.COLOURS[m.group("c")]
    return f"{zh.SHADES[m.group('shade')]} {name}" if m.group("shade") else name


def colour_words_zh(text: str) -> list[str]:
    """The colours a Chinese text names as colours ('X色'), in order: '红色的苹果' -> ['red']."""
    out = []
    for m in re.finditer(rf"(?:{_COLOUR})色", text):
        out.append(zh.COLOURS[m.group()[:-1]])
    return out


def colour_description(desc: str) -> str | None:
    """Only colour words ('粉色和黄色渐变') -> English names ('pink and yellow gradient'), else None."""
    desc = desc.removesuffix("的")
    if not _COLOUR_LIST_RE.match(desc):
        return None
    names = [f"{zh.SHADES[m.group('shade')]} {zh.COLOURS[m.group('c')]}" if m.group("shade") else
             zh.COLOURS[m.group("c")] for m in _COLOUR_WORD_RE.finditer(desc.replace("渐变", ""))]
    return " and ".join(names) + (" gradient" if "渐变" in desc else "")


def size_name(text: str) -> str | None:
    return zh.SIZES.get(text.removesuffix("的"))


# ------------------------------------------------------------------ regions, style, background

_REGION = "|".join(sorted(zh.REGION_WORDS, key=len, reverse=True))
_REGION_RES = (
    re.compile(rf"{zh.PLACE_VERBS}\s*(?:{zh.CANVAS}的?)?(?P<r>{_REGION})(?:的|位置|区域|部分|处)?"),
    re.compile(rf"^(?:{zh.CANVAS}的?)?(?P<r>{_REGION})(?:的|位置|区域|部分|处)?"),
    re.compile(rf"{zh.CANVAS}的?(?P<r>{_REGION})(?:的|位置|区域|部分|处)?"),
)


def region_zh(chunk: str) -> tuple[str, str | None]:
    """'三个苹果在左边' -> ('三个苹果', 'left'); '左上角有一个太阳' -> ('有一个太阳', 'top left')."""
    for pattern in _REGION_RES:
        m = pattern.search(chunk)
        if m:
            return (chunk[: m.start()] + chunk[m.end():]).strip(), region_name(zh.REGION_WORDS[m.group("r")])
    return chunk, None


_KNOWN_STYLE = "|".join(sorted(zh.STYLE_WORDS, key=len, reverse=True))
_STYLE_RES = (
    re.compile(rf"(?:以|用|采用|使用|呈现|画成|做成|一种)?(?P<s>{_KNOWN_STYLE})(?:{zh.STYLE_SUFFIX}|风|效果)"),
    re.compile(rf"(?:以|用|采用|使用|呈现|一种)?(?P<s>[^\s，,。；;：:、的是用以成种幅张个只和与]{{1,10}}){zh.STYLE_SUFFIX}"),
    re.compile(rf"(?:^|(?<=[，,。；;]))\s*(?P<s>{_KNOWN_STYLE})\s*(?=$|[，,。；;])"),
)


def style_zh(text: str) -> tuple[str, str | None]:
    """'一只猫，水彩风格' -> ('一只猫，', '水彩'); '梵高风格的星空' -> ('星空', '梵高')."""
    for pattern in _STYLE_RES:
        m = pattern.search(text)
        if m:
            rest = text[: m.start()] + text[m.end():]
            return re.sub(r"^的", "", rest.strip()), m.group("s")
    return text, None


_BACKGROUND_RES = (
    re.compile(r"(?:以|用)(?P<d>[^，,。；;]{1,20}?)(?:为|作为|当)背景(?:的)?"),
    re.compile(r"背景(?:色)?(?:里|中|上)?\s*(?:是|为|：|:|采用|用|设为|选用|要|有)\s*(?P<d>[^，,。；;]{1,20})"),
    re.compile(r"(?:在|衬着|映衬着|衬托着|背靠)?(?P<d>[^，,。；;在以用]{1,20}?)的?(?:背景色|背景|底色)"
               r"(?:上|下|前|中|里|之上|之前|前面)?(?:的)?"),
)


def background_zh(text: str) -> tuple[str, str | None]:
    """'一朵花，蓝色背景' -> ('一朵花，', 'blue'); '以星空为背景' -> ('', '星空'). Colour-only
    descriptions become the English colour names every engine reads; others stay as written."""
    for pattern in _BACKGROUND_RES:
        m = pattern.search(text)
        if not m:
            continue
        desc = re.sub(r"^(?:纯|单色|简单的?|纯色的?)", "", m.group("d").strip()).removesuffix("的").strip()
        if not desc or count_phrase(desc)[1] is not None:  # "一只猫的背景": not a description
            continue
        return (text[: m.start()] + text[m.end():]).strip(), colour_description(desc) or desc
    return text, None


def scene_zh(text: str) -> tuple[str | None, str | None, str | None]:
    """The first time-of-day, weather and ground word (whole jieba words): '夜空中的满月' -> night."""
    ws = [w for w, _ in words(text)]

    def first(table: dict[str, str]) -> str | None:
        return next((table[w] for w in ws if w in table), None)

    return first(zh.TIMES), first(zh.WEATHER), first(zh.GROUNDS)


# ------------------------------------------------------------------ the whole prompt

_QUOTED_RE = re.compile(r'"[^"]{0,500}"|“[^”]{0,500}”|「[^」]{0,500}」|『[^』]{0,500}』|\'[^\']{1,200}\'(?!\w)')
_SENTENCE_RE = re.compile(r"[，,。；;！!？?\n]|\.(?:\s|$)")


def parse_zh(prompt: str) -> ParsedPrompt:
    """Objects, relations, background, style and kept text of one Chinese (or mixed) prompt."""
    from .parse import (
        ParsedPrompt,
        Scene,
        extract_background,
        extract_style,
        scene_words,
        shield_quotes,
    )

    text, restore = shield_quotes(" ".join(prompt.split()), _QUOTED_RE)
    simplified = to_simplified(text)
    lang = "zh-Hant" if simplified != text else "zh"
    text, style = style_zh(simplified)
    text, background = background_zh(text)
    time_, weather, ground = scene_zh(re.sub(r"\x02\d+\x03", " ", text))
    en = scene_words(text)
    parsed = ParsedPrompt(background=background and restore(background), style=style and restore(style),
                          scene=Scene(time_ or en.time, weather or en.weather, ground or en.ground), lang=lang)
    for clause, lenient in split_zh(text):
        if has_han(clause):
            _parse_zh_clause(parsed, clause, lenient)
            continue
        clause, st = extract_style(clause)  # an English clause: the English rules
        clause, bg = extract_background(clause)
        parsed.style = parsed.style or (st and restore(st))
        parsed.background = parsed.background or (bg and restore(bg))
        if clause.strip(" .!?:"):
            _en_clause(parsed, clause, lenient)
    for obj in parsed.objects:
        obj.detail, obj.modifier = restore(obj.detail), restore(obj.modifier)
    parsed.kept = [restore(k) for k in parsed.kept]
    return parsed


def _en_clause(parsed: ParsedPrompt, clause: str, lenient: bool) -> None:
    from .parse import _parse_clause, _split_and

    parts = [c.strip() for c in _split_and(clause) if c.strip()]
    for part in parts:
        _parse_clause(parsed, part, lenient or len(parts) > 1)


def split_zh(text: str) -> list[tuple[str, bool]]:
    """-> [(clause, lenient)]: 、 and 和 / 与 / 以及 between objects split a sentence, and the parts
    they join are objects even when bare nouns ("猫和狗"); "A在B和C之间" stays one clause."""
    clauses: list[tuple[str, bool]] = []
    for sentence in _SENTENCE_RE.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        if not has_han(sentence):
            clauses.append((sentence, False))
            continue
        parts = [p.strip() for p in sentence.split("、") if p.strip()]
        if not re.search(r"(?:之间|中间)$", sentence):
            parts = [q for p in parts for q in split_conjunctions(p)]
        clauses += [(p, len(parts) > 1) for p in parts]
    if len(clauses) == 1:
        clauses = [(clauses[0][0], True)]
    return clauses


def split_conjunctions(part: str) -> list[str]:
    if not has_han(part):
        return [part]
    out, cur = [], ""
    for w, f in words(part):
        if w in zh.CONJUNCTIONS and f in ("c", "p", "zg", "d", "v") and cur:
            out.append(cur)
            cur = ""
        else:
            cur += w if f != "eng" or not cur or not cur[-1].isascii() else " " + w
    return [p for p in [*out, cur] if p.strip()]


def _parse_zh_clause(parsed: ParsedPrompt, clause: str, lenient: bool) -> None:
    body = re.sub(r"^(?:也|并且|而且|并|但|但是|同时)", "", clause)
    if negated(body):  # "没有人", "不要文字": not something to draw
        parsed.kept.append(clause)
        return
    if _relation_zh(parsed, body):
        return
    obj = parse_object_zh(body, lenient=lenient)
    if obj is None:
        parsed.kept.append(clause)
    else:
        parsed.add(obj)


_REL = "|".join(sorted(zh.RELATION_WORDS, key=len, reverse=True))
_REL_RES = (  # A 在 B 的上面 / B 的上面有 A
    re.compile(rf"^(?P<a>.+?)(?:坐|站|躺|趴|飞|停|挂|放|浮|漂|蹲|立|待|悬挂|悬浮|停留)?(?:在|于)(?P<b>.+?)的?"
               rf"(?P<rel>{_REL})(?P<tail>.{{0,12}})$"),
    re.compile(rf"^(?P<b>.+?)的?(?P<rel>{_REL})(?:有|是|站着|坐着|放着|挂着|躺着|飞着)(?P<a>.+)$"),
)
_BETWEEN_RE = re.compile(r"^(?P<a>.+?)(?:位于|在|处于)(?P<b>.+?)(?:和|与|跟)(?P<c>.+?)(?:之间|中间)$")


def negated(clause: str) -> bool:
    """'不要出现文字', '没有人': the first word says not to draw it ('无人机' is a drone)."""
    first = words(clause[:12])
    return bool(first) and first[0][0] in zh.NEGATIONS


def _relation_zh(parsed: ParsedPrompt, clause: str) -> bool:
    if _REGION_RES[0].search(clause):  # "一只狗在右下方": a place on the canvas, not "below 右"
        return False
    m = _BETWEEN_RE.match(clause)
    if m:
        objs = [parse_object_zh(m.group(k), lenient=True) for k in "abc"]
        if all(o is not None and not o.where for o in objs):
            a, b, c = (parsed.add(o) for o in objs if o is not None)
            parsed.relations.append(("between", a, [b, c]))
            return True
        return False
    for pattern in _REL_RES:
        m = pattern.match(clause)
        if not m or re.fullmatch(zh.CANVAS, m.group("b")):
            continue
        a, b = parse_object_zh(m.group("a"), lenient=True), parse_object_zh(m.group("b"), lenient=True)
        if a is None or b is None or a.where or b.where:
            continue
        tail = m.groupdict().get("tail") or ""
        if tail:
            a.detail = (a.detail + tail).strip()
        ia, ib = parsed.add(a), parsed.add(b)
        parsed.relations.append((zh.RELATION_WORDS[m.group("rel")], ia, [ib]))
        return True
    return False


# ------------------------------------------------------------------ one object phrase

_FILLERS = {"请", "请你", "帮我", "给我", "为我", "麻烦", "画", "绘制", "画出", "生成", "创建", "制作", "设计", "来",
            "渲染", "描绘", "展示", "添加", "加上", "放置", "插入", "画个", "有", "是", "画着", "放着", "出现",
            "一下", "帮忙", "你"}
_PICTURE_RE = re.compile(r"^(?:(?:一?[张幅个])?(?:图片|图像|插画|画|照片|海报|图标|图)(?:[：:，,]|里|中|上|内容是|"
                         r"画的是|上面是|里面是|有|是)+|(?:内容|画面|图中|画的|上面|里面)(?:是|为|有))")
_FRAMING_RE = re.compile(r"^(?:一?[张幅])?(?P<inner>.+?)的(?:照片|图片|图像|图|画|插画|特写|画像|肖像|素描)$")
_PLACE_HAS_RE = re.compile(r"^(?P<place>[^有是]{1,12}?(?:里|中|上|内|下|旁|边|前|后))(?:有|是)(?P<rest>.+)$")


def _is_nounish(w: str, f: str) -> bool:
    if f == "eng":
        return True
    if len(w) > 1 and any(m in w[1:] for m in zh.VERB_MARKS):  # "骑着马": a verb phrase
        return False
    if w in zh.VERB_CHARS or (len(w) > 1 and w[0] in zh.PREPOSITIONS and f in ("nr", "ns", "nz", "nrt")):
        return False
    return f[:1] in ("n", "t", "s", "j", "l", "b", "g", "z", "q") or f in ("vn", "an", "k", "i") or (
        f == "m" and count_phrase(w)[1] is not None and len(count_phrase(w)[4]) > 0)


def _split_np(ws: list[tuple[str, str]], counted: bool) -> tuple[str, list[tuple[str, str]], str]:
    """-> (modifier, head words, rest): '戴着红色围巾的小猫坐在窗台上' -> ('戴着红色围巾', [小猫],
    '坐在窗台上'). The head is the noun run after the last 的, up to the first verb or preposition.
    A word right after a measure word, or a word alone, is a noun whatever its class ('一朵花')."""
    verb_clause = len(ws) > 1 and (ws[1][1][:1] == "u" or any(w == "的" for w, _ in ws))  # "一只戴着…的猫"
    if ws and (counted and not verb_clause or len(ws) == 1) and ws[0][1][:1] not in ("p", "c", "u", "d", "r", "x",
                                                                                      "y", "e", "o"):
        ws = [(ws[0][0], "n"), *ws[1:]]
    last_de, seen, end = -1, False, len(ws)
    for k, (w, f) in enumerate(ws):
        if w == "的":
            last_de, seen = k, False
        elif _is_nounish(w, f):
            seen = True
        elif f == "f" and k + 1 < len(ws) and ws[k + 1][0] == "的":
            continue  # "夜空中的": a place that modifies the noun
        elif seen:
            end = k
            break
    head = ws[last_de + 1 : end]
    modifier = "".join(w for w, _ in ws[: max(last_de, 0)])
    rest = "".join(w if f != "eng" else f" {w} " for w, f in ws[end:]).strip()
    return modifier, head, rest


def parse_object_zh(chunk: str, *, lenient: bool = False) -> ParsedObject | None:
    """'左边三个红苹果' -> ParsedObject('苹果', 3, 'red', where='left', lang='zh', measure='个');
    None when the chunk does not read as an object phrase."""
    from .parse import ParsedObject, parse_object

    chunk = chunk.strip(" .!?:：。！？")
    if not chunk or zh.QUALITY.match(chunk) or negated(chunk):
        return None
    chunk, where = region_zh(chunk)
    chunk = _strip_fillers(chunk)
    framing = _FRAMING_RE.match(chunk)
    if framing:
        chunk = framing.group("inner")
    detail = ""
    place = _PLACE_HAS_RE.match(chunk)
    if place and count_phrase(place.group("place"))[1] is None:  # "公园里有两只狗"
        canvas = re.fullmatch(zh.CANVAS + "(?:里|中|上|内)?", place.group("place").removeprefix("在"))
        detail = "" if canvas else "在" + place.group("place").removeprefix("在")
        chunk = _strip_fillers(place.group("rest"))
    count, counted, measure, definite, chunk = count_phrase(chunk)
    if not chunk:
        return None
    modifier, head, rest = _split_np(words(chunk), measure is not None)
    if counted is None and head and head[0][1] == "m":  # "戴着围巾的一只猫", "一朵花" glued by jieba
        count, counted, measure, definite, first = count_phrase(head[0][0])
        head = ([(first, "n")] if first else []) + head[1:]
    size, colour, head = _adjectives(head)
    mods = modifier.split("的") if modifier else []  # "可爱的红色的小猫": colour and size words out
    for piece in list(mods):
        if colour is None and colour_name(piece):
            colour = colour_name(piece)
            mods.remove(piece)
        elif size is None and size_name(piece):
            size = size_name(piece)
            mods.remove(piece)
    modifier = "的".join(mods)
    while head and head[-1][1] == "f" and len(head) > 1:  # "树上": the place goes to the rest
        rest = head.pop()[0] + rest
    if head and head[-1][0] == "们" and len(head) > 1:  # 孩子们: plural
        head.pop()
        count = count if counted is not None else PLURAL_COUNT
    if not head or any(not _is_nounish(w, f) for w, f in head):
        return None
    noun = "".join(w if f != "eng" else f" {w} " for w, f in head).strip()
    noun = re.sub(r"\s+", " ", noun)
    if not has_han(noun):  # "一个red apple": the English words keep their own colour and size
        eng = parse_object(noun, lenient=True)
        if eng is None:
            return None
        noun, colour, size = eng.noun, colour or eng.colour, size or eng.size
    if noun in zh.META_NOUNS or colour_name(noun) or len(noun) > 24:
        return None
    if not (counted is not None or where or colour or size or lenient):
        return None
    detail = (detail + rest).strip()
    asked = counted if counted is not None and counted > MAX_COUNT else None
    return ParsedObject(noun, max(1, min(count, MAX_COUNT)), colour, size, where, detail,
                        definite or counted is None, asked, lang="zh", measure=measure or default_measure(noun),
                        modifier=modifier)


def default_measure(noun: str) -> str:
    """The measure word a noun usually takes ('狗' -> '只', '汽车' -> '辆'), '个' when none is known."""
    return next((zh.DEFAULT_MEASURES[e] for e in _MEASURE_ENDINGS if noun.endswith(e)), "个")


_MEASURE_ENDINGS = sorted(zh.DEFAULT_MEASURES, key=len, reverse=True)


def _strip_fillers(chunk: str) -> str:
    """'请画三只猫' -> '三只猫'; '画一张图片，内容是一只猫' parts -> '一只猫'."""
    while chunk:
        ws = words(chunk)
        if ws and ws[0][0] in _FILLERS and len(ws) > 1:
            chunk = chunk[chunk.index(ws[0][0]) + len(ws[0][0]):].strip()
            continue
        m = _PICTURE_RE.match(chunk)
        if m and m.end() < len(chunk) and m.group():
            chunk = chunk[m.end():].strip()
            continue
        return chunk
    return chunk


def _adjectives(head: list[tuple[str, str]]) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    """Size and colour words at the start of the noun run; a colour character on a noun ('白猫')
    is split off unless the noun is a word of its own ('白菜')."""
    size = colour = None
    head = list(head)
    while len(head) > 1 or (head and head[0][1] != "eng" and len(head[0][0]) > 1):
        w, f = head[0]
        if size is None and size_name(w):
            size = size_name(w)
        elif colour is None and colour_name(w) and len(head) > 1:
            colour = colour_name(w)
        elif (colour is None and w[0] in zh.COLOUR_PREFIXES and len(w) > 1 and w not in zh.LEXICAL
              and f != "eng" and not colour_name(w)):
            colour, head[0] = zh.COLOURS[w[0]], (w[1:], "n")
            break
        else:
            break
        head.pop(0)
    return size, colour, head
