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

from wanimage.errors import InvalidParameter

MAX_KEY_CHARS = 1024


class InvalidKey(InvalidParameter):
    """A storage key that could leave the store's root or name a hidden (temporary) file."""


def validate_key(key: str) -> str:
    """Return `key` when it is a safe relative path of plain segments; raise InvalidKey otherwise.

    Refused: empty, absolute, backslash, NUL or other control characters, empty segments, and
    any segment starting with "." (which covers "." and ".." and our own ".tmp" files)."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise InvalidKey("storage key is empty or too long", field="key")
    if key.startswith("/") or "\\" in key or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise InvalidKey(
            "storage key must be a relative path without control characters", field="key"
        )
    for segment in key.split("/"):
        if not segment or segment.startswith(".") or len(segment.encode()) > 255:
            raise InvalidKey(f"storage key has an invalid segment: {segment!r}", field="key")
    return key


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

    def modified_at(self, key: str) -> float:
        """When the object was last written (epoch seconds); NotFound when there is none."""
        ...

    def purge_older_than(
        self, seconds: float, now: float | None = None, *, prefix: str = "", skip: tuple[str, ...] = ()
    ) -> int:
        """Delete objects older than `seconds` (at `now`, default the current time) under the
        directory `prefix` (default: all), except under the `skip` directories; return how many."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the directory `prefix`; return how many."""
        ...

    def usage(self, prefix: str) -> tuple[int, int]:
        """(objects, bytes) under the directory `prefix`: an upload policy's capacity check."""
        ...


def new_key(prefix: str, suffix: str = ".png", now: float | None = None) -> str:
    """`<prefix>/<UTC date>/<uuid><suffix>`: the key layout both stores use for fresh objects."""
    day = datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y-%m-%d")
    return validate_key(f"{prefix.strip('/')}/{day}/{uuid.uuid4().hex}{suffix}")


def content_type(key: str) -> str:
    """The media type of a stored object, from its suffix (`.png` -> image/png)."""
    return mimetypes.guess_type(key, strict=False)[0] or "application/octet-stream"
