"""What both dialects share at the edge: the service accessor, API-key auth, base URLs, and the
mapping from a failed task to the error a sync caller receives."""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import Request

from ..core.service import ImageService
from ..errors import ApiError, InvalidApiKey
from ..tasks.records import TaskRecord

log = logging.getLogger(__name__)
DISCONNECT_POLL_SECONDS = 0.5


def service_of(request: Request) -> ImageService:
    return request.app.state.service


def base_url_of(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def url_for(request: Request):
    service, base = service_of(request), base_url_of(request)
    return lambda key: service.image_url(key, base)


async def require_api_key(request: Request) -> None:
    """With API keys configured, every call needs `Authorization: Bearer <key>`."""
    keys: set[str] = request.app.state.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("No API-key provided.", field="authorization")
    token = token.strip()
    if not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
        raise InvalidApiKey("Invalid API-key provided.", field="authorization")


_FAILED_STATUS = {
    "InvalidParameter": 400,
    "DataInspectionFailed": 400,
    "Canceled": 409,
    "ModelUnavailable": 503,
}


def failed_task_error(record: TaskRecord) -> ApiError:
    """A sync request whose task FAILED (or was CANCELED) answers a non-200 with its code."""
    code = record.code or "InternalError"
    status = next((s for prefix, s in _FAILED_STATUS.items() if code.startswith(prefix)), 500)
    return ApiError(record.message or "generation failed", status=status, code=code, should_retry=False if status >= 500 else None)


def cancel_abandoned(service: ImageService, task_id: str) -> None:
    """The client of a sync or streaming request hung up before its task ended: nobody is left to
    receive the images (those requests never tell the task id), so stop spending the engine on it.
    Synchronous on purpose: it runs while the request's own coroutine is being cancelled."""
    try:
        record = service.cancel(task_id)
    except ApiError:  # it ended meanwhile: nothing to stop
        return
    if record is not None:
        log.info("task %s: the client went away before the end; task %s", task_id, record.status.value)


async def wait_while_connected(request: Request, task_id: str) -> TaskRecord:
    """A sync request's wait for its task; if the client disconnects first, the task is canceled."""
    service = service_of(request)
    waiting = asyncio.ensure_future(service.wait(task_id))
    try:
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                return waiting.result()
            if await request.is_disconnected():
                cancel_abandoned(service, task_id)
                raise ApiError("the client closed the connection; the task was canceled",
                               status=499, code="Canceled")
    finally:
        waiting.cancel()
