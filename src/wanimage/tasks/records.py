"""Task statuses and the task record, as the store returns them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    # Identical strings in the enum, the database and on the wire.
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN)


class Origin(StrEnum):
    """Which endpoint created the task: decides extra fields when the task is rendered."""

    GENERATION = "generation"  # multimodal-generation (sync) and image-generation (async)
    SYNTHESIS = "synthesis"  # legacy text2image/image-synthesis: output.results[] too
    OPENAI = "openai"


class QueueFull(Exception):
    """`create(..., max_pending=N)` found N tasks PENDING already: nothing was inserted."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} tasks are pending")
        self.limit = limit


@dataclass(frozen=True)
class TaskResult:
    images: list[str]  # image-store keys, in order
    size: str  # "W*H"
    prompt: str  # the prompt as given (after truncation)
    revised_prompt: str  # from thinking mode; the prompt itself when thinking did not run
    seed: int
    sequential: bool
    planner: str | None = None  # thinking mode: which planner ran ("builtin" | "llm"); None: none ran

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> TaskResult:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class TaskRecord:
    id: str
    status: TaskStatus
    model: str
    origin: Origin
    request: dict[str, Any]  # GenerationRequest.to_json()
    submit_time: float
    scheduled_time: float | None = None
    end_time: float | None = None
    progress: int = 0
    result: TaskResult | None = None
    code: str | None = None
    message: str | None = None
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


def format_time(ts: float | None) -> str | None:
    """Task timestamps: 'YYYY-MM-DD HH:mm:ss.SSS' in UTC (the API does not state a zone)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
