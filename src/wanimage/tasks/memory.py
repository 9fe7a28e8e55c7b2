"""InMemoryTaskStore: the TaskStore's twin in a dict, for unit tests of workers and the pipeline
(procrastinate's `InMemoryConnector` habit). Same methods, same rules, one lock; nothing is
persisted. `tests/unit/test_store.py` runs the same contract against both stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .records import QueueFull, TaskRecord, TaskStatus, engine_lost, worker_lost


class InMemoryTaskStore:
    url = "memory://"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskRecord] = {}
        self._heartbeats: dict[str, float] = {}  # task id -> last progress write
        self._workers: dict[str, float] = {}  # worker id -> last heartbeat

    def close(self) -> None:
        pass

    # ------------------------------------------------------------ create / read

    def create(
        self,
        task_id: str,
        tag: str,
        payload: str,
        *,
        wants_previews: bool = False,
        max_pending: int | None = None,
        owner: str | None = None,
    ) -> TaskRecord:
        record = TaskRecord(task_id, TaskStatus.PENDING, tag, payload, self.clock(),
                            wants_previews=wants_previews, owner=owner)
        with self._lock:
            if task_id in self._tasks:
                raise KeyError(f"task {task_id} exists")
            if max_pending is not None and sum(t.status is TaskStatus.PENDING for t in self._tasks.values()) >= max_pending:
                raise QueueFull(max_pending)
            self._tasks[task_id] = record
        return record

    def get(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            return self._tasks.get(task_id)

    def count(self, status: TaskStatus) -> int:
        with self._lock:
            return sum(t.status is status for t in self._tasks.values())

    def list(
        self,
        *,
        page_no: int,
        page_size: int,
        status: TaskStatus | None = None,
        tag: str | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
        owner: str | None = None,
    ) -> tuple[list[TaskRecord], int]:
        with self._lock:
            rows = [t for t in self._tasks.values()
                    if (status is None or t.status is status) and (not tag or t.tag == tag)
                    and (owner is None or t.owner == owner)
                    and (start_time is None or t.submit_time >= start_time)
                    and (end_time is None or t.submit_time <= end_time)]
        rows.sort(key=lambda t: t.submit_time, reverse=True)
        start = (page_no - 1) * page_size
        return rows[start : start + page_size], len(rows)

    # ------------------------------------------------------------ worker side

    def _held(self, task_id: str, worker_id: str) -> TaskRecord | None:
        task = self._tasks.get(task_id)
        held = task is not None and task.worker_id == worker_id and task.status is TaskStatus.RUNNING
        return task if held else None

    def _set(self, task: TaskRecord, **values: Any) -> TaskRecord:
        self._tasks[task.id] = updated = replace(task, **values)
        return updated

    def claim(self, worker_id: str) -> TaskRecord | None:
        with self._lock:
            pending = [t for t in self._tasks.values() if t.status is TaskStatus.PENDING]
            if not pending:
                return None
            task = min(pending, key=lambda t: t.submit_time)
            t = self.clock()
            self._heartbeats[task.id] = t
            return self._set(task, status=TaskStatus.RUNNING, worker_id=worker_id, scheduled_time=t, progress=0,
                             preview_key=None, preview_progress=None, attempts=task.attempts + 1)

    def report_progress(self, task_id: str, worker_id: str, progress: int) -> bool:
        with self._lock:
            task = self._held(task_id, worker_id)
            if task is None:
                return False
            self._heartbeats[task_id] = self.clock()
            self._set(task, progress=max(0, min(100, progress)))
            return True

    def put_preview(self, task_id: str, worker_id: str, key: str, progress: int) -> bool:
        with self._lock:
            task = self._held(task_id, worker_id)
            if task is not None:
                self._set(task, preview_key=key, preview_progress=progress)
            return task is not None

    def cancel_requested(self, task_id: str) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            return bool(task and task.cancel_requested)

    def finish(
        self,
        task_id: str,
        worker_id: str,
        status: TaskStatus,
        outcome: str | None = None,
    ) -> TaskRecord | None:
        with self._lock:
            task = self._held(task_id, worker_id)
            if task is None:
                return None
            progress = 100 if status is TaskStatus.SUCCEEDED else task.progress
            return self._set(task, status=status, end_time=self.clock(), progress=progress, outcome=outcome)

    def requeue(self, task_id: str, worker_id: str, max_attempts: int) -> TaskStatus | None:
        with self._lock:
            task = self._held(task_id, worker_id)
            if task is None:
                return None
            if task.attempts < max_attempts:
                self._set(task, status=TaskStatus.PENDING, worker_id=None, progress=0)
                return TaskStatus.PENDING
            self._set(task, status=TaskStatus.FAILED, end_time=self.clock(), outcome=engine_lost(max_attempts))
            return TaskStatus.FAILED

    # ------------------------------------------------------------ cancel

    def cancel(self, task_id: str) -> TaskStatus | None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            if task.status is TaskStatus.PENDING:
                return self._set(task, status=TaskStatus.CANCELED, end_time=self.clock()).status
            if task.status is TaskStatus.RUNNING:
                self._set(task, cancel_requested=True)
            return task.status

    # ------------------------------------------------------------ workers, recovery, retention

    def register_worker(self, worker_id: str) -> None:
        with self._lock:
            self._workers[worker_id] = self.clock()

    beat_worker = register_worker

    def unregister_worker(self, worker_id: str) -> None:
        with self._lock:
            self._workers.pop(worker_id, None)

    def live_workers(self, stale_after: float) -> list[str]:
        cutoff = self.clock() - stale_after
        with self._lock:
            return sorted(w for w, t in self._workers.items() if t >= cutoff)

    def recover_stale(self, stale_after: float, max_attempts: int) -> tuple[int, int]:
        cutoff = self.clock() - stale_after
        requeued = failed = 0
        with self._lock:
            for task in list(self._tasks.values()):
                if task.status is not TaskStatus.RUNNING or self._workers.get(task.worker_id or "", -1) >= cutoff:
                    continue
                if task.worker_id not in self._workers and self._heartbeats.get(task.id, 0) >= cutoff:
                    continue  # no worker row: judged by its own last progress write
                if task.cancel_requested:
                    self._set(task, status=TaskStatus.CANCELED, end_time=self.clock())
                elif task.attempts >= max_attempts:
                    failed += 1
                    self._set(task, status=TaskStatus.FAILED, end_time=self.clock(), outcome=worker_lost(max_attempts))
                else:
                    requeued += 1
                    self._set(task, status=TaskStatus.PENDING, worker_id=None, progress=0)
            self._workers = {w: t for w, t in self._workers.items() if t >= cutoff}
        return requeued, failed

    def purge(self, older_than: float) -> list[str]:
        with self._lock:
            ids = [t.id for t in self._tasks.values() if t.submit_time < older_than]
            for task_id in ids:
                del self._tasks[task_id]
                self._heartbeats.pop(task_id, None)
        return ids
