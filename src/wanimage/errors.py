"""Every failure a client can cause is an ApiError: a DashScope code, an HTTP status, the field it
concerns and a message that says what to change. Each dialect renders it in its own envelope."""

from __future__ import annotations

import errno
import json

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}  # EFBIG: a file-size limit (RLIMIT_FSIZE)


class ApiError(Exception):
    status: int = 400
    code: str = "InvalidParameter"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int | None = None,
        code: str | None = None,
        retry_after: int | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.retry_after = retry_after
        self.should_retry = should_retry

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.field!r}, {self.message!r})"

    def to_payload(self) -> str:
        """The error as text, so that a failure crosses the task queue with its status and field."""
        return json.dumps({"status": self.status, "code": self.code, "field": self.field, "message": self.message,
                           "retry_after": self.retry_after, "should_retry": self.should_retry})

    @classmethod
    def from_payload(cls, payload: str) -> ApiError:
        """The error `to_payload` wrote, as the class of its code where one has it (StorageFull...)."""
        data = json.loads(payload)
        status, code = data.pop("status"), data.pop("code")
        kind = next((k for k in _subclasses(ApiError) if k.code == code and k.status == status), ApiError)
        return kind(data.pop("message"), status=status, code=code, **data)


class InvalidParameter(ApiError):
    status, code = 400, "InvalidParameter"


class EmptyInput(ApiError):
    status, code = 400, "BadRequest.EmptyInput"


class EmptyModel(ApiError):
    status, code = 400, "BadRequest.EmptyModel"


class TooLarge(ApiError):
    status, code = 413, "BadRequest.TooLarge"


class InvalidApiKey(ApiError):
    status, code = 401, "InvalidApiKey"


class AccessDenied(ApiError):
    status, code = 403, "AccessDenied"


class NotFound(ApiError):
    status, code = 404, "NotFound"


class UnsupportedOperation(ApiError):
    status, code = 400, "UnsupportedOperation"


class Throttling(ApiError):
    status, code = 429, "Throttling"


class ModelUnavailable(ApiError):
    """The model id is valid but no engine for it is installed on this server."""

    status, code = 503, "ModelUnavailable"


class InternalError(ApiError):
    status, code = 500, "InternalError"


class ServiceUnavailable(ApiError):
    """Transient trouble (the task database is unreachable or locked): retrying helps. The SDKs
    retry 503 while polling a task."""

    status, code = 503, "ServiceUnavailable"


class StorageFull(ApiError):
    """The server's disk (images, inputs, the task database) is full: nothing was stored. Retrying
    helps once an operator frees space."""

    status, code = 507, "StorageFull"


def _subclasses(kind: type[ApiError]) -> list[type[ApiError]]:
    return [sub for direct in kind.__subclasses__() for sub in (direct, *_subclasses(direct))]


def is_disk_full(exc: BaseException | None) -> bool:
    """ENOSPC (or a quota / file-size limit) anywhere in the exception's chain, or a database
    driver's words for it (SQLite "database or disk is full", PostgreSQL "No space left")."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, StorageFull):
            return True
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        text = str(exc).lower()
        if "disk is full" in text or "no space left" in text or "could not extend file" in text:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        seen += 1
    return False


def storage_full(what: str) -> StorageFull:
    return StorageFull(
        f"storage is full: the server could not write {what}; free disk space on the server "
        "(or lower WANIMAGE_RESULT_TTL_SECONDS), then retry",
        retry_after=30,
    )
