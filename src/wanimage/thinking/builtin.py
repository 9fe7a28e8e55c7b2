"""The built-in planner: prompt -> scene plan -> revised prompt + layout, in the prompt's language
(a Chinese prompt's plan is said in Chinese: thinking/chinese.py). Plain rules,
offline, no model. Deterministic: the same prompt and size give the same plan.

  "three red apples on the left and a cat above a dog, on a blue background"
    objects   3 x red apple (left), cat (above the dog), dog
    revised   "Three red apples on the left, one cat above the dog and one dog in the
               bottom-right corner, on a blue background. Five objects in total."
    layout    3 boxes in the left half, one box top right, one box bottom right (output pixels)

Steps (`plan_text`): 1. parse the prompt with the one prompt parser (wanimage.prompts: style,
background, objects "[count] [size] [colour] noun [position] [detail]", relations "A above B",
kept text); 2. place the objects (thinking/layout.py: absolute positions, then relations, then
the rest in the free space); 3. spell the plan out."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from ..prompts import (
    PAIRED,
    REGIONS,
    ParsedPrompt,
    count_word,
    parse,
    plural_phrase,
    share_counts,
    split_set,
)
from ..prompts.chinese import has_han, to_traditional
from .base import Brief, Plan, PlannedObject
from .chinese import revise_zh
from .layout import MAX_INSTANCES, Placed, layout

log = logging.getLogger(__name__)

__all__ = ["MAX_INSTANCES", "BuiltinPlanner", "plan_set", "plan_text"]

REGION_WORDS = {"left": "on the left", "right": "on the right", "top": "at the top",
                "bottom": "at the bottom", "center": "in the center"}


def frozen(p: Placed) -> PlannedObject:
    o = p.obj
    return PlannedObject(o.noun, o.count, o.colour, o.size, o.where, "; ".join(p.relations) or None, o.detail)


def describe(p: Placed) -> str:
    obj = p.obj
    noun = plural_phrase(obj.noun) if obj.count > 1 else obj.noun
    if obj.noun.split()[-1].lower() in PAIRED:  # "one pair of glasses", not "one glasses"
        noun = ("pairs of " if obj.count > 1 else "pair of ") + obj.noun
    words = [count_word(obj.count), obj.size, obj.colour, noun]
    text = " ".join(w for w in words if w)
    if obj.asked is not None:  # capped: the plan says what is drawn and what was asked
        text += f" (of {count_word(obj.asked)} asked)"
    if obj.detail:
        text += " " + obj.detail
    if obj.where:
        text += " " + REGION_WORDS.get(obj.where, f"in the {obj.where.replace(' ', '-')} corner")
    elif p.region is not None and not p.relations:
        named = next((REGION_WORDS.get(k, f"in the {k.replace(' ', '-')} corner")
                      for k, r in REGIONS.items() if r == p.region and k != "whole"), None)
        if named:
            text += " " + named
    for rel in p.relations:
        text += " " + rel
    return text


def revise(placed: list[Placed], background: str | None, style: str | None, kept: list[str],
           left_out: tuple[str, ...] = ()) -> str:
    parts = [describe(p) for p in placed]
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    text = text[:1].upper() + text[1:]
    if background:
        text += f", on a {background} background"
    if style:
        text += f", {style}" + ("" if re.search(r"\b(?:style|art|painting|render|sketch)\b", style, re.I)
                                else " style")
    if kept:
        text += ", " + ", ".join(kept)
    text += "."
    total = sum(p.obj.count for p in placed)
    if len(placed) > 1:
        text += f" {count_word(total).capitalize()} objects in total."
    if any(p.obj.asked is not None for p in placed) or left_out:
        text += f" At most {count_word(MAX_INSTANCES)} objects are drawn in one picture"
        text += f"; not drawn: {', '.join(left_out)}." if left_out else "."
    return text


def cap_counts(parsed: ParsedPrompt) -> tuple[str, ...]:
    """Share MAX_INSTANCES fairly between the objects (in place: each capped object keeps the
    number asked in `asked`); -> the labels of objects that get no instance at all."""
    counts = share_counts([o.asked or o.count for o in parsed.objects], MAX_INSTANCES)
    for o, c in zip(parsed.objects, counts, strict=True):
        if c < (o.asked or o.count):
            o.asked, o.count = o.asked or o.count, max(c, 1)
    left_out = tuple(o.label for o, c in zip(parsed.objects, counts, strict=True) if c == 0)
    if left_out:
        keep = [k for k, c in enumerate(counts) if c > 0]
        renumber = {old: new for new, old in enumerate(keep)}
        parsed.objects = [parsed.objects[k] for k in keep]
        parsed.relations = [(kind, renumber[a], [renumber[b] for b in bs]) for kind, a, bs in parsed.relations
                            if a in renumber and all(b in renumber for b in bs)]
    return left_out


def plan_text(prompt: str, width: int, height: int, *, planner: str = "builtin") -> Plan:
    """One image: the whole plan of `prompt` for a width x height output."""
    parsed = parse(prompt)
    if not parsed.objects:  # nothing to lay out: the prompt as given
        return Plan(prompt, None, planner, background=parsed.background, style=parsed.style,
                    kept=tuple(parsed.kept))
    left_out = cap_counts(parsed)
    placed, items = layout(parsed, width, height)
    if parsed.lang == "en":
        revised = revise(placed, parsed.background, parsed.style, parsed.kept, left_out)
    else:
        revised = revise_zh(placed, parsed.background, parsed.style, parsed.kept, left_out, MAX_INSTANCES, describe)
        revised = to_traditional(revised) if parsed.lang == "zh-Hant" else revised
    return Plan(
        revised,
        items,
        planner,
        objects=tuple(frozen(p) for p in placed),
        background=parsed.background,
        style=parsed.style,
        kept=tuple(parsed.kept),
    )


def plan_set(prompt: str, n: int, width: int, height: int) -> Plan:
    """Image sets: one plan per 'image k:' part, with the shared context in each."""
    shared, parts = split_set(prompt, n)
    if not parts:
        one = plan_text(prompt, width, height)
        return replace(one, images=(one,))
    zh = has_han(prompt)
    plans = tuple(plan_text(("，" if zh else ", ").join(p for p in (part, shared) if p), width, height)
                  for part in parts)
    if zh:  # "图1：一只猫。图2：一只狗。"
        revised = "".join(f"图{k}：{p.revised_prompt}" for k, p in enumerate(plans, start=1))
    else:
        revised = " ".join(f"Image {k}: {p.revised_prompt}" for k, p in enumerate(plans, start=1))
    return Plan(revised, None, "builtin", images=plans, kept=(shared,) if shared else ())


class BuiltinPlanner:
    name = "builtin"

    def plan(self, brief: Brief) -> Plan:
        try:
            if brief.sequential:
                return plan_set(brief.prompt, brief.n, brief.width, brief.height)
            return plan_text(brief.prompt, brief.width, brief.height)
        except Exception as exc:  # a rule bug must not fail the task: draw the prompt as given
            log.exception("thinking: built-in planner failed; using the prompt as given")
            return Plan(brief.prompt, None, self.name, note=f"built-in planner error: {exc}")
