"""Thinking mode: plan the picture before drawing it (docs/thinking.md).

  base.py     Planner protocol, Plan, PlannedObject
  builtin.py  offline rule-based English planner (the default): parse (wanimage.prompts) -> revise
  layout.py   the built-in planner's placement: regions, relations, one box per instance
  llm.py      OpenAI-compatible chat rewriter, falling back to the built-in planner"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .base import Brief, Plan, PlannedObject, Planner
from .builtin import BuiltinPlanner
from .llm import LlmPlanner

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

__all__ = ["Brief", "BuiltinPlanner", "LlmPlanner", "Plan", "PlannedObject", "Planner", "build_planner"]


def build_planner(settings: Settings) -> Planner:
    """The LLM rewriter when `thinking_llm_url` is set, else the built-in planner."""
    builtin = BuiltinPlanner()
    if not settings.thinking_llm_url:
        return builtin
    log.info("thinking mode: LLM rewriter %s at %s (timeout %g s), built-in planner as fallback",
             settings.thinking_llm_model or "(default model)", settings.thinking_llm_url,
             settings.thinking_llm_timeout_seconds)
    return LlmPlanner(
        settings.thinking_llm_url,
        settings.thinking_llm_model,
        settings.thinking_llm_key.get_secret_value() if settings.thinking_llm_key else None,
        settings.thinking_llm_timeout_seconds,
        fallback=builtin,
    )
