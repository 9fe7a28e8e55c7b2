"""TaskProgress: the ProgressFn an engine gets for one task, made of three small parts.

  CancelCheck     raises Canceled once the task is canceled (in this process: at once; from
                  another process: seen through the task store within `interval` seconds)
  PreviewRelay    partial images to the streams that asked for them: in this process through
                  TaskEvents, in another process through the image store
  ProgressWriter  progress to subscribers in this process at every step, to the store at most
                  every `interval` seconds

The worker thread uses all three; a Ray replica, with no in-process subscribers and no image
store, uses a CancelCheck and a ProgressWriter on the task store only. The worker's liveness is
its own heartbeat row (tasks/worker.py), not part of this."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import lru_cache
from typing import Protocol

from PIL import Image

from ..engines.base import PreviewFn
from ..storage.base import ImageStore
from ..tasks.events import TaskEvent, TaskEvents
from ..tasks.records import TaskContext
from ..types import Canceled
from .postprocess import encode_png

log = logging.getLogger(__name__)

STORE_INTERVAL = 0.5  # seconds between progress writes, cancel polls and shared previews
Clock = Callable[[], float]


class ProgressStore(Protocol):
    """The task-store methods progress reporting needs (TaskStore or InMemoryTaskStore)."""

    url: str

    def cancel_requested(self, task_id: str) -> bool: ...
    def report_progress(self, task_id: str, worker_id: str, progress: int) -> bool: ...
    def put_preview(self, task_id: str, worker_id: str, key: str, progress: int) -> bool: ...


class _Throttle:
    """True at most once per `interval` seconds (the first call included when `now` is True)."""

    def __init__(self, interval: float, clock: Clock, *, now: bool = True) -> None:
        self.interval, self.clock = interval, clock
        self.last = float("-inf") if now else clock()

    def __call__(self) -> bool:
        t = self.clock()
        if t - self.last < self.interval:
            return False
        self.last = t
        return True


class CancelCheck:
    def __init__(self, task_id: str, store: ProgressStore, events: TaskEvents | None = None, *,
                 interval: float = STORE_INTERVAL, clock: Clock = time.monotonic) -> None:
        self.task_id, self.store, self.events = task_id, store, events
        self.poll = _Throttle(interval, clock, now=False)

    def __call__(self) -> None:
        if self.events is not None and self.events.is_canceled(self.task_id):
            raise Canceled
        if self.poll() and self.store.cancel_requested(self.task_id):
            raise Canceled


class PreviewRelay:
    def __init__(self, ctx: TaskContext, store: ProgressStore, images: ImageStore, events: TaskEvents, *,
                 shared_wanted: bool, interval: float = STORE_INTERVAL, clock: Clock = time.monotonic) -> None:
        self.ctx, self.store, self.images, self.events = ctx, store, images, events
        self.shared_wanted = shared_wanted  # the task row says a stream (maybe elsewhere) asked
        self.share_due = _Throttle(interval, clock)

    def __call__(self, pct: int, preview: PreviewFn | None) -> list[Image.Image]:
        """Render the partial images when someone wants them; returns those for this process."""
        if preview is None:
            return []
        if self.events.wants_previews(self.ctx.task_id):  # a stream in this process listens
            return preview()
        if self.shared_wanted and pct < 100 and self.share_due():
            previews = preview()
            if previews:
                self.share(previews[0], pct)
        return []

    def share(self, image: Image.Image, pct: int) -> None:
        """Leave a partial image where a stream in another process finds it (its key in the task
        row, the PNG in the image store). Best effort: a failure costs a preview, never the task."""
        try:
            key = f"previews/{self.ctx.task_id}/{pct:03d}.png"
            self.images.put_named(key, encode_png(image.convert("RGB"), 1))
            self.store.put_preview(self.ctx.task_id, self.ctx.worker_id, key, pct)
        except Exception:
            log.warning("task %s: could not share a partial image", self.ctx.task_id, exc_info=True)


@lru_cache(maxsize=1)
def background_writes() -> Executor:
    """One thread for this process's progress writes, in the order they were asked for."""
    return ThreadPoolExecutor(1, thread_name_prefix="progress-writes")


class ProgressWriter:
    """`background`: the executor that writes to the store, so the engine does not wait on the
    database at its steps (none: written by the caller). A write that lands after the task
    ended, or was taken from this worker, changes nothing (TaskStore.report_progress holds it
    to a RUNNING task of this worker); one that fails is logged, and costs a progress figure."""

    def __init__(self, ctx: TaskContext, store: ProgressStore, events: TaskEvents | None = None, *,
                 interval: float = STORE_INTERVAL, clock: Clock = time.monotonic,
                 background: Executor | None = None) -> None:
        self.ctx, self.store, self.events = ctx, store, events
        self.write_due = _Throttle(interval, clock)
        self.written = 0
        self.background = background

    def __call__(self, pct: int, previews: list[Image.Image]) -> None:
        if self.events is not None and self.events.listening(self.ctx.task_id):
            self.events.publish(self.ctx.task_id, TaskEvent("progress", pct, previews))
        # 100 % is always written: the engine is done and pollers can say "saving" while the
        # images are encoded and stored, instead of showing the last throttled figure
        if self.write_due() or (pct >= 100 > self.written):
            if self.background is None:
                self.store.report_progress(self.ctx.task_id, self.ctx.worker_id, pct)
            else:
                self.background.submit(self._write, pct)
            self.written = pct

    def _write(self, pct: int) -> None:
        try:
            self.store.report_progress(self.ctx.task_id, self.ctx.worker_id, pct)
        except Exception:
            log.warning("task %s: progress %d %% not written", self.ctx.task_id, pct, exc_info=True)


class TaskProgress:
    """The ProgressFn handed to engines for one task. `context` says which task it reports on,
    for engines that run elsewhere and report from there (runners/ray_serve.py)."""

    def __init__(self, context: TaskContext, cancel: CancelCheck, writer: ProgressWriter,
                 previews: PreviewRelay | None = None) -> None:
        self.context, self.cancel, self.writer, self.previews = context, cancel, writer, previews

    def __call__(self, fraction: float, preview: PreviewFn | None = None) -> None:
        self.cancel()
        pct = int(max(0.0, min(1.0, fraction)) * 100)
        self.writer(pct, self.previews(pct, preview) if self.previews is not None else [])

    @classmethod
    def in_process(cls, ctx: TaskContext, store: ProgressStore, images: ImageStore, events: TaskEvents, *,
                   shared_wanted: bool, clock: Clock = time.monotonic,
                   background: Executor | None = None) -> TaskProgress:
        """A worker in the process that holds the streams and the image store; its progress
        reaches this process's streams at once and the store from `background` (default:
        `background_writes()`), so a step never waits on the database (0.2-0.5 ms a write,
        2-3 writes a task, each on the engine's own time before)."""
        return cls(ctx, CancelCheck(ctx.task_id, store, events, clock=clock),
                   ProgressWriter(ctx, store, events, clock=clock, background=background or background_writes()),
                   PreviewRelay(ctx, store, images, events, shared_wanted=shared_wanted, clock=clock))

    @classmethod
    def through_store(cls, ctx: TaskContext, store: ProgressStore, *, clock: Clock = time.monotonic) -> TaskProgress:
        """An engine replica in another process: everything goes through the task store."""
        return cls(ctx, CancelCheck(ctx.task_id, store, clock=clock), ProgressWriter(ctx, store, clock=clock))
