"""The worker: claim a task -> hand it to a handler -> finish or re-queue it; and a heartbeat row.

What a task *is* (the generation pipeline) is the handler's business (`core.pipeline`); the
worker knows only the queue. Every outcome ends the task: SUCCEEDED with the handler's result,
FAILED with the ApiError it raised (as an opaque outcome payload), CANCELED, or back to PENDING when the engine under it was lost.
Nothing is left RUNNING by an exception. Workers are threads in the server process by default
(`Worker.start`); `wanimage worker` runs the same threads without the HTTP API."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from ..errors import ApiError, InternalError, is_disk_full, storage_full
from ..types import Canceled, EngineLost
from .events import TaskEvent, TaskEvents
from .records import TaskRecord, TaskStatus

log = logging.getLogger(__name__)
FINISH_RETRY_INTERVAL = 0.5  # seconds between attempts to record an outcome whose first write failed


class TaskHandler(Protocol):
    def __call__(self, task: TaskRecord, worker_id: str) -> str:
        """Do the task's work and return its outcome payload. Raise Canceled, EngineLost or an
        ApiError to end it otherwise."""
        ...


class WorkerQueue(Protocol):
    """What a worker needs of the task store (TaskStore, or InMemoryTaskStore in tests)."""

    def claim(self, worker_id: str) -> TaskRecord | None: ...
    def finish(self, task_id: str, worker_id: str, status: TaskStatus,
               outcome: str | None = None) -> TaskRecord | None: ...
    def requeue(self, task_id: str, worker_id: str, max_attempts: int) -> TaskStatus | None: ...
    def register_worker(self, worker_id: str) -> None: ...
    def beat_worker(self, worker_id: str) -> None: ...
    def unregister_worker(self, worker_id: str) -> None: ...


FinishedObserver = Callable[[TaskRecord, TaskStatus], None]
CANCELED_WHILE_RUNNING = ApiError("the task was canceled while it ran", status=409, code="Canceled")


def new_worker_id() -> str:
    return f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        store: WorkerQueue,
        handler: TaskHandler,
        events: TaskEvents,
        *,
        heartbeat_seconds: float = 5.0,
        max_attempts: int = 2,
        name: str | None = None,
        on_finished: FinishedObserver | None = None,
    ) -> None:
        self.store, self.handler, self.events = store, handler, events
        self.heartbeat_seconds = heartbeat_seconds
        self.max_attempts = max_attempts
        self.worker_id = name or new_worker_id()
        self.on_finished = on_finished
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ loop

    def start(self) -> None:
        self.store.register_worker(self.worker_id)
        for target, kind in ((self.run_forever, "worker"), (self._beat_forever, "heartbeat")):
            thread = threading.Thread(target=target, name=f"{kind}-{self.worker_id}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.events.work_available.set()
        for thread in self._threads:
            thread.join(timeout)
        if not any(t.is_alive() for t in self._threads):
            # Still running a task: leave the row to go stale, so recovery re-queues that task.
            try:
                self.store.unregister_worker(self.worker_id)
            except Exception as exc:  # a database that is down or full: the row goes stale instead
                log.warning("worker %s: could not remove its heartbeat row (%s)", self.worker_id, exc)

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_one()
            except Exception:  # the store itself failed (e.g. database down): back off, go on
                log.exception("worker %s: claim failed", self.worker_id)
                worked = False
                self._stop.wait(1.0)
            if not worked:
                self.events.work_available.wait(0.5)
                self.events.work_available.clear()

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.store.beat_worker(self.worker_id)
            except Exception:
                log.exception("worker %s: heartbeat failed", self.worker_id)

    def run_one(self) -> bool:
        """Claim and run one task; False when the queue was empty."""
        task = self.store.claim(self.worker_id)
        if task is None:
            return False
        try:
            self._run(task)
        finally:
            self.events.forget(task.id)
        return True

    # ------------------------------------------------------------ one task

    def _run(self, task: TaskRecord) -> None:
        started = time.monotonic()
        status, outcome = TaskStatus.FAILED, None
        requeued, ended = False, None
        try:
            outcome = self.handler(task, self.worker_id)
            status = TaskStatus.SUCCEEDED
        except EngineLost as exc:
            log.warning("task %s: engine lost (%s); giving the task back to the queue", task.id, exc)
            requeued = True
        except Canceled:
            status, outcome = TaskStatus.CANCELED, CANCELED_WHILE_RUNNING.to_payload()
        except ApiError as exc:
            outcome = exc.to_payload()
        except Exception as exc:  # an engine bug must end the task, not leave it RUNNING
            outcome = self._unexpected(task, exc).to_payload()
        finally:
            if requeued:
                status = self.store.requeue(task.id, self.worker_id, self.max_attempts) or status
                self.events.work_available.set()
            else:
                status, ended = self._end(task, status, outcome)
            if status is not TaskStatus.PENDING:  # with the row as written: a waiter here answers from it
                self.events.publish(task.id, TaskEvent("done", 100, record=ended))
        log.info("task %s %s in %.2fs", task.id, status.value, time.monotonic() - started)
        if self.on_finished:
            self.on_finished(task, status)

    @staticmethod
    def _unexpected(task: TaskRecord, exc: Exception) -> ApiError:
        if is_disk_full(exc):  # e.g. a progress write to a database on a full disk
            full = storage_full("the task's progress")
            log.error("task %s: %s (%s)", task.id, full.message, exc)
            return full
        log.exception("task %s failed", task.id)
        return InternalError(f"generation failed: {type(exc).__name__}: {exc}", code="InternalError.Algo",
                             should_retry=False)

    def _end(self, task: TaskRecord, status: TaskStatus, outcome: str | None) -> tuple[TaskStatus, TaskRecord | None]:
        """Write the task's outcome. When that write fails (a full disk, a database gone), the
        in-process waiters are told at once that the task failed, and the worker keeps trying to
        record FAILED (a smaller write) every FINISH_RETRY_INTERVAL until it can or it is
        stopped, taking no other task meanwhile: the task ends FAILED as soon as the database
        takes writes again, and a stopped worker's row goes stale, so recovery takes the task.
        Returns the status and the row as written (None when it was not)."""
        try:
            ended = self.store.finish(task.id, self.worker_id, status, outcome)
            if ended is None:
                log.warning("task %s was taken from worker %s before it finished", task.id, self.worker_id)
            return status, ended
        except Exception as exc:
            error = storage_full("the task's outcome") if is_disk_full(exc) else InternalError(
                f"the task's outcome could not be recorded: {type(exc).__name__}", code="InternalError.Store",
                should_retry=False)
            log.error("task %s: %s (%s)", task.id, error.message, exc)
        self.events.publish(task.id, TaskEvent("failed", 100, error=error))
        while not self._stop.wait(FINISH_RETRY_INTERVAL):
            try:
                self.store.finish(task.id, self.worker_id, TaskStatus.FAILED, error.to_payload())
                log.info("task %s: FAILED recorded after the first write failed", task.id)
                break
            except Exception as exc:
                log.debug("task %s: outcome still not recorded (%s)", task.id, exc)
        return TaskStatus.FAILED, None
