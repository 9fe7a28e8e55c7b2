"""Image-set prompts ("image 1: ... image 2: ...") and edit prompts: which images a prompt
refers to, which it takes content from, and what it asks (remove, replace, recolour, move)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import zh_words as zh
from .chinese import colour_description, split_conjunctions, zh_int
from .vocabulary import POSITION_WORDS, has_han, region_name

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

# Chinese: "图1：…", "第二张：…", "第一张是…"; "1. … 2. …" lists; "分别是猫、狗和鸟".
_ZH_NUM = r"\d{1,2}|[一二两三四五六七八九十]{1,3}"
_ZH_SET_RE = re.compile(rf"(?:^|(?<=[\s。；;，,.!！?？]))(?:图片|图像|画面|图|第)\s*({_ZH_NUM})\s*(?:张|幅|格|个)?"
                        r"(?:图片|图像|画面|图)?\s*(?:[:：]|是|为|画的是|画)\s*")
_ZH_LIST_RE = re.compile(r"(?:^|(?<=[\s。；;，,]))(\d{1,2})\s*[.、．)）](?!\d)\s*")
_ZH_EACH_RE = re.compile(r"分别(?:是|为|画着?|展示|描绘|绘制|表现)?[:：]?")
_ZH_SET_FILLER_RE = re.compile(rf"^(?:请)?(?:帮我)?(?:生成|画|创作|做|制作|绘制|来)?(?:{_ZH_NUM})?[张幅]?"
                               r"|的?(?:图片|图像|插画|画|图)$")
_ZH_REF_RE = re.compile(rf"(?:图片|图像|照片|图)\s*({_ZH_NUM})(?![\d张幅])|第({_ZH_NUM})[张幅](?:图片|图像|照片|图)?")
_ZH_REMOVE_RE = re.compile(r"删除|删掉|去掉|去除|移除|擦除|抹掉|消除|拿掉|清除|抹去|擦掉")
_ZH_TARGET_RE = re.compile(r"(?:替换成|替换为|换成|换为|改成|改为|变成|变为|转换成|转换为|转变为|变换成)(?P<t>[^。；;，,]+)")
_ZH_WITH_RE = re.compile(r"用(?P<t>[^。；;，,]+?)(?:替换|代替|取代)")
_ZH_BG_RE = re.compile(r"背景(?:颜色|色)?(?:换成|改成|变成|替换成|替换为|改为|换为|变为|设为|设置为|涂成)(?P<d>[^。；;，,]+)")
_ZH_MOVE_RE = re.compile(r"移动|移到|挪到|挪动|移至|平移|拖到|搬到|挪至|移向|拖动")
_ZH_MOVE_TO_RE = re.compile(r"(?:移|挪|拖|搬|放)动?(?:到|至|向)(?:画面|图片|图)?的?(?P<r>"
                            + "|".join(sorted(zh.REGION_WORDS, key=len, reverse=True)) + ")")
_ZH_PUT_RE = re.compile(r"放|贴|移|挪|搬|拿|取|复制|粘|加|添|插入|转移|交换|换到|融合|合成")
_ZH_DESTINATION_RE = re.compile(r"(?:到|进|入|至|在|给|往|向)\s*$")


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
        return _split_set_zh(prompt, n) if has_han(prompt) else (prompt.strip(), [])
    per: dict[int, str] = {}
    for k in range(1, len(parts) - 1, 2):
        per[int(parts[k])] = parts[k + 1].strip(" .,;")
    return parts[0].strip(" .,;"), [per.get(i, "") for i in range(1, min(max(per), n) + 1)]


def _split_set_zh(prompt: str, n: int) -> tuple[str, list[str]]:
    """'水彩风格。第一张：一只猫；第二张：一只狗' -> ('水彩风格', ['一只猫', '一只狗']); '1. 猫 2. 狗';
    '三张图，分别是猫、狗和鸟，水彩风格' -> ('水彩风格', ['猫', '狗', '鸟'])."""
    strip = " .,;。，；、"
    for pattern in (_ZH_SET_RE, _ZH_LIST_RE):
        parts = pattern.split(prompt)
        if len(parts) >= 5 or (len(parts) == 3 and pattern is _ZH_SET_RE):
            per: dict[int, str] = {}
            for k in range(1, len(parts) - 1, 2):
                number = zh_int(parts[k])
                if number:
                    per.setdefault(number, parts[k + 1].strip(strip))
            if per and min(per) == 1:
                return parts[0].strip(strip), [per.get(i, "") for i in range(1, min(max(per), n) + 1)]
    each = _ZH_EACH_RE.search(prompt)
    if each:
        rest = prompt[each.end():]
        end = re.search(r"[。；;，,]", rest)
        listed, after = (rest[: end.start()], rest[end.end():]) if end else (rest, "")
        items = [q.strip(strip) for p in listed.split("、") for q in split_conjunctions(p) if q.strip(strip)]
        before = _ZH_SET_FILLER_RE.sub("", prompt[: each.start()].strip(strip)).strip(strip)
        shared = "，".join(p for p in (before, after.strip(strip)) if p)
        if len(items) > 1:
            return shared, items[:n]
    return prompt.strip(), []


def set_prompts(prompt: str, n: int) -> list[str]:
    """One prompt per image: each part with the shared context after it; a plain prompt repeats
    n times. 'flat style. Image 1: a cat image 2: a dog', 1 -> ['a cat, flat style']."""
    shared, parts = split_set(prompt, n)
    if not parts:
        return [prompt] * n
    comma = "，" if has_han(prompt) else ", "
    return [comma.join(p for p in (part, shared) if p) or prompt for part in parts]


def image_refs(prompt: str) -> list[int]:
    """'put the cat of image 1 into picture 2' -> [1, 2]; '把图1的猫放到第二张图里' -> [1, 2]."""
    if has_han(prompt):
        return [k for _, k in _refs(prompt)]
    return [int(k) for k in _IMAGE_REF_RE.findall(prompt)]


def _refs(text: str) -> list[tuple[re.Match[str], int]]:
    """Image references of a text with Chinese, in order: English and Chinese ones."""
    found = [(m, int(m.group(1))) for m in _IMAGE_REF_RE.finditer(text)]
    found += [(m, zh_int(m.group(1) or m.group(2)) or 0) for m in _ZH_REF_RE.finditer(text)]
    return [(m, k) for m, k in sorted(found, key=lambda f: f[0].start()) if k > 0]


def source_images(prompt: str) -> list[int]:
    """The input images whose content an edit brings into the picture: 'put the cat of image 1
    into the box of image 2' -> [1]; 'put a balloon in the box of image 1' -> [] (image 1 is
    where, not what). Per clause with a put / move verb: a reference right after "in / into /
    onto (the box of)" is a destination; with several references the last destination is where
    things go and every other reference is a source."""
    if has_han(prompt):
        return _source_images_zh(prompt)
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


def _source_images_zh(prompt: str) -> list[int]:
    """'把图1的猫放到图2的框里' -> [1]: a reference right after 到 / 进 / 在 / 给 is where things go."""
    sources: list[int] = []
    for clause in re.split(r"[;；。]|\.(?:\s|$)", prompt):
        refs = _refs(clause)
        if not refs or not (_ZH_PUT_RE.search(clause) or _PUT_RE.search(clause)):
            continue
        destination = [bool(_ZH_DESTINATION_RE.search(clause[: m.start()]) or _DESTINATION_RE.search(clause[: m.start()]))
                       for m, _ in refs]
        last = max((k for k, d in enumerate(destination) if d), default=None)
        sources += [n for k, (_, n) in enumerate(refs)
                    if (not destination[k] if len(refs) == 1 or last is None else k != last) and n not in sources]
    return sources


def parse_edit(prompt: str) -> EditIntent:
    if has_han(prompt):
        return _parse_edit_zh(prompt)
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


def _parse_edit_zh(prompt: str) -> EditIntent:
    """'把猫换成一只狗' -> target '一只狗'; '把背景换成蓝色' -> background 'blue'; '把猫移到左上角'."""
    target = _ZH_WITH_RE.search(prompt) or _ZH_TARGET_RE.search(prompt)
    background = _ZH_BG_RE.search(prompt)
    place = _ZH_MOVE_TO_RE.search(prompt)
    desc = background.group("d").strip() if background else None
    return EditIntent(
        remove=bool(_ZH_REMOVE_RE.search(prompt)),
        target=target.group("t").strip() if target else None,
        background=(colour_description(desc) or desc) if desc else None,
        move=bool(_ZH_MOVE_RE.search(prompt)),
        move_to=region_name(zh.REGION_WORDS[place.group("r")]) if place else None,
        image_refs=tuple(image_refs(prompt)),
        sources=tuple(_source_images_zh(prompt)),
    )
