"""What a generation task means, on top of the queue's opaque rows: the payload core queues (the
job, the endpoint it came from, the request as asked), the typed result a worker returns, and
`Task`, the view of a row every route renders. The queue (wanimage.tasks) stores the payloads as
text and knows none of this."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..engines.job import GenerationJob
from ..errors import ApiError, InternalError
from ..tasks.records import TaskRecord
from ..types import TaskStatus

log = logging.getLogger(__name__)
SUBMISSION_VERSION = 1


class Origin(StrEnum):
    """Which endpoint created the task: decides extra fields when the task is rendered."""

    GENERATION = "generation"  # multimodal-generation (sync) and image-generation (async)
    SYNTHESIS = "synthesis"  # legacy text2image/image-synthesis: output.results[] too
    OPENAI = "openai"


class Submission(BaseModel):
    """A queued task's request payload. `asked` is the request as the client sent it, checked
    and normalised (GenerationRequest.to_json, input images as their stored references): what
    the task list shows. `job` is what the worker runs; None only for a task queued by an older
    wanimage, which is shown but not run."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = SUBMISSION_VERSION
    origin: Origin
    asked: dict[str, Any]
    job: GenerationJob | None = None

    def to_payload(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_payload(cls, payload: str) -> Submission:
        return cls.model_validate_json(payload)


@dataclass(frozen=True)
class GenerationResult:
    """A succeeded task's outcome, as a worker returns it and the answer renders it."""

    images: list[str]  # image-store keys, in order
    size: str  # "W*H"
    prompt: str  # the prompt as given (after truncation)
    revised_prompt: str  # from thinking mode; the prompt itself when thinking did not run
    seed: int
    sequential: bool
    planner: str | None = None  # thinking mode: which planner ran ("builtin" | "llm"); None: none ran

    def to_payload(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_payload(cls, payload: str) -> GenerationResult:
        return cls(**json.loads(payload))


@dataclass(frozen=True)
class Task:
    """One task as the API shows it: the queue's row with its payloads read."""

    id: str
    status: TaskStatus
    model: str
    origin: Origin
    asked: dict[str, Any]  # the request as sent (Submission.asked)
    submit_time: float
    scheduled_time: float | None
    end_time: float | None
    progress: int
    cancel_requested: bool
    owner: str | None
    result: GenerationResult | None  # SUCCEEDED
    error: ApiError | None  # FAILED, or CANCELED while it ran

    @classmethod
    def of(cls, record: TaskRecord) -> Task:
        submission = _submission(record)
        result = error = None
        if record.outcome is not None:
            if record.status is TaskStatus.SUCCEEDED:
                result = GenerationResult.from_payload(record.outcome)
            else:
                error = ApiError.from_payload(record.outcome)
        return cls(
            id=record.id, status=record.status, model=record.tag, origin=submission.origin,
            asked=submission.asked, submit_time=record.submit_time, scheduled_time=record.scheduled_time,
            end_time=record.end_time, progress=record.progress, cancel_requested=record.cancel_requested,
            owner=record.owner, result=result, error=error,
        )

    def failure(self) -> ApiError:
        """What a sync caller of this ended, unsucceeded task receives."""
        if self.error is not None:
            return self.error
        if self.status is TaskStatus.CANCELED:
            return ApiError("the task was canceled", status=409, code="Canceled")
        return InternalError(f"the task ended {self.status.value} without a result", should_retry=False)


def _submission(record: TaskRecord) -> Submission:
    try:
        return Submission.from_payload(record.payload)
    except ValueError:  # never expected: a row written by hand, or a payload cut short
        log.error("task %s: its request payload cannot be read", record.id)
        return Submission(origin=Origin.GENERATION, asked={"model": record.tag})
