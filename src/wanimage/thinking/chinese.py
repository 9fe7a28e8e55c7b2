"""The built-in planner's Chinese wording: a Chinese prompt's plan said in Chinese, with the count,
layout and style written out as the English wording does ("a red apple" -> "One red apple.";
"一个红苹果" -> "一个红色的苹果。"). Objects read from English clauses of a mixed prompt keep their
English wording, and English nouns stay English inside a Chinese phrase ("两只cat")."""

from __future__ import annotations

from collections.abc import Callable

from ..prompts import REGIONS
from ..prompts.vocabulary import zh_colour
from ..prompts.zh_words import STYLE_SELF_NAMED
from .layout import Placed

REGION_ZH = {"left": "画面左侧", "right": "画面右侧", "top": "画面上方", "bottom": "画面下方", "center": "画面中央",
             "top left": "画面左上角", "top right": "画面右上角", "bottom left": "画面左下角",
             "bottom right": "画面右下角"}
SIZE_ZH = {"big": "大", "small": "小"}
_DIGITS = "零一二三四五六七八九"


def number_zh(n: int, *, counting: bool = True) -> str:
    """12 -> '十二'; 2 -> '两' before a measure word (counting), else '二'; 100 and more in digits."""
    if n == 2 and counting:
        return "两"
    if 0 <= n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    return str(n)


def describe_zh(p: Placed) -> str:
    """One placed object: '三个红色的苹果，位于画面左侧'."""
    obj = p.obj
    measure = obj.measure or "个"
    text = number_zh(obj.count) + measure
    if obj.modifier:
        text += obj.modifier + "的"
    if obj.colour:
        text += zh_colour(obj.colour) + "的"
    text += SIZE_ZH.get(obj.size or "", "") + obj.noun
    if obj.asked is not None:
        text += f"（要求{number_zh(obj.asked)}{measure}）"
    text += obj.detail
    where = obj.where
    if where is None and p.region is not None and not p.relations:
        where = next((k for k, r in REGIONS.items() if r == p.region and k != "whole"), None)
    if where:
        text += "，位于" + REGION_ZH.get(where, where)
    for rel in p.relations:
        text += "，" + rel
    return text


def revise_zh(placed: list[Placed], background: str | None, style: str | None, kept: list[str],
              left_out: tuple[str, ...], max_instances: int, describe_en: Callable[[Placed], str]) -> str:
    parts = [describe_zh(p) if p.obj.lang == "zh" else describe_en(p) for p in placed]
    text = "；".join(parts)
    text = text[:1].upper() + text[1:]
    if background:
        text += f"，背景为{zh_colour(background)}"
    if style:
        text += f"，{style}" + ("" if style.endswith(STYLE_SELF_NAMED) else "风格")
    if kept:
        text += "，" + "，".join(kept)
    text += "。"
    if len(placed) > 1:
        text += f"共{number_zh(sum(p.obj.count for p in placed))}个物体。"
    if any(p.obj.asked is not None for p in placed) or left_out:
        text += f"一张图最多画{number_zh(max_instances)}个物体"
        text += f"；未画：{'、'.join(left_out)}。" if left_out else "。"
    return text
