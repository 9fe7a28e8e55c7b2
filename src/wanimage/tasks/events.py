"""In-process signals between workers (threads) and request handlers (asyncio).

Progress, partial images and completion are pushed to subscribers as they happen, so a sync
request returns the moment its task ends. The task store stays the source of truth: handlers
also poll it, which is how tasks run by workers in other processes are seen."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from PIL import Image

from ..errors import ApiError
from .records import TaskRecord


@dataclass(frozen=True)
class TaskEvent:
    kind: str  # "progress" | "done" | "failed" (the task failed and its row could not say so yet)
    progress: int = 0
    previews: list[Image.Image] = field(default_factory=list)
    error: ApiError | None = None  # "failed": the error a waiter answers with
    record: TaskRecord | None = None  # "done": the row as the worker wrote it, so a waiter need not read it


@dataclass(eq=False)
class Subscription:
    task_id: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[TaskEvent]
    previews: bool
    progress: bool = True  # False: only the end ("done", "failed"), as a sync request needs
    ended: TaskRecord | None = None  # the task's row at its end, when its follower got it without a read


class TaskEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, list[Subscription]] = defaultdict(list)
        self._canceled: set[str] = set()
        self._listening: dict[str, int] = {}  # task id -> subscriptions that take progress events
        self.work_available = threading.Event()  # wakes idle workers on submit

    # ---- subscribers (asyncio side)
    def subscribe(self, task_id: str, *, previews: bool = False, progress: bool = True) -> Subscription:
        sub = Subscription(task_id, asyncio.get_running_loop(), asyncio.Queue(), previews, progress)
        with self._lock:
            self._subs[task_id].append(sub)
            if progress:
                self._listening[task_id] = self._listening.get(task_id, 0) + 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.task_id, [])
            if sub in subs:
                subs.remove(sub)
                if sub.progress and self._listening.get(sub.task_id, 0) > 1:
                    self._listening[sub.task_id] -= 1
                elif sub.progress:
                    self._listening.pop(sub.task_id, None)
            if not subs:
                self._subs.pop(sub.task_id, None)

    # ---- publishers (worker threads)
    def listening(self, task_id: str) -> bool:
        """Whether a subscription takes this task's progress events. Asked at every step of an
        engine, so without the lock: one dict lookup, atomic in CPython (a subscription made at
        that very moment hears from the next step)."""
        return task_id in self._listening

    def wants_previews(self, task_id: str) -> bool:
        with self._lock:
            return any(s.previews for s in self._subs.get(task_id, ()))

    def publish(self, task_id: str, event: TaskEvent) -> None:
        with self._lock:
            subs = list(self._subs.get(task_id, ()))
        for sub in subs:
            if event.kind == "progress" and not sub.progress:
                continue  # each event wakes the subscriber's event loop: none it would ignore
            if event.previews and not sub.previews:
                event_for_sub = TaskEvent(event.kind, event.progress)
            else:
                event_for_sub = event
            try:
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, event_for_sub)
            except RuntimeError:  # loop closed: the client went away
                pass

    # ---- cancellation of running tasks in this process
    def request_cancel(self, task_id: str) -> None:
        with self._lock:
            self._canceled.add(task_id)

    def is_canceled(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._canceled

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._canceled.discard(task_id)
