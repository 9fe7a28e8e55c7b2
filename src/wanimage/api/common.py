"""What both dialects share at the edge: the service accessor, API-key auth, base URLs."""

from __future__ import annotations

import hmac
import logging

from fastapi import Request

from ..core.service import ImageService
from ..core.tenants import ANYONE, Tenant, key_id
from ..errors import InvalidApiKey

log = logging.getLogger(__name__)


def service_of(request: Request) -> ImageService:
    return request.app.state.service


def base_url_of(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def url_for(request: Request):
    service, base = service_of(request), base_url_of(request)
    return lambda key: service.files.image_url(key, base)


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
