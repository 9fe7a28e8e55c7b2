"""`POST /api/v1/verify` (a wanimage extension, docs/api.md): the provenance marks of uploaded
images, as `wanimage verify --json` prints them. Multipart, one or more parts named `file`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..core.provenance.verify import verify_bytes
from ..errors import InvalidParameter
from .common import require_api_key, service_of

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)], tags=["wanimage"])
MAX_FILES = 16


@router.post("/verify")
async def verify(request: Request) -> JSONResponse:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidParameter("send the images as multipart/form-data, each in a part named 'file'", field="file")
    form = await request.form(max_files=MAX_FILES)
    uploads = [value for key, value in form.multi_items() if key == "file" and hasattr(value, "read")]
    if not uploads:
        raise InvalidParameter("no image: add one or more multipart parts named 'file'", field="file")
    settings = service_of(request).settings
    anchors = settings.provenance_c2pa_trust_anchors
    trust = anchors.read_bytes() if anchors else None
    results = []
    for upload in uploads:
        data = await upload.read()
        report = await asyncio.to_thread(verify_bytes, data, upload.filename or "file", trust_anchors=trust)
        results.append(report.to_dict(settings.provenance_producer))
    return JSONResponse({"results": results, "wanimage_mark": all(r["wanimage_mark"] for r in results)})
