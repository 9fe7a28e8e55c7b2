"""GET /files/{key}: the stored images behind the signed URLs the dialects return (§4.6).

The signature is checked before the file system is touched, so a key that was never signed
(traversal attempts included) is answered 403 without a lookup."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from ..core.files import StoredFile
from ..errors import NotFound
from .common import service_of

router = APIRouter(tags=["files"])

# A whole GET of a file up to this size is read by the handler's own worker thread and sent in
# one piece. Starlette's FileResponse hops to a worker thread and back to stat, open, read each
# chunk and close: 5 hops for a 1K result PNG, ~0.4 ms of interpreter-lock hand-over each on a
# busy 2-core machine. A 2K photo-like PNG is 8.2 MB; 4K ones (33 MB) are streamed in chunks.
WHOLE_READ_MAX_BYTES = 8 << 20


class ImageFileResponse(FileResponse):
    """FileResponse reading 1 MiB at a time, not 64 KiB: each read is a hop to a worker thread
    and back, so a large PNG is sent in few reads. Ranges, HEAD and validators stay
    FileResponse's own."""

    chunk_size = 1 << 20


@router.api_route("/files/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def get_file(
    request: Request,
    key: str,
    expires: str | None = Query(None, alias="Expires"),
    signature: str | None = Query(None, alias="Signature"),
) -> Response:
    """A result a worker here made moments ago (the GET that follows a sync answer) is answered
    on the event loop from the bytes kept in memory (core.files.RecentResults), after the
    signature check and a stat of the file just written; everything else in a worker thread."""
    files = service_of(request).files
    whole = request.method == "GET" and "range" not in request.headers
    recent = files.recent.get(key) if whole else None
    if recent is None:
        return await asyncio.to_thread(_stored_file, request, key, expires, signature)
    found = files.signed_file(key, expires, signature)
    return _whole_file(found, _headers(found), recent)


def _stored_file(request: Request, key: str, expires: str | None, signature: str | None) -> Response:
    found = service_of(request).files.signed_file(key, expires, signature)
    whole = (request.method == "GET" and "range" not in request.headers
             and found.stat.st_size <= WHOLE_READ_MAX_BYTES)
    if whole:
        return _whole_file(found, _headers(found))
    return ImageFileResponse(found.path, media_type=found.media_type, headers=_headers(found), stat_result=found.stat)


def _headers(found: StoredFile) -> dict[str, str]:
    return {"Cache-Control": f"private, max-age={found.max_age}", "X-Content-Type-Options": "nosniff"}


def _whole_file(found: StoredFile, headers: dict[str, str], data: bytes | None = None) -> Response:
    """The file in one read (or `data`, its bytes already in memory), with the validators
    FileResponse would send (an ETag from the modification time and size, Last-Modified) and
    Accept-Ranges, so a client that resumes or revalidates sees the same server either way."""
    reference = FileResponse(found.path, stat_result=found.stat)  # its headers only: nothing is read
    for name in ("etag", "last-modified", "accept-ranges"):
        headers[name] = reference.headers[name]
    if data is None:
        try:
            data = found.path.read_bytes()
        except FileNotFoundError:  # purged between the lookup and the read
            raise NotFound("no such file (it may have been purged)") from None
    return Response(data, media_type=found.media_type, headers=headers)
