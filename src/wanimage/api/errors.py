"""One error envelope per dialect, and the exception handlers that make even framework errors
(unknown path, malformed JSON, an unexpected bug) leave in that shape, with no stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ApiError, InternalError, InvalidParameter
from .dashscope import sse

log = logging.getLogger(__name__)

OPENAI_PREFIX = "/v1/"


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", "")


def is_openai(request: Request) -> bool:
    return request.url.path.startswith(OPENAI_PREFIX)


def error_headers(exc: ApiError) -> dict[str, str]:
    headers = {}
    if exc.retry_after is not None or exc.status in (429, 503):
        headers["retry-after"] = str(exc.retry_after or 5)
    should_retry = exc.should_retry
    if should_retry is None and exc.status >= 500 and exc.status not in (503, 504):
        should_retry = False
    if should_retry is not None:
        headers["x-should-retry"] = "true" if should_retry else "false"
    return headers


def dashscope_error_body(exc: ApiError, request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "code": exc.code, "message": exc.message}


def openai_error_body(exc: ApiError) -> dict[str, Any]:
    kind = "invalid_request_error" if exc.status < 500 else "server_error"
    if exc.status == 401:
        kind = "authentication_error"
    elif exc.status == 429:
        kind = "rate_limit_error"
    return {"error": {"message": exc.message, "type": kind, "param": exc.field, "code": exc.code}}


def render_error(request: Request, exc: ApiError) -> Response:
    if is_openai(request):
        return JSONResponse(openai_error_body(exc), status_code=exc.status, headers=error_headers(exc))
    body = dashscope_error_body(exc, request_id_of(request))
    if sse.wants_sse(request.headers):  # a streaming DashScope caller reads errors as an SSE frame
        return Response(sse.error_frame(1, body, exc.status), status_code=exc.status, media_type=sse.MEDIA_TYPE,
                        headers=error_headers(exc))
    return JSONResponse(body, status_code=exc.status, headers=error_headers(exc))


def _validation_to_api_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    if not errors:
        return InvalidParameter("the request is invalid")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or "body"
    if first.get("type") == "json_invalid":
        return InvalidParameter("the request body is not valid JSON", field="body")
    return InvalidParameter(f"{field}: {first.get('msg', 'invalid value')}", field=loc[-1] if loc else "body")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return render_error(request, _validation_to_api_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.__cause__, ApiError):
            # FastAPI wraps any exception raised while it reads a JSON body into a 400 "There
            # was an error parsing the body"; the body-size limit raises TooLarge from
            # receive() for chunked bodies (no Content-Length), which must stay a 413.
            return render_error(request, exc.__cause__)
        if exc.status_code == 404:
            err = ApiError(f"no such endpoint: {request.method} {request.url.path}"
                           + _did_you_mean(request), status=404, code="InvalidURL")
        elif exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            err = ApiError(f"method {request.method} is not allowed on {request.url.path}"
                           + (f"; use {allow}" if allow else ""), status=405, code="InvalidURL")
        else:
            err = ApiError(str(exc.detail), status=exc.status_code, code="BadRequest")
        response = render_error(request, err)
        if exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return render_error(request, InternalError("internal error; the server log has the details", should_retry=False))

    # Starlette runs an `Exception` handler in its outermost ServerErrorMiddleware: outside the
    # request-id middleware (the 500 had no x-request-id header) and it re-raises afterwards,
    # so uvicorn dropped the keep-alive connection. Catching here, innermost of the user
    # middlewares (create_app adds the request-context middleware after this), fixes both;
    # the handler above stays as the last resort.
    app.add_middleware(_UnexpectedErrorMiddleware)


# A client whose base URL lacks (or doubles) the API prefix calls a real endpoint under the wrong
# one; the 404 names the endpoint it meant and where each dialect lives.
_API_PREFIXES = ("/api/v1", "/v1")


def _did_you_mean(request: Request) -> str:
    path = request.url.path
    core = path
    for prefix in ("/api/v1", "/api", "/v1"):
        if core.startswith(prefix + "/"):
            core = core[len(prefix):]
            break
    for prefix in _API_PREFIXES:
        meant = prefix + core
        if meant == path:
            continue
        scope = {**request.scope, "path": meant}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            return (f"; did you mean {request.method} {meant}? The client's base URL ends in /api/v1 "
                        "for the DashScope API, /v1 for the OpenAI one")
    return ""


class _UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:  # a response (a stream) is under way: nothing clean can be sent now
                raise
            request = Request(scope, receive)
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            error = InternalError("internal error; the server log has the details", should_retry=False)
            await render_error(request, error)(scope, receive, send)


# ------------------------------------------------------------------ OpenAPI: the real answers

_ERROR_SCHEMAS = {
    "DashScopeError": {
        "type": "object",
        "required": ["request_id", "code", "message"],
        "properties": {"request_id": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
    },
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                           "param": {"type": ["string", "null"]}, "code": {"type": "string"}},
        }},
    },
}
_EVERY_ROUTE = {400: "a parameter is invalid; the message names it", 401: "no API key, or a wrong one",
                404: "no such endpoint", 500: "an internal error (never caused by the request)",
                503: "the task database or a model is unavailable; retry"}
_POSTS = {403: "the asynchronous path without X-DashScope-Async: enable, or an upload outside its policy",
          413: "the body is larger than WANIMAGE_MAX_BODY_BYTES",
          429: "the queue is full or the decode budget is spent; retry after Retry-After",
          504: "a sync request outlived WANIMAGE_SYNC_TIMEOUT_SECONDS", 507: "the server's storage is full"}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents 200 and a 422 it never sends (validation errors leave as 400): list the
    statuses the server really answers, each with its dialect's error envelope."""
    schema.setdefault("components", {}).setdefault("schemas", {}).update(_ERROR_SCHEMAS)
    for path, operations in schema.get("paths", {}).items():
        ref = {"$ref": "#/components/schemas/" + ("OpenAIError" if path.startswith(OPENAI_PREFIX) else "DashScopeError")}
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            statuses = {**_EVERY_ROUTE, **(_POSTS if method == "post" else {})}
            for status, description in statuses.items():
                responses.setdefault(str(status), {"description": description,
                                                   "content": {"application/json": {"schema": ref}}})
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)
    return schema
