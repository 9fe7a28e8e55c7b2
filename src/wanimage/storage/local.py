"""Result and upload images in a local directory, served through HMAC-signed, expiring URLs.

Layout under `data_dir`:

    secret.key          32 random bytes (hex), mode 0600, made on first start and reused
    files/<key>         the stored objects, e.g. files/results/2026-11-25/<uuid>.png

The secret lives beside `files/`, never under it, so no key can name it. A URL is
`{base_url}/files/{key}?Expires={unix}&Signature={hex}` where the signature is
HMAC-SHA256(secret, key + "\\n" + expires), like the OSS links upstream hands out (§4.6)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from wanimage.errors import AccessDenied, NotFound, is_disk_full, storage_full
from wanimage.storage.base import InvalidKey, new_key, validate_key

SECRET_FILE = "secret.key"
FILES_DIR = "files"
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_EXPIRES_RE = re.compile(r"[0-9]{1,12}")


class LocalImageStore:
    def __init__(self, root: Path, secret: bytes, ttl_seconds: int = 86400) -> None:
        if len(secret) < 16:
            raise ValueError("signing secret must be at least 16 bytes")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._root_resolved = self.root.resolve()
        self._secret = bytes(secret)
        self.ttl_seconds = int(ttl_seconds)

    @classmethod
    def open(cls, data_dir: Path, ttl_seconds: int = 86400) -> LocalImageStore:
        """The store under `data_dir/files`, signing with `data_dir/secret.key` (made if absent)."""
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / FILES_DIR, load_or_create_secret(data_dir / SECRET_FILE), ttl_seconds)

    # -- keys and paths ---------------------------------------------------------------------

    def path(self, key: str) -> Path:
        """The file for `key`; raises InvalidKey for a key that is unsafe or resolves outside root
        (a symlink planted inside the store included)."""
        validate_key(key)
        path = self.root / key
        resolved = path.resolve()
        if not resolved.is_relative_to(self._root_resolved) or resolved == self._root_resolved:
            raise InvalidKey("storage key resolves outside the store", field="key")
        return path

    def new_key(self, prefix: str, suffix: str = ".png", now: float | None = None) -> str:
        return new_key(prefix, suffix, now)

    # -- objects ----------------------------------------------------------------------------

    def put(self, data: bytes, *, prefix: str, suffix: str = ".png") -> str:
        """Store `data` under a fresh key `<prefix>/<UTC date>/<uuid><suffix>` and return the key."""
        key = self.new_key(prefix, suffix)
        self.put_named(key, data)
        return key

    def put_named(self, key: str, data: bytes) -> None:
        """Store `data` at a chosen key (uploads), replacing any object there; atomic for readers.
        A full disk is StorageFull (507), with no half-written file left behind."""
        try:
            self._write(self.path(key), data)
        except OSError as exc:
            if is_disk_full(exc):
                raise storage_full("the " + key.split("/", 1)[0].rstrip("s") + " image") from None
            raise

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A hidden temporary file in the same directory: os.replace is atomic there, readers see
        # the old or the new object, never half of one, and no key can name the temporary file.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no stored file {key!r}", field="key") from None

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except InvalidKey:
            return False

    def delete(self, key: str) -> bool:
        """Remove one object; True when it existed."""
        try:
            self.path(key).unlink()
            return True
        except (FileNotFoundError, IsADirectoryError):
            return False

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the directory `prefix` (e.g. "uploads/<id>"); returns the count."""
        top = self.path(prefix.strip("/"))
        if not top.is_dir():
            return 0
        count = sum(1 for p in top.rglob("*") if p.is_file())
        shutil.rmtree(top, ignore_errors=True)
        return count

    def usage(self, prefix: str) -> tuple[int, int]:
        """(objects, bytes) under the directory `prefix`; hidden temporaries are not objects."""
        top = self.path(prefix.strip("/"))
        files = [p for p in top.rglob("*") if p.is_file() and not p.name.startswith(".")] if top.is_dir() else []
        return len(files), sum(p.stat().st_size for p in files)

    def modified_at(self, key: str) -> float:
        """When the object was last written (epoch seconds); NotFound when there is none."""
        try:
            return self.path(key).stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no stored file {key!r}", field="key") from None

    def purge_older_than(
        self, seconds: float, now: float | None = None, *, prefix: str = "", skip: tuple[str, ...] = ()
    ) -> int:
        """Delete files (left-over temporaries included) under `prefix` whose mtime is older than
        `seconds`, except those under a `skip` prefix, then the directories this leaves empty;
        returns the number of files deleted."""
        cutoff = (time.time() if now is None else now) - seconds
        top = self.path(prefix.strip("/")) if prefix.strip("/") else self.root
        skipped = tuple(str(self.root / p.strip("/")) + os.sep for p in skip)
        deleted = 0
        for dirpath, _dirnames, filenames in os.walk(top, topdown=False):
            if (dirpath + os.sep).startswith(skipped):
                continue
            for name in filenames:
                file = os.path.join(dirpath, name)
                try:
                    if os.lstat(file).st_mtime < cutoff:
                        os.unlink(file)
                        deleted += 1
                except FileNotFoundError:  # removed by a concurrent purge or delete
                    pass
            if dirpath != str(self.root):
                try:
                    os.rmdir(dirpath)  # only succeeds when empty
                except OSError:
                    pass
        return deleted

    # -- signed URLs ------------------------------------------------------------------------

    def _signature(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def signed_url(self, key: str, base_url: str, now: float | None = None) -> str:
        """`{base_url}/files/{key}?Expires=..&Signature=..`, valid for ttl_seconds from `now`."""
        validate_key(key)
        expires = int(time.time() if now is None else now) + self.ttl_seconds
        signature = self._signature(key, expires)
        return f"{base_url.rstrip('/')}/files/{quote(key, safe='/')}?Expires={expires}&Signature={signature}"

    def verify(
        self, key: str, expires: str | None, signature: str | None, now: float | None = None
    ) -> int:
        """Check a URL's signature and expiry; return the expiry (unix seconds).
        Raises AccessDenied when the signature is missing, malformed, wrong, or expired."""
        if not expires or not signature:
            raise AccessDenied("the URL is not signed (Expires and Signature are required)")
        if not _EXPIRES_RE.fullmatch(expires) or not _SIGNATURE_RE.fullmatch(signature.lower()):
            raise AccessDenied("the URL signature is malformed")
        try:
            validate_key(key)
        except InvalidKey:
            raise AccessDenied("the URL signature does not match") from None
        expected = self._signature(key, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise AccessDenied("the URL signature does not match")
        if int(expires) < (time.time() if now is None else now):
            raise AccessDenied("the URL has expired")
        return int(expires)


def load_or_create_secret(path: Path) -> bytes:
    """Read the signing secret at `path`, or create it (mode 0600) when absent.

    Creation writes a temporary file then hard-links it into place, so two processes starting at
    once agree on one secret and neither reads a half-written file."""
    path = Path(path)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".secret.", dir=path.parent)  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_bytes(32).hex() + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race: use its secret
        finally:
            os.unlink(tmp)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    text = path.read_text().strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path} is not a hex-encoded secret") from None
    if len(secret) < 16:
        raise ValueError(f"{path} holds a secret shorter than 16 bytes")
    return secret
