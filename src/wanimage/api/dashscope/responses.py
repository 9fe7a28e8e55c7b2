"""The DashScope response bodies (api-spec.md §2, §8.2-§8.3), built from core's `Task` view. Pure
pydantic: no FastAPI, no service.

Fields are declared in the order they leave on the wire. A body is rendered with `render()`,
which leaves out every None: an optional key (`progress`, `code`, `usage`, ...) is absent rather
than null, as the SDKs expect. The one place where null is an answer, the request summary of a
listed task, keeps its nulls itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    SkipValidation,
    model_serializer,
)

from ...core.task import GenerationResult, Origin, Task
from ...types import TaskStatus

UrlFor = Callable[[str], str]  # image-store key -> signed URL


class DashScopeResponse(BaseModel):
    """Every DashScope response model."""

    model_config = ConfigDict(extra="forbid")

    def render(self) -> dict[str, Any]:
        """The body as JSON values, keys in field order, without the keys that are None."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


# ------------------------------------------------------------------ choices and usage


class ImageItem(DashScopeResponse):
    image: str  # signed URL of the PNG
    type: Literal["image"] = "image"


class TextItem(DashScopeResponse):
    type: Literal["text"] = "text"
    text: str  # the prompt thinking mode rewrote (api-spec §4.2)


class ChoiceMessage(DashScopeResponse):
    role: Literal["assistant"] = "assistant"
    content: list[ImageItem | TextItem]


class Choice(DashScopeResponse):
    finish_reason: Literal["stop"] = "stop"
    message: ChoiceMessage

    @classmethod
    def all_of(cls, result: GenerationResult, url_for: UrlFor) -> list[Choice]:
        items: list[ImageItem | TextItem] = [ImageItem(image=url_for(key)) for key in result.images]
        if result.sequential:  # an image set is one choice with every image, in story order
            groups = [items]
        else:  # n independent images: one choice each
            groups = [[item] for item in items]
        if result.planner and groups:  # thinking ran: its revised prompt as a text item
            groups[0] = [*groups[0], TextItem(text=result.revised_prompt)]
        return [cls(message=ChoiceMessage(content=content)) for content in groups]


class Usage(DashScopeResponse):
    """Tokens are informational upstream and not billed; this server does not count them."""

    image_count: int  # images produced
    size: str  # "W*H", one string even for several images
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def of(cls, result: GenerationResult) -> Usage:
        return cls(image_count=len(result.images), size=result.size)


# ------------------------------------------------------------------ task outputs


class SynthesisResult(DashScopeResponse):
    """One entry of `output.results[]`, what ImageSynthesis (1.x) reads."""

    url: str
    orig_prompt: str  # the prompt as given
    actual_prompt: str  # the prompt thinking mode rewrote; the prompt itself without it


class TaskMetrics(DashScopeResponse):
    total: int = Field(serialization_alias="TOTAL")
    succeeded: int = Field(serialization_alias="SUCCEEDED")
    failed: int = Field(0, serialization_alias="FAILED")


class TaskOutput(DashScopeResponse):
    """`output` of a task: its status, times, and what it produced or why it failed."""

    task_id: str
    task_status: TaskStatus
    submit_time: str | None = None  # "YYYY-MM-DD HH:mm:ss.SSS", UTC
    scheduled_time: str | None = None
    end_time: str | None = None
    progress: int | None = None  # wanimage extension, 0-100: only while RUNNING (and in progress frames)
    cancel_requested: bool | None = None  # extension: true on a RUNNING task asked to stop
    finished: bool | None = None  # true once the task ended; false in progress frames
    choices: list[Choice] | None = None  # SUCCEEDED
    results: list[SynthesisResult] | None = None  # SUCCEEDED, legacy synthesis tasks only
    task_metrics: TaskMetrics | None = None  # likewise
    code: str | None = None  # FAILED, or CANCELED while it ran
    message: str | None = None

    @classmethod
    def of(cls, record: Task, url_for: UrlFor) -> TaskOutput:
        """The fields that apply to the task's status; the others stay None (absent)."""
        running, result, error = record.status is TaskStatus.RUNNING, record.result, record.error
        output = cls(
            task_id=record.id,
            task_status=record.status,
            submit_time=format_time(record.submit_time),
            scheduled_time=format_time(record.scheduled_time),
            end_time=format_time(record.end_time),
            progress=record.progress if running else None,
            cancel_requested=True if running and record.cancel_requested else None,
            finished=True if record.status.terminal else None,
        )
        if record.status is TaskStatus.SUCCEEDED and result:
            output.choices = Choice.all_of(result, url_for)
            if record.origin is Origin.SYNTHESIS:
                output.results = [
                    SynthesisResult(url=url_for(key), orig_prompt=result.prompt, actual_prompt=result.revised_prompt)
                    for key in result.images
                ]
                output.task_metrics = TaskMetrics(total=len(result.images), succeeded=len(result.images))
        if record.status in (TaskStatus.FAILED, TaskStatus.CANCELED) and error:
            output.code, output.message = error.code, error.message
        return output


class SyncOutput(DashScopeResponse):
    """`output` of the synchronous answer."""

    choices: list[Choice]
    finished: Literal[True] = True


# ------------------------------------------------------------------ bodies


