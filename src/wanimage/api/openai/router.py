"""OpenAI Images routes: /v1/images/generations and /v1/images/edits, JSON or SSE."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

import pybase64
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import UploadFile

from ...core.following import TaskEvent
from ...core.request import GenerationRequest
from ...core.service import ImageService
from ...core.task import Origin, Task
from ...errors import ApiError, InvalidParameter
from ..common import require_api_key, service_of, tenant_of, url_for
from ..dashscope.uploads import check_upload_owner
from ..errors import openai_error_body
from . import protocol as wire
from .responses import ImagesResponse, StreamEvent

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], tags=["openai"])


@router.post("/images/generations", response_model=ImagesResponse)
async def generations(body: wire.GenerationsBody, request: Request):
    """Text-to-image (and reference images via `image` / `images`). Wan parameters are top-level
    fields (the SDK's `extra_body`). `stream: true` answers Server-Sent Events."""
    return await _run(request, body.to_request(service_of(request).served_ids), body.options(), kind="image_generation")


@router.post("/images/edits", response_model=ImagesResponse)
async def edits(request: Request):
    """Multipart edit: `image` (one file) or `image[]` (several), prompt, and Wan fields as form
    values (`bbox_list` / `color_palette` as JSON strings)."""
    form = await request.form()
    fields: dict[str, list[str]] = {}
    files: list[str] = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key in wire.IMAGE_FIELDS:
                data = await value.read()
                if not data:
                    raise InvalidParameter(f"image {len(files) + 1}: the uploaded file {value.filename or key!r} is "
                                           "empty; send the image's bytes", field="image")
                files.append(_data_uri(data))
            elif key == "mask":
                fields["mask"] = ["file"]  # refused by EditsBody.from_form
        else:
            fields.setdefault(key, []).append(value)
    body = wire.EditsBody.from_form(fields, files)
    return await _run(request, body.to_request(service_of(request).served_ids), body.options(), kind="image_edit")


def _data_uri(data: bytes) -> str:
    # The fetcher sniffs the real format from the bytes; the mime here is only a label.
    return "data:image/png;base64," + base64.b64encode(data).decode()


async def _run(request: Request, req: GenerationRequest, options: wire.Options, *, kind: str):
    service = service_of(request)
    check_upload_owner(req.images, tenant_of(request))  # an oss:// upload, as on the DashScope side
    if options.stream:
        task, events = await service.submit_and_follow(req, Origin.OPENAI, previews=options.partial_images > 0,
                                                        tenant=tenant_of(request))
        return StreamingResponse(
            _events(service, task, events, options, kind),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    task = await service.generate(req, Origin.OPENAI, tenant=tenant_of(request), hung_up=request.is_disconnected)
    assert task.result is not None
    if options.response_format == "b64_json":
        body = ImagesResponse.b64_json(task, int(time.time()), await _pngs(service, task.result.images))
    else:
        sign = url_for(request)
        body = ImagesResponse.of(task, int(time.time()), "url", [sign(k) for k in task.result.images]).render_json()
    return Response(body, media_type="application/json")


async def _pngs(service: ImageService, keys: list[str]) -> list[bytes]:
    """The result files: from memory when a worker here just made them (no thread hop), else read."""
    return [service.files.recent.get(k) or await asyncio.to_thread(service.files.image_bytes, k) for k in keys]


def _sse(data: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _b64(data: bytes) -> str:
    return pybase64.b64encode_as_string(data)


async def _events(
    service: ImageService, record: Task, events: AsyncIterator[TaskEvent], options: wire.Options, kind: str
) -> AsyncIterator[bytes]:
    """Partial images at evenly spaced steps (up to `partial_images`), then one `completed` per image."""
    created = int(time.time())
    sent = 0
    try:
        async for event in events:
            due = (sent + 1) / (options.partial_images + 1) * 100
            if sent < options.partial_images and event.previews and event.progress >= due:
                preview = event.previews[0]
                size = f"{preview.width}x{preview.height}"
                yield _sse(StreamEvent.partial(kind, _b64(service.preview_png(preview)), created=created, size=size, index=sent).render())
                sent += 1
        final = await service.finished(record.id)
        assert final.result is not None
        size = final.result.size.replace("*", "x")
        for key in final.result.images:
            (png,) = await _pngs(service, [key])
            b64 = _b64(png)
            event = StreamEvent.completed(kind, b64, created=created, size=size, revised_prompt=final.result.revised_prompt)
            yield _sse(event.render())
    except ApiError as exc:
        yield _sse(openai_error_body(exc), event="error")
    except (asyncio.CancelledError, GeneratorExit):  # the client hung up mid-stream
        service.abandon(record.id)
        raise
