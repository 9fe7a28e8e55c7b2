"""GET /files/{key}: the stored images behind the signed URLs the dialects return (§4.6).

The signature is checked before the file system is touched, so a key that was never signed
(traversal attempts included) is answered 403 without a lookup."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from .common import service_of

router = APIRouter(tags=["files"])


class ImageFileResponse(FileResponse):
    """FileResponse reading 1 MiB at a time, not 64 KiB: each read is a hop to a worker thread
    and back, so a 2 MB result PNG is sent in 2 reads instead of 32 (GET of a 1K photo-like
    PNG over loopback, median of 25 side by side under load: 26.8 ms at 64 KiB, 20.2 at 1 MiB,
    23.1 at 4 MiB). Ranges, HEAD and validators stay FileResponse's own."""

    chunk_size = 1 << 20


@router.api_route("/files/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
def get_file(
    request: Request,
    key: str,
    expires: str | None = Query(None, alias="Expires"),
    signature: str | None = Query(None, alias="Signature"),
) -> FileResponse:
    found = service_of(request).files.signed_file(key, expires, signature)
    return ImageFileResponse(
        found.path,
        media_type=found.media_type,
        headers={
            "Cache-Control": f"private, max-age={found.max_age}",
            "X-Content-Type-Options": "nosniff",
        },
    )
