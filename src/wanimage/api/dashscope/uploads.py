"""The dashscope SDK's upload flow for local files (`{"image": "file:///x.png"}`, api-spec §5.4).

1. GET /api/v1/uploads?action=getPolicy -> a policy this server signs (upload dir, expiry, size cap)
2. the SDK POSTs the file as multipart to `upload_host` with that policy, without Authorization
3. the SDK sends `oss://<key>`; the service resolves it from the image store (`uploads/<key>`)

The receiver accepts a file only with a policy it signed, unexpired, for a key inside the
policy's upload dir: the unauthenticated POST cannot write anywhere else.

An upload is usable for 48 h (`upload_ttl_seconds`, the official temporary-file lifetime) and,
with API keys configured, only by the key that asked for its policy: the upload dir
`dashscope-instant/<key id>/<day>/<uuid>` names that key, and the signature keeps it honest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from ...core.tenants import Tenant
from ...errors import AccessDenied, InvalidParameter, TooLarge
from ..common import base_url_of, require_api_key, service_of, tenant_of
from ..errors import request_id_of

POLICY_TTL_SECONDS = 3600
RECEIVER_PATH = "/api/v1/uploads/oss"
MAX_UPLOAD_MB = 20
UPLOAD_ROOT = "dashscope-instant"
NO_KEYS_OWNER = "public"  # the owner segment on a server without API keys

router = APIRouter(tags=["dashscope uploads"])


def _secret(request: Request) -> bytes:
    return request.app.state.upload_secret


def _sign(secret: bytes, policy: str) -> str:
    return base64.b64encode(hmac.new(secret, policy.encode(), hashlib.sha1).digest()).decode()


@router.get("/api/v1/uploads", dependencies=[Depends(require_api_key)])
async def get_policy(request: Request, action: str = "getPolicy", model: str = "") -> JSONResponse:
    """An upload policy for one upload directory, valid for an hour. The fields are in a top-level
    `data` object, as the official answer has them: the Java SDK reads only `data` (the Python SDK
    reads `data` or `output`). `output` carries them too, with `data` inside it, because the Java
    SDK from 2.22.27 on takes `output` as the result whenever a body has one."""
    if action != "getPolicy":
        raise InvalidParameter(f"action: {action!r} is not supported; use action=getPolicy", field="action")
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    upload_dir = f"{UPLOAD_ROOT}/{_owner_segment(tenant_of(request))}/{day}/{uuid.uuid4().hex}"
    expires = int(time.time()) + POLICY_TTL_SECONDS
    policy = base64.b64encode(
        json.dumps({"upload_dir": upload_dir, "expiration": expires, "max_mb": MAX_UPLOAD_MB}).encode()
    ).decode()
    data = {
        "policy": policy,
        "signature": _sign(_secret(request), policy),
        "upload_dir": upload_dir,
        "upload_host": base_url_of(request) + RECEIVER_PATH,
        "expire_in_seconds": POLICY_TTL_SECONDS,
        "max_file_size_mb": MAX_UPLOAD_MB,
        "capacity_limit_mb": MAX_UPLOAD_MB,
        "oss_access_key_id": "wanimage",
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
    }
    return JSONResponse({"request_id": request_id_of(request), "data": data, "output": {**data, "data": data}})


def _owner_segment(tenant: Tenant) -> str:
    return tenant.key_id or NO_KEYS_OWNER


def check_upload_owner(images: tuple[str, ...] | list[str], tenant: Tenant) -> None:
    """With API keys configured, an `oss://` upload is usable only by the key that uploaded it."""
    if tenant.key_id is None:
        return
    for k, ref in enumerate(images, start=1):
        if not isinstance(ref, str) or not ref.lower().startswith("oss://"):
            continue
        parts = ref[len("oss://") :].split("/")
        if len(parts) < 2 or parts[0] != UPLOAD_ROOT or parts[1] != tenant.key_id:
            raise InvalidParameter(
                f"image {k}: {ref} was not uploaded with this API key; upload the file again with it",
                field="image",
            )


@router.post(RECEIVER_PATH)
async def receive_upload(request: Request) -> JSONResponse:
    """The multipart POST of step 2 (no Authorization: the signed policy is the credential)."""
    form = await request.form()
    terms = _signed_terms(_secret(request), form.get("policy"), form.get("Signature"), form.get("key"))
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidParameter("upload: the file field is required", field="file")
    data = await upload.read(terms["max_mb"] * 1024 * 1024 + 1)
    if len(data) > terms["max_mb"] * 1024 * 1024:
        raise TooLarge(f"upload: files are limited to {terms['max_mb']} MB", field="file")
    await asyncio.to_thread(service_of(request).files.store_upload, terms["key"], data,
                            upload_dir=terms["upload_dir"], capacity_bytes=terms["max_mb"] * 1024 * 1024)
    return JSONResponse({"request_id": request_id_of(request)}, status_code=200)


def _signed_terms(secret: bytes, policy: object, signature: object, key: object) -> dict:
    """The terms of a policy this server signed, unexpired, with `key` inside its upload dir."""
    if not isinstance(policy, str) or not isinstance(signature, str) or not isinstance(key, str):
        raise AccessDenied("upload: policy, Signature and key are required", field="policy")
    if not hmac.compare_digest(_sign(secret, policy), signature):
        raise AccessDenied("upload: the policy signature does not match", field="Signature")
    try:
        terms = json.loads(base64.b64decode(policy))
    except ValueError:
        raise AccessDenied("upload: the policy is malformed", field="policy") from None
    if terms["expiration"] < time.time():
        raise AccessDenied("upload: the policy has expired; ask for a new one", field="policy")
    if not key.startswith(terms["upload_dir"] + "/") or ".." in key.split("/"):
        raise AccessDenied("upload: the key is outside the policy's upload directory", field="key")
    return {**terms, "key": key}
