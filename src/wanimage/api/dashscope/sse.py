"""Server-Sent Events in DashScope's framing, for the sync endpoint asked with
`X-DashScope-SSE: enable` or `Accept: text/event-stream` (the SDKs' `stream=True`, Java's
`streamCall`). One frame:

    id:3
    event:result
    :HTTP_STATUS/200
    data:{"output": {...}, "usage": {...}, "request_id": "..."}

Progress frames carry the task's status and progress (no images); the last `result` frame is the
non-streaming answer. An error is one `event:error` frame with the error body; its status is in
`:HTTP_STATUS/NNN` (a comment line, as the official service writes it) and in `status:NNN`, the
field the Python SDK's reader takes it from (other SSE readers ignore a field they do not know).
Pure: no FastAPI, no service."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MEDIA_TYPE = "text/event-stream"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def wants_sse(headers: Mapping[str, str]) -> bool:
    """What the SDKs send for `stream=True`: either header alone is enough."""
    return headers.get("x-dashscope-sse", "").strip().lower() == "enable" or MEDIA_TYPE in headers.get(
        "accept", ""
    ).lower()


def frame(number: int, body: dict[str, Any], *, status: int = 200, event: str = "result") -> bytes:
    lines = [f"id:{number}", f"event:{event}", f":HTTP_STATUS/{status}"]
    if event == "error":
        lines.append(f"status:{status}")
    lines.append("data:" + json.dumps(body, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def error_frame(number: int, body: dict[str, Any], status: int) -> bytes:
    return frame(number, body, status=status, event="error")
