"""Pure ASGI middleware (it must not buffer streaming responses): a request id on every request
and response, the body-size limit (413), request metrics, and the key gate in front of the
documentation and metrics routes FastAPI and the app add without the API's key dependency."""

from __future__ import annotations

import ipaddress
import time
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidApiKey, TooLarge
from ..metrics import Metrics
from .common import bearer_token, matches
from .errors import render_error


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await self._too_large(scope, receive, send_with_id)
        else:
            received = 0

            async def counted_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise TooLarge(self._message(), field="body")
                return message

            await self.app(scope, counted_receive, send_with_id)
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        self.metrics.observe_request(scope["method"], path, status_holder["status"], time.perf_counter() - started)

    def _message(self) -> str:
        return (
            f"the request body is larger than {_human_size(self.max_body_bytes)} "
            "(WANIMAGE_MAX_BODY_BYTES); send images by URL or smaller"
        )

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = render_error(Request(scope, receive), TooLarge(self._message(), field="body"))
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _human_size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n / 1024:g} KiB"


GATED_PATHS = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
METRICS_PATH = "/metrics"


class KeyGate:
    """With API keys configured, /openapi.json, /docs and /metrics need a key like every API route.
    /metrics also opens to `metrics_allow` (addresses or networks, e.g. a Prometheus host) and to
    `metrics_token` (a scraper's own bearer token, good for nothing else)."""

    def __init__(self, app: ASGIApp, *, keys: set[str], metrics_allow: str = "", metrics_token: str = "") -> None:
        self.app = app
        self.keys = keys
        self.metrics_networks = [ipaddress.ip_network(a.strip(), strict=False)
                                 for a in metrics_allow.split(",") if a.strip()]
        self.metrics_token = metrics_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.keys or (path not in GATED_PATHS and path != METRICS_PATH):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        token = bearer_token(request)
        allowed = token is not None and matches(token, self.keys)
        if path == METRICS_PATH and not allowed:
            allowed = self._scraper(request, token)
        if allowed:
            await self.app(scope, receive, send)
            return
        message = "No API-key provided." if token is None else "Invalid API-key provided."
        await render_error(request, InvalidApiKey(message, field="authorization"))(scope, receive, send)

    def _scraper(self, request: Request, token: str | None) -> bool:
        if self.metrics_token and token is not None and matches(token, {self.metrics_token}):
            return True
        try:
            client = ipaddress.ip_address(request.client.host) if request.client else None
        except ValueError:
            return False
        return client is not None and any(client in net for net in self.metrics_networks)
