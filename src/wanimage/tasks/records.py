"""The task record, as the store returns it: a queue entry and nothing more. Its request and its
outcome are opaque payloads (text) written and read by whoever queues tasks (wanimage.core); the
queue knows their status, times, owner, progress and which worker holds them."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InternalError
from ..types import TaskStatus

__all__ = ["QueueFull", "TaskContext", "TaskRecord", "TaskStatus", "engine_lost", "worker_lost"]


class QueueFull(Exception):
    """`create(..., max_pending=N)` found N tasks PENDING already: nothing was inserted."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} tasks are pending")
        self.limit = limit


@dataclass(frozen=True)
class TaskRecord:
    id: str
    status: TaskStatus
    tag: str  # a short label the queue's listing filters by (core puts the model id here)
    payload: str  # the request, opaque to the queue
    submit_time: float
    scheduled_time: float | None = None
    end_time: float | None = None
    progress: int = 0
    # The outcome, opaque to the queue: the handler's result (SUCCEEDED) or an ApiError's payload
    # (FAILED, or CANCELED while running); None while the task has none.
    outcome: str | None = None
    worker_id: str | None = None
    attempts: int = 0
    cancel_requested: bool = False
    wants_previews: bool = False  # a stream asked for partial images
    preview_key: str | None = None  # the latest partial image, in the image store
    preview_progress: int | None = None  # the progress at which it was taken
    owner: str | None = None  # key id of the API key that created it (never the key); None: no keys


@dataclass(frozen=True)
class TaskContext:
    """What a remote engine replica needs to report progress and see cancels on its own."""

    task_id: str
    worker_id: str
    database_url: str


# The queue's own failures (its workers or engines lost), as outcomes like any other error.
def engine_lost(max_attempts: int) -> str:
    return InternalError(f"the engine running this task was lost {max_attempts} times; submit it anew",
                         code="InternalError.EngineLost", should_retry=False).to_payload()


def worker_lost(max_attempts: int) -> str:
    return InternalError(f"the worker running this task stopped {max_attempts} times; the task was not retried "
                         "again. Submit it anew.", code="InternalError.WorkerLost", should_retry=False).to_payload()
