"""What both dialects share at the edge: the service accessor, API-key auth, base URLs, and the
mapping from a failed task to the error a sync caller receives."""

from __future__ import annotations

import hmac

from fastapi import Request

from ..core.service import ImageService
from ..errors import ApiError, InvalidApiKey
from ..tasks.records import TaskRecord


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
