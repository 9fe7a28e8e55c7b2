"""What both dialects share at the edge: the service accessor, API-key auth, base URLs, and the
mapping from a failed task to the error a sync caller receives."""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import Request

from ..core.service import ImageService
from ..core.tenants import ANYONE, Tenant, key_id
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


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def matches(token: str, keys: set[str]) -> bool:
    """Constant-time membership: every key is compared, so timing tells nothing."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(token.encode(), key.encode())
    return found


async def require_api_key(request: Request) -> None:
    """With API keys configured, every call needs `Authorization: Bearer <key>`; the caller's
    tenant (its key id, an admin or not) is left in `request.state.tenant` (`tenant_of`)."""
    keys: set[str] = request.app.state.api_keys
    if not keys:
        request.state.tenant = ANYONE
        return
    token = bearer_token(request)
    if token is None:
        raise InvalidApiKey("No API-key provided.", field="authorization")
    if not matches(token, keys):
        raise InvalidApiKey("Invalid API-key provided.", field="authorization")
    request.state.tenant = Tenant(key_id(token), admin=matches(token, request.app.state.admin_keys))


def tenant_of(request: Request) -> Tenant:
    """The caller's tenant, set by `require_api_key` (ANYONE on a server without keys)."""
    return getattr(request.state, "tenant", ANYONE)


_FAILED_STATUS = {
    "InvalidParameter": 400,
    "DataInspectionFailed": 400,
    "Canceled": 409,
    "ModelUnavailable": 503,
    "StorageFull": 507,
}


def failed_task_error(record: TaskRecord) -> ApiError:
    """A sync request whose task FAILED (or was CANCELED) answers a non-200 with its code."""
    code = record.code or "InternalError"
    status = next((s for prefix, s in _FAILED_STATUS.items() if code.startswith(prefix)), 500)
    if status == 507:  # space may come back: the same request can be sent again later
        return ApiError(record.message or "storage is full", status=507, code=code, retry_after=30)
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
