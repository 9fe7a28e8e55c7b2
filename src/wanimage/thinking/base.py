"""The Planner protocol: thinking mode's step between validation and the engine.

A planner reads a Brief (the validated prompt and the output size) and returns a Plan: the revised prompt
(what the engine draws and what the API returns), optionally a layout (one labelled box per
planned object, in output pixels, for engines with `Capabilities.layout`), and for image sets
one plan per image. Planners never raise for a bad prompt or a bad backend: they fall back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..types import LayoutItem


@dataclass(frozen=True)
class Brief:
    """What a planner reads: the prompt, the output size, for image sets the image count, and
    thinking_mode's effort ("fast": no LLM call; "quality": the LLM is given longer)."""

    prompt: str
    width: int
    height: int
    n: int = 1
    sequential: bool = False
    effort: str = "balanced"


@dataclass(frozen=True)
class PlannedObject:
    """One object of the scene plan, as the built-in planner understood it."""

    noun: str  # singular head noun with its adjectives, e.g. "apple", "fluffy cat"
    count: int = 1
    colour: str | None = None  # a colour word, e.g. "red"
    size: str | None = None  # "big" | "small" | None
    where: str | None = None  # a region name: "left", "top left", "center", ...
    relation: str | None = None  # e.g. "above a dog", spelled out in the revised prompt
    detail: str = ""  # words about the object the planner keeps but does not model

    @property
    def label(self) -> str:
        """The short phrase an object-level engine draws, one instance: 'a red apple'."""
        words = " ".join(w for w in (self.colour, self.noun) if w)
        return ("an " if words[:1] in "aeiou" else "a ") + words


@dataclass(frozen=True)
class Plan:
    revised_prompt: str
    layout: list[LayoutItem] | None = None  # boxes in output pixels; None: no layout planned
    planner: str = "builtin"  # which planner produced this plan: "builtin" | "llm"
    objects: tuple[PlannedObject, ...] = ()
    background: str | None = None  # e.g. "blue", "a starry night sky"
    style: str | None = None  # e.g. "watercolor"
    kept: tuple[str, ...] = ()  # text the planner did not understand, kept in the prompt
    images: tuple[Plan, ...] = ()  # image sets: one plan per image, in story order
    note: str = ""  # why this planner ran (e.g. the LLM's failure that caused a fallback)

    @property
    def image_prompts(self) -> list[str]:
        return [p.revised_prompt for p in self.images]


@runtime_checkable
class Planner(Protocol):
    name: str

    def plan(self, brief: Brief) -> Plan:
        """Plan `brief.prompt` for an output of brief.width x brief.height pixels. Never raises
        for bad input."""
        ...
