"""What the service checks before and around every task-store call: ids that cannot be a task,
filters the database cannot hold, and database errors turned into the API's answers."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError

from ..errors import InvalidParameter, ServiceUnavailable, is_disk_full, storage_full

log = logging.getLogger(__name__)

# Task ids are the UUIDs this server hands out; anything else (NUL, over-long, another shape) is
# an id no task has, answered UNKNOWN as the official service does, without a database round trip.
_TASK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_FILTER_CHARS = 64


def is_task_id(task_id: str) -> bool:
    return isinstance(task_id, str) and _TASK_ID.fullmatch(task_id) is not None


def check_filter(name: str, value: str | None) -> str | None:
    """A list filter the database can hold: printable, at most MAX_FILTER_CHARS; else 400."""
    if value is not None and (len(value) > MAX_FILTER_CHARS or not value.isprintable()):
        raise InvalidParameter(
            f"{name}: must be at most {MAX_FILTER_CHARS} printable characters, e.g. wan2.7-image", field=name
        )
    return value


@contextmanager
def store_errors() -> Iterator[None]:
    """A database that is down or locked is transient trouble: 503 with retry-after, never a 500.
    A full disk under it is 507 StorageFull; a value the database refuses (what validation
    missed) is 400, never a 503 the SDKs would retry forever."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        log.error("task store error: %s", exc)
        if is_disk_full(exc):
            raise storage_full("to the task database") from None
        raise ServiceUnavailable("the task database is unavailable; retry shortly", retry_after=2) from None
    except DataError as exc:
        log.warning("task store refused a value: %s", exc)
        raise InvalidParameter("the request holds characters the task database cannot store") from None
    except DBAPIError as exc:
        log.error("task store error: %s", exc)
        raise ServiceUnavailable("the task database is unavailable; retry shortly", retry_after=2) from None