class GenerationResponse(DashScopeResponse):
    """What the generation endpoints answer (`output` first): the sync answer, a progress frame of
    a streamed sync call, and the task just submitted."""

    output: SyncOutput | TaskOutput
    usage: Usage | None = None  # the sync answer only
    request_id: str

    @classmethod
    def answer(cls, record: Task, request_id: str, url_for: UrlFor) -> GenerationResponse:
        assert record.result is not None
        output = SyncOutput(choices=Choice.all_of(record.result, url_for))
        return cls(output=output, usage=Usage.of(record.result), request_id=request_id)

    @classmethod
    def progress(cls, task_id: str, progress: int, request_id: str) -> GenerationResponse:
        """The task's status and progress, no images."""
        output = TaskOutput(task_id=task_id, task_status=TaskStatus.RUNNING, progress=progress, finished=False)
        return cls(output=output, request_id=request_id)

    @classmethod
    def submitted(cls, record: Task, request_id: str) -> GenerationResponse:
        return cls(output=TaskOutput(task_id=record.id, task_status=record.status), request_id=request_id)


class TaskResponse(DashScopeResponse):
    """GET /tasks/{id} and its cancel (`request_id` first); `usage` once SUCCEEDED."""

    request_id: str
    output: TaskOutput
    usage: Usage | None = None

    @classmethod
    def of(cls, record: Task, request_id: str, url_for: UrlFor) -> TaskResponse:
        usage = Usage.of(record.result) if record.status is TaskStatus.SUCCEEDED and record.result else None
        return cls(request_id=request_id, output=TaskOutput.of(record, url_for), usage=usage)

    @classmethod
    def unknown(cls, task_id: str, request_id: str) -> TaskResponse:
        """An id that does not exist, is someone else's or has expired."""
        return cls(request_id=request_id, output=TaskOutput(task_id=task_id, task_status=TaskStatus.UNKNOWN))


# ------------------------------------------------------------------ the task list


class RequestSummary(DashScopeResponse):
    """What a listed task was asked (a wanimage extension): enough to show it in a gallery and
    send it again. Every key is present: null is "not asked". Values are shown as stored, not
    checked again (`model_construct`): a row an older server wrote must not fail the whole list."""

    prompt: SkipValidation[str | None] = None
    size: SkipValidation[str | None] = None  # "1K" | "2K" | "4K" or "W*H"
    n: SkipValidation[int | None] = None
    enable_sequential: SkipValidation[bool | None] = None
    thinking_mode: SkipValidation[bool | str | None] = None  # a level ("fast") as sent
    watermark: SkipValidation[bool | None] = None
    seed: SkipValidation[int | None] = None
    bbox_list: SkipValidation[list[list[list[int]]] | None] = None
    color_palette: SkipValidation[list[dict[str, Any]] | None] = None  # ratios as sent: "NN.NN%" or numbers
    images: SkipValidation[list[str | None]] = []  # signed URLs; None for an inline data URI

    # No return annotation: the OpenAPI document then describes the fields, not a bare object.
    @model_serializer(mode="wrap")
    def _keep_nulls(self, handler: SerializerFunctionWrapHandler):
        dumped = handler(self)  # without the Nones, when rendered
        return {name: dumped.get(name) for name in type(self).model_fields}

    @classmethod
    def of(cls, record: Task, url_for: UrlFor) -> RequestSummary:
        asked = record.asked
        images = [url_for(ref.removeprefix("input://")) if ref.startswith("input://")
                  else None if ref.startswith("data:") else ref  # never a megabyte inline
                  for ref in asked.get("images", [])]
        return cls.model_construct(**{**{name: asked.get(name) for name in cls.model_fields}, "images": images})


class ListedTask(TaskOutput):
    """One entry of `tasks[]`: the task's output, then its model and request."""

    model: str
    request: RequestSummary

    @classmethod
    def of(cls, record: Task, url_for: UrlFor) -> ListedTask:
        output = TaskOutput.of(record, url_for)
        return cls(**dict(output), model=record.model, request=RequestSummary.of(record, url_for))


class AsyncTaskInfo(DashScopeResponse):
    """One entry of `data[]`, as the Java SDK's `AsyncTaskInfo` maps it (times are Longs)."""

    task_id: str
    status: TaskStatus
    model_name: str
    gmt_create: int | None = None  # epoch milliseconds
    start_time: int | None = None
    end_time: int | None = None
    api_key_id: str | None = None  # the creating key's id (a hash, never the key); none without keys

    @classmethod
    def of(cls, record: Task) -> AsyncTaskInfo:
        return cls(
            task_id=record.id, status=record.status, model_name=record.model,
            gmt_create=_epoch_ms(record.submit_time), start_time=_epoch_ms(record.scheduled_time),
            end_time=_epoch_ms(record.end_time), api_key_id=record.owner,
        )


class TaskListResponse(DashScopeResponse):
    """Both list shapes in one body: `tasks[]` (the Python SDKs read it) and the Java SDK's
    `ImageGenerationListResult`: `data[]` and `total_page`. No `output` key: the Java SDK reads
    the whole body only when there is none."""

    request_id: str
    page_no: int
    page_size: int
    total: int
    total_page: int
    tasks: list[ListedTask]
    data: list[AsyncTaskInfo]

    @classmethod
    def of(cls, records: list[Task], total: int, page_no: int, page_size: int, request_id: str,
           url_for: UrlFor) -> TaskListResponse:
        return cls(
            request_id=request_id, page_no=page_no, page_size=page_size, total=total,
            total_page=-(-total // page_size),
            tasks=[ListedTask.of(r, url_for) for r in records],
            data=[AsyncTaskInfo.of(r) for r in records],
        )


def format_time(ts: float | None) -> str | None:
    """Task timestamps: 'YYYY-MM-DD HH:mm:ss.SSS' in UTC (the API does not state a zone)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _epoch_ms(ts: float | None) -> int | None:
    return None if ts is None else int(round(ts * 1000))
