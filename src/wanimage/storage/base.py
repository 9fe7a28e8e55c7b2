"""The ImageStore contract: what the service, the workers and the upload receiver ask of a store.

Two stores satisfy it: LocalImageStore (a directory, URLs served by wanimage's own /files route)
and S3ImageStore (an S3-compatible bucket, URLs presigned for the store itself). Keys are relative
paths of plain segments (`validate_key`), the same in both, e.g. `results/2026-11-25/<uuid>.png`."""

from __future__ import annotations

import mimetypes
import time
import uuid
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from wanimage.storage.local import validate_key


@runtime_checkable
class ImageStore(Protocol):
    def put(self, data: bytes, *, prefix: str, suffix: str = ".png") -> str:
        """Store `data` under a fresh key `<prefix>/<UTC date>/<uuid><suffix>`; return the key."""
        ...

    def put_named(self, key: str, data: bytes) -> None:
        """Store `data` at a chosen key (inputs, uploads), replacing any object there."""
        ...

    def read(self, key: str) -> bytes:
        """The object's bytes; NotFound when there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def signed_url(self, key: str, base_url: str) -> str:
        """A URL that fetches `key` without other credentials, valid for the store's TTL.
        `base_url` is wanimage's own public URL; a store that serves itself ignores it."""
        ...

    def purge_older_than(self, seconds: float) -> int:
        """Delete objects older than `seconds`; return how many."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the directory `prefix`; return how many."""
        ...


def new_key(prefix: str, suffix: str = ".png", now: float | None = None) -> str:
    """`<prefix>/<UTC date>/<uuid><suffix>`: the key layout both stores use for fresh objects."""
    day = datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y-%m-%d")
    return validate_key(f"{prefix.strip('/')}/{day}/{uuid.uuid4().hex}{suffix}")


def content_type(key: str) -> str:
    """The media type of a stored object, from its suffix (`.png` -> image/png)."""
    return mimetypes.guess_type(key, strict=False)[0] or "application/octet-stream"
