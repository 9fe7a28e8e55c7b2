"""GET /files/{key}: the stored images behind the signed URLs the dialects return (§4.6).

The signature is checked before the file system is touched, so a key that was never signed
(traversal attempts included) is answered 403 without a lookup."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from wanimage.errors import NotFound
from wanimage.storage import InvalidKey, LocalImageStore
from wanimage.storage.base import content_type


def files_router(store: LocalImageStore) -> APIRouter:
    router = APIRouter(tags=["files"])

    @router.api_route("/files/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def get_file(
        key: str,
        expires: str | None = Query(None, alias="Expires"),
        signature: str | None = Query(None, alias="Signature"),
    ) -> FileResponse:
        expiry = store.verify(key, expires, signature)
        try:
            path = store.path(key)
        except InvalidKey:
            raise NotFound("no such file") from None
        if not path.is_file():
            raise NotFound("no such file (it may have been purged)")
        max_age = max(0, min(store.ttl_seconds, expiry - int(time.time())))
        media_type = content_type(key)
        return FileResponse(
            path,
            media_type=media_type,
            headers={
                "Cache-Control": f"private, max-age={max_age}",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return router
