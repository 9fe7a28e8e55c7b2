"""DashScope routes: each handler converts the wire body, calls the service once, renders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from datetime import datetime

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ...core.following import TaskEvent
from ...core.request import GenerationRequest
from ...core.service import ImageService
from ...core.task import Origin
from ...errors import AccessDenied, ApiError, InvalidParameter
from ...types import TaskStatus
from ..common import require_api_key, service_of, tenant_of, url_for
from ..errors import dashscope_error_body, request_id_of
from . import protocol as wire
from . import sse
from .responses import GenerationResponse, TaskListResponse, TaskResponse, UrlFor
from .uploads import check_upload_owner

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)], tags=["dashscope"])


@router.post("/services/aigc/multimodal-generation/generation", response_model=GenerationResponse)
async def generate(body: wire.GenerationBody, request: Request) -> Response:
    """Synchronous generation or edit: answers when the images are ready. With `X-DashScope-SSE:
    enable` or `Accept: text/event-stream`, Server-Sent Events: progress frames, then the same
    answer as a `result` frame. A client that disconnects before the end cancels the task."""
    tenant, service = tenant_of(request), service_of(request)
    req = body.to_request(service.served_ids)
    check_upload_owner(req.images, tenant)
    if sse.wants_sse(request.headers):
        task, events = await service.submit_and_follow(req, Origin.GENERATION, tenant=tenant)
        frames = _frames(service, task.id, events, request_id_of(request), url_for(request))
        return StreamingResponse(frames, media_type=sse.MEDIA_TYPE, headers=sse.STREAM_HEADERS)
    task = await service.generate(req, Origin.GENERATION, tenant=tenant, hung_up=request.is_disconnected)
    return JSONResponse(GenerationResponse.answer(task, request_id_of(request), url_for(request)).render())


async def _frames(
    service: ImageService, task_id: str, events: AsyncIterator[TaskEvent], request_id: str, sign: UrlFor
) -> AsyncIterator[bytes]:
    """One frame per new progress value, then the final answer or an error frame."""
    number = 0
    try:
        async with aclosing(service.follow_progress(task_id, events)) as progress_values:
            async for progress in progress_values:
                number += 1
                yield sse.frame(number, GenerationResponse.progress(task_id, progress, request_id).render())
        task = await service.finished(task_id)
        yield sse.frame(number + 1, GenerationResponse.answer(task, request_id, sign).render())
    except ApiError as exc:
        yield sse.error_frame(number + 1, dashscope_error_body(exc, request_id), exc.status)
    except (asyncio.CancelledError, GeneratorExit):  # the client hung up mid-stream
        service.abandon(task_id)
        raise


async def _submit_async(
    request: Request, async_header: str | None, build: Callable[[tuple[str, ...]], GenerationRequest],
    origin: Origin
) -> JSONResponse:
    if (async_header or "").lower() != "enable":
        raise AccessDenied(
            "current user api does not support synchronous calls; send the header X-DashScope-Async: enable",
            field="X-DashScope-Async",
        )
    req = build(service_of(request).served_ids)
    check_upload_owner(req.images, tenant_of(request))
    record = await service_of(request).submit(req, origin, tenant=tenant_of(request))
    return JSONResponse(GenerationResponse.submitted(record, request_id_of(request)).render())


@router.post("/services/aigc/image-generation/generation", response_model=GenerationResponse)
async def generate_async(
    body: wire.GenerationBody,
    request: Request,
    x_dashscope_async: str | None = Header(default=None),
) -> JSONResponse:
    """Asynchronous task creation; poll GET /api/v1/tasks/{task_id}."""
    return await _submit_async(request, x_dashscope_async, body.to_request, Origin.GENERATION)


@router.post("/services/aigc/text2image/image-synthesis", response_model=GenerationResponse)
async def image_synthesis(
    body: wire.SynthesisBody,
    request: Request,
    x_dashscope_async: str | None = Header(default=None),
) -> JSONResponse:
    """Legacy task (`input.prompt`; reference images in `input.ref_img` / `input.images`), used by
    ImageSynthesis (Python 1.x, Java) and the SDK's v2 client."""
    return await _submit_async(request, x_dashscope_async, body.to_request, Origin.SYNTHESIS)


@router.get("/tasks/{task_id}", response_model=TaskResponse)
@router.get("/tasks/{task_id}/", include_in_schema=False)
async def get_task(task_id: str, request: Request) -> JSONResponse:
    """Task status and results. Unknown or expired ids answer 200 with UNKNOWN."""
    record = await asyncio.to_thread(service_of(request).get, task_id, tenant_of(request))
    if record is None:
        return JSONResponse(TaskResponse.unknown(task_id, request_id_of(request)).render())
    return JSONResponse(TaskResponse.of(record, request_id_of(request), url_for(request)).render())


@router.post("/tasks/{task_id}/cancel", response_model=TaskResponse)
@router.post("/tasks/{task_id}/cancel/", include_in_schema=False)
async def cancel_task(task_id: str, request: Request) -> JSONResponse:
    """Cancel: PENDING tasks end CANCELED at once; RUNNING tasks stop at the next step (extension).
    Any body (the async client sends JSON, the sync one nothing) is ignored."""
    record = await asyncio.to_thread(service_of(request).cancel, task_id, tenant_of(request))
    if record is None:
        return JSONResponse(TaskResponse.unknown(task_id, request_id_of(request)).render())
    return JSONResponse(TaskResponse.of(record, request_id_of(request), url_for(request)).render())


def _time_param(name: str, value: str | None) -> float | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(value, fmt).timestamp()
        except ValueError:
            continue
    raise InvalidParameter(f"{name}: {value!r} is not a time; use YYYY-MM-DD HH:MM:SS", field=name)


def _status_param(status: str | None) -> TaskStatus | None:
    try:
        return TaskStatus(status.upper()) if status else None
    except ValueError:
        raise InvalidParameter(
            f"status: {status!r} is not a task status; use one of {', '.join(s.value for s in TaskStatus)}",
            field="status",
        ) from None


@router.get("/tasks", response_model=TaskListResponse)
@router.get("/tasks/", include_in_schema=False)
async def list_tasks(
    request: Request,
    page_no: int = Query(1, ge=1, le=1_000_000),
    page_size: int = Query(10, ge=1, le=100),
    status: str | None = None,
    model_name: str | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
) -> JSONResponse:
    """Tasks of the last 24 h, newest first, in both shapes: `tasks[]` and the Java SDK's `data[]`
    (`{tasks, data, page_no, page_size, total, total_page}`)."""
    page = await asyncio.to_thread(
        service_of(request).list,
        page_no=page_no,
        page_size=page_size,
        status=_status_param(status),
        model=model_name,
        start_time=_time_param("start_time", start_time),
        end_time=_time_param("end_time", end_time),
        tenant=tenant_of(request),
    )
    body = TaskListResponse.of(page.tasks, page.total, page_no, page_size, request_id_of(request), url_for(request))
    return JSONResponse(body.render())
