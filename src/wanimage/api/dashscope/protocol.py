"""The DashScope wire format (api-spec.md §1-§2, §8): request bodies -> GenerationRequest, and
task records -> response bodies. Pure: no FastAPI, no service."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from ...core.request import (
    IGNORED_PARAMETERS,
    GenerationRequest,
    build_request,
    log_ignored_parameters,
)
from ...errors import EmptyInput, InvalidParameter
from ...tasks.records import Origin, TaskRecord, TaskStatus, format_time

log = logging.getLogger(__name__)

# Parameters of the Wan 2.7 request, in the order of the spec.
PARAMETERS = (
    "size",
    "n",
    "enable_sequential",
    "thinking_mode",
    "bbox_list",
    "color_palette",
    "watermark",
    "seed",
)
CONTENT_KEYS = {"text", "image", "type"}

UrlFor = Callable[[str], str]  # image-store key -> signed URL


# ------------------------------------------------------------------ request bodies (for the docs)


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = "user"
    content: list[dict[str, Any]] | str


class GenerationInput(BaseModel):
    model_config = ConfigDict(extra="allow")
    messages: list[Message] | None = None


class GenerationBody(BaseModel):
    """POST /services/aigc/multimodal-generation/generation and .../image-generation/generation."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    input: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None


class SynthesisBody(BaseModel):
    """POST /services/aigc/text2image/image-synthesis (legacy; `input.prompt`)."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    input: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None


# ------------------------------------------------------------------ body -> GenerationRequest


def _parameters(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidParameter("parameters: must be an object", field="parameters")
    log_ignored_parameters(raw, set(PARAMETERS) | {"is_async"})
    return {k: raw[k] for k in PARAMETERS if k in raw}


def _content(input_: Any) -> tuple[str | None, list[str]]:
    if not isinstance(input_, dict) or not input_:
        raise EmptyInput("input: the input object with messages is required", field="input")
    messages = input_.get("messages")
    if not isinstance(messages, list) or len(messages) != 1:
        count = len(messages) if isinstance(messages, list) else "no"
        raise InvalidParameter(
            f"messages: {count} messages sent; send exactly one message with role \"user\"", field="messages"
        )
    message = messages[0]
    if not isinstance(message, dict) or message.get("role", "user") != "user":
        raise InvalidParameter('messages: the message must have role "user"', field="messages")
    content = message.get("content")
    if isinstance(content, str):  # a plain string is the prompt
        return content, []
    if not isinstance(content, list) or not content:
        raise InvalidParameter(
            'content: must be a non-empty list of {"text": ...} and {"image": ...} items', field="content"
        )
    texts, images = [], []
    for i, item in enumerate(content, start=1):
        if not isinstance(item, dict) or not (set(item) & {"text", "image"}) or set(item) - CONTENT_KEYS:
            raise InvalidParameter(
                f'content: item {i} must be {{"text": "..."}} or {{"image": "..."}}, got {_preview(item)}',
                field="content",
            )
        if "text" in item and "image" in item:
            raise InvalidParameter(f"content: item {i} has both text and image; split it in two", field="content")
        if "text" in item:
            texts.append(item["text"])
        else:
            images.append(item["image"])
    if len(texts) > 1:
        raise InvalidParameter(
            f"content: {len(texts)} text items sent; put the whole prompt in one text item", field="content"
        )
    return (texts[0] if texts else None), images


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def to_request(body: GenerationBody) -> GenerationRequest:
    prompt, images = _content(body.input)
    return build_request(model=body.model, prompt=prompt, images=images, **_parameters(body.parameters))


def synthesis_to_request(body: SynthesisBody) -> GenerationRequest:
    """Legacy image-synthesis: `input.prompt`; the SDK drops reference images on this path."""
    input_ = body.input
    if not isinstance(input_, dict) or not input_:
        raise EmptyInput("input: the input object with a prompt is required", field="input")
    for key in input_:
        if key in IGNORED_PARAMETERS or key not in ("prompt",):
            log.info("image-synthesis input %r ignored", key)
    params = _parameters(body.parameters)
    return build_request(model=body.model, prompt=input_.get("prompt"), **params)


# ------------------------------------------------------------------ records -> response bodies


def _choices(record: TaskRecord, url_for: UrlFor) -> list[dict[str, Any]]:
    result = record.result
    assert result is not None
    items = [{"image": url_for(key), "type": "image"} for key in result.images]
    if result.sequential:  # an image set is one choice with every image, in story order
        groups = [items]
    else:  # n independent images: one choice each
        groups = [[item] for item in items]
    if result.planner and groups:  # thinking ran: its revised prompt as a text item (api-spec §4.2)
        groups[0] = [*groups[0], {"type": "text", "text": result.revised_prompt}]
    return [
        {"finish_reason": "stop", "message": {"role": "assistant", "content": content}} for content in groups
    ]


def usage(record: TaskRecord) -> dict[str, Any]:
    result = record.result
    assert result is not None
    # Tokens are informational upstream and not billed; this server does not count them.
    return {
        "image_count": len(result.images),
        "size": result.size,
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
    }


def sync_response(record: TaskRecord, request_id: str, url_for: UrlFor) -> dict[str, Any]:
    return {
        "output": {"choices": _choices(record, url_for), "finished": True},
        "usage": usage(record),
        "request_id": request_id,
    }


def submitted_response(record: TaskRecord, request_id: str) -> dict[str, Any]:
    return {"output": {"task_id": record.id, "task_status": record.status.value}, "request_id": request_id}


def unknown_task_response(task_id: str, request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "output": {"task_id": task_id, "task_status": TaskStatus.UNKNOWN.value}}


def task_output(record: TaskRecord, url_for: UrlFor) -> dict[str, Any]:
    output: dict[str, Any] = {
        "task_id": record.id,
        "task_status": record.status.value,
        "submit_time": format_time(record.submit_time),
    }
    if record.scheduled_time is not None:
        output["scheduled_time"] = format_time(record.scheduled_time)
    if record.end_time is not None:
        output["end_time"] = format_time(record.end_time)
    if record.status is TaskStatus.RUNNING:
        output["progress"] = record.progress  # wanimage extension: 0-100
        if record.cancel_requested:
            output["cancel_requested"] = True
    if record.status.terminal:
        output["finished"] = True
    if record.status is TaskStatus.SUCCEEDED and record.result:
        output["choices"] = _choices(record, url_for)
        if record.origin is Origin.SYNTHESIS:  # what ImageSynthesis (1.x) reads
            output["results"] = [
                {"url": url_for(key), "orig_prompt": record.result.prompt, "actual_prompt": record.result.revised_prompt}
                for key in record.result.images
            ]
            n = len(record.result.images)
            output["task_metrics"] = {"TOTAL": n, "SUCCEEDED": n, "FAILED": 0}
    if record.status in (TaskStatus.FAILED, TaskStatus.CANCELED) and record.code:
        output["code"] = record.code
        output["message"] = record.message or ""
    return output


def task_response(record: TaskRecord, request_id: str, url_for: UrlFor) -> dict[str, Any]:
    body: dict[str, Any] = {"request_id": request_id, "output": task_output(record, url_for)}
    if record.status is TaskStatus.SUCCEEDED and record.result:
        body["usage"] = usage(record)
    return body


def task_list_response(
    records: list[TaskRecord], total: int, page_no: int, page_size: int, request_id: str, url_for: UrlFor
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "page_no": page_no,
        "page_size": page_size,
        "total": total,
        "tasks": [{**task_output(r, url_for), "model": r.model} for r in records],
    }
