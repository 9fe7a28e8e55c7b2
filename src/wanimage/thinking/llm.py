"""The LLM rewriter: any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, a hosted
API) plans the picture. It answers JSON {revised_prompt, layout?}, validated against a schema;
boxes a little outside the image are clamped, boxes mostly outside refuse the whole answer.

Nothing here fails a task: a timeout, an HTTP error, a 500, malformed JSON or a bad layout gives
the built-in planner's plan, and the log says which planner ran and why."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import replace

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..llm_chat import LlmFailure, chat, chat_url
from ..prompts.parse import is_chinese
from ..types import Box, LayoutItem
from .base import Brief, Plan, Planner

log = logging.getLogger(__name__)

MAX_LAYOUT_ITEMS = 32
MIN_INSIDE = 0.5  # a box with less than half its area inside the image is refused, not clamped
# thinking_mode="quality" waits this many times the configured timeout before falling back: a
# slow (reasoning) model then gets to answer instead of the built-in planner.
QUALITY_PATIENCE = 3.0

SYSTEM_PROMPT = """You plan pictures for an image generator before it draws them.
Rewrite the user's prompt into one precise prompt that spells out every object with its exact
count, colour, size and position, the background and the style; keep every detail of the
original. Write it in the language of the user's prompt: a Chinese prompt gets a Chinese
revised prompt (in Traditional characters when the prompt is written in them), an English
prompt an English one, and a prompt that mixes Chinese and English keeps its mix (its English
words stay English). Then lay the objects out: one box per object instance, in pixel
coordinates of the output image (origin top-left, x to the right, y down), each inside the image.
Answer with ONE JSON object and nothing else:
{"revised_prompt": "...", "layout": [{"label": "a red apple", "box": [x1, y1, x2, y2]}]}
"layout" may be omitted when the picture has no countable objects. Labels are short noun
phrases for one instance, in the prompt's language ("a red apple" or "一个红苹果", not "three
red apples")."""
# Said again beside a Chinese prompt: small models follow the last instruction they read.
CHINESE_HINT = "The prompt is Chinese: write revised_prompt and the labels in Chinese.\n"


class LlmLayoutItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: str = Field(min_length=1, max_length=200)
    box: tuple[float, float, float, float]


class LlmAnswer(BaseModel):
    """The JSON the LLM must answer."""

    model_config = ConfigDict(extra="ignore")
    revised_prompt: str = Field(min_length=1, max_length=5000)
    layout: list[LlmLayoutItem] | None = Field(default=None, max_length=MAX_LAYOUT_ITEMS)


def pixel_layout(items: list[LlmLayoutItem], width: int, height: int) -> list[LayoutItem]:
    """Boxes -> output pixels. All coordinates within [0, 1] are read as fractions of the image.
    A box slightly outside is clamped; an empty, inverted or mostly-outside box raises."""
    coords = [v for it in items for v in it.box]
    fractions = bool(coords) and all(0.0 <= v <= 1.0 for v in coords) and max(width, height) > 1
    out = []
    for it in items:
        x1, y1, x2, y2 = (v * s for v, s in zip(it.box, (width, height, width, height), strict=True)) \
            if fractions else it.box
        if not (x2 > x1 and y2 > y1):
            raise LlmFailure(f"bad layout: box {list(it.box)} of {it.label!r} is empty or inverted")
        cx1, cy1, cx2, cy2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
        inside = max(0.0, cx2 - cx1) * max(0.0, cy2 - cy1) / ((x2 - x1) * (y2 - y1))
        if inside < MIN_INSIDE:
            raise LlmFailure(
                f"bad layout: box {list(it.box)} of {it.label!r} lies outside the {width}x{height} image"
            )
        bx1, by1 = int(round(cx1)), int(round(cy1))
        bx2, by2 = max(bx1 + 1, int(round(cx2))), max(by1 + 1, int(round(cy2)))
        out.append(LayoutItem(it.label.strip(), Box(bx1, by1, min(bx2, width), min(by2, height))))
    return out


def parse_answer(content: str) -> LlmAnswer:
    """The assistant message -> LlmAnswer; tolerates code fences, <think> blocks, prose around."""
    text = re.sub(r"<think>.*?</think>", "", content or "", flags=re.S).strip()
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text).strip()
    try:
        data = json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except ValueError:
            data = None
        if data is None:
            raise LlmFailure(f"malformed JSON in the answer: {text[:80]!r}") from None
    try:
        return LlmAnswer.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise LlmFailure(f"answer does not match the schema: {where}: {first['msg']}") from None


class LlmPlanner:
    name = "llm"

    def __init__(self, url: str, model: str, key: str | None, timeout: float, fallback: Planner) -> None:
        self.url, self.model, self.timeout = chat_url(url), model, timeout
        self.fallback = fallback
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers, trust_env=False)

    def plan(self, brief: Brief) -> Plan:
        if brief.sequential or brief.effort == "fast":  # sets and "fast": the built-in planner
            return self.fallback.plan(brief)
        started = time.monotonic()
        timeout = self.timeout * (QUALITY_PATIENCE if brief.effort == "quality" else 1.0)
        try:
            answer = self.ask(brief.prompt, brief.width, brief.height, timeout)
            layout = pixel_layout(answer.layout, brief.width, brief.height) if answer.layout else None
        except LlmFailure as exc:
            return self._fall_back(brief, str(exc))
        except Exception as exc:  # whatever else: still never fail the task
            return self._fall_back(brief, f"unexpected error: {type(exc).__name__}: {exc}")
        log.info("thinking: planner=llm (%s at %s) in %.2fs, %d layout boxes",
                 self.model, self.url, time.monotonic() - started, len(layout or []))
        return Plan(answer.revised_prompt.strip(), layout or None, self.name)

    def _fall_back(self, brief: Brief, reason: str) -> Plan:
        log.warning("thinking: LLM rewriter at %s failed (%s); planner=builtin runs instead", self.url, reason)
        plan = self.fallback.plan(brief)
        return replace(plan, note=f"llm fallback: {reason}")

    def ask(self, prompt: str, width: int, height: int, timeout: float | None = None) -> LlmAnswer:
        timeout = timeout or self.timeout
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Image size: {width}x{height} pixels.\n"
                                        + (CHINESE_HINT if is_chinese(prompt) else "") + f"Prompt: {prompt}"},
        ]
        content = chat(self.url, self.model, messages, timeout=timeout, client=self.client)
        return parse_answer(content)

    def close(self) -> None:
        self.client.close()
