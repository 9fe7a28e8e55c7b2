"""The image store as route handlers see it, through the service: signed URLs and the files
behind them, result bytes, and the dashscope SDK's uploads (`oss://KEY`)."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ApiError, NotFound, TooLarge
from ..storage import ImageStore, LocalImageStore
from ..storage.base import InvalidKey, content_type

UPLOAD_PREFIX = "uploads/"


@dataclass(frozen=True)
class StoredFile:
    path: Path
    media_type: str
    max_age: int  # seconds a client may cache it: never past its URL's expiry
    stat: os.stat_result  # taken with the lookup, so the response need not stat the file again


class RecentResults:
    """The newest result PNGs, kept in memory for a short while after a worker here stored them:
    the sync answer that follows (its b64_json, or the GET of its URL a few milliseconds later)
    takes them from here, with no read of the file and no thread hop. Bounded in bytes and age.
    The stored file stays the truth: a GET answers from here only once it found the file."""

    def __init__(self, max_bytes: int = 32 << 20, max_age: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes, self.max_age, self.clock = max_bytes, max_age, clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # oldest first
        self._bytes = 0
        self._lock = threading.Lock()  # added to by worker threads, read by the event loop

    def add(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            now = self.clock()
            _, replaced = self._items.pop(key, (0.0, b""))  # a key stored again is counted once
            self._items[key] = (now, data)
            self._bytes += len(data) - len(replaced)
            while self._bytes > self.max_bytes or now - next(iter(self._items.values()))[0] > self.max_age:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
        if item is None or self.clock() - item[0] > self.max_age:
            return None
        return item[1]


class Files:
    def __init__(self, images: ImageStore, *, public_base_url: str | None = None,
                 upload_ttl_seconds: float = 48 * 3600) -> None:
        self.images = images
        self.public_base_url = public_base_url
        self.upload_ttl_seconds = upload_ttl_seconds
        self.recent = RecentResults()

    def image_url(self, key: str, base_url: str) -> str:
        return self.images.signed_url(key, self.public_base_url or base_url)

    def image_bytes(self, key: str) -> bytes:
        return self.recent.get(key) or self.images.read(key)

    @property
    def serves_files(self) -> bool:
        """Whether this server answers the signed URLs itself (an S3 store serves presigned ones)."""
        return isinstance(self.images, LocalImageStore)

    def signed_file(self, key: str, expires: str | None, signature: str | None) -> StoredFile:
        """The file behind a signed URL. The signature is checked before the file system is
        touched, so a key that was never signed (traversal attempts included) is refused (403)
        without a lookup."""
        assert isinstance(self.images, LocalImageStore)
        expiry = self.images.verify(key, expires, signature)
        try:
            path = self.images.path(key)
        except InvalidKey:
            raise NotFound("no such file") from None
        try:
            found = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            found = None
        if found is None or not stat.S_ISREG(found.st_mode):
            raise NotFound("no such file (it may have been purged)")
        max_age = max(0, min(self.images.ttl_seconds, expiry - int(time.time())))
        return StoredFile(path, content_type(key), max_age, found)

    # What the routers need besides tasks: each is a method here, so no handler reaches a store.

    def store_upload(self, key: str, data: bytes, *, upload_dir: str | None = None,
                     capacity_bytes: int | None = None) -> None:
        """A file of the dashscope SDK's upload flow; `oss://KEY` then finds it (`read_upload`).
        As the policy says (`x_oss_forbid_overwrite: true`), an existing file is never replaced
        (409), and the files of one policy's `upload_dir` hold at most `capacity_bytes` together."""
        store_key = UPLOAD_PREFIX + key
        if self.images.exists(store_key):
            raise ApiError(f"upload: a file already exists at {key}; the policy forbids overwriting "
                           "(x_oss_forbid_overwrite): upload under a new file name", status=409,
                           code="FileAlreadyExists", field="key")
        if upload_dir is not None and capacity_bytes is not None:
            _, used = self.images.usage(UPLOAD_PREFIX + upload_dir)
            if used + len(data) > capacity_bytes:
                raise TooLarge(f"upload: this policy's files would hold {used + len(data):,} bytes, over its capacity "
                               f"of {capacity_bytes // (1024 * 1024)} MB (capacity_limit_mb); ask for a new policy",
                               field="file")
        self.images.put_named(store_key, data)

    def read_upload(self, key: str) -> bytes | None:
        """`oss://KEY` references from the dashscope SDK's upload flow; None once older than
        `upload_ttl_seconds` (48 h), even before the retention pass deletes it."""
        store_key = UPLOAD_PREFIX + key
        try:
            if self.images.modified_at(store_key) < time.time() - self.upload_ttl_seconds:
                return None
            return self.images.read(store_key)
        except (InvalidKey, NotFound):  # a malformed or vanished key; store outages propagate (503)
            return None
