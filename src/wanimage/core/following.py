"""Following a task to its end: the events of a worker in this process, the task store for a
worker anywhere else (its progress and its latest partial image), a deadline, and the failure
of a task whose outcome could not be recorded."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator

from PIL import Image

from ..errors import ApiError
from ..storage import ImageStore
from ..tasks.events import Subscription, TaskEvent, TaskEvents
from ..tasks.store import TaskStore
from .store_guard import store_errors

log = logging.getLogger(__name__)

STORE_POLL_SECONDS = 0.5  # how often a waiter re-reads the store (tasks run by other processes)


class WaitTimeout(ApiError):
    status, code = 504, "RequestTimeOut"


class TaskFollower:
    def __init__(self, store: TaskStore, images: ImageStore, events: TaskEvents) -> None:
        self.store, self.images, self.bus = store, images, events

    async def events(self, sub: Subscription, timeout: float, *, read_first: bool = True) -> AsyncIterator[TaskEvent]:
        """Yield the subscription's progress events (with partial images when it wants them)
        until the task ends; WaitTimeout past `timeout` seconds. Ends the subscription. The
        task's row at its end is left in `sub.ended` when it came without a read of the store
        (with the end event of a worker in this process, or from the read that found it ended).
        `read_first` False: the subscription was made before the task existed, so a worker here
        cannot end it unseen and the store is read only after STORE_POLL_SECONDS of quiet."""
        try:
            async for event in self._events(sub, timeout, read_first):
                yield event
        finally:
            self.bus.unsubscribe(sub)

    async def _events(self, sub: Subscription, timeout: float, read_first: bool) -> AsyncIterator[TaskEvent]:
        task_id = sub.task_id
        deadline = time.monotonic() + timeout
        shared = -1  # progress of the last partial image taken from the store
        read_store = read_first
        while True:
            # The store is read first (unless `read_first` is False) and whenever no event came for
            # STORE_POLL_SECONDS (a worker in another process), not after each event of a worker
            # here: a 30-step engine's events cost a database read each (1.1 ms of server CPU per
            # step, measured).
            if read_store:
                with store_errors():
                    record = await asyncio.to_thread(self.store.get, task_id)
                if sub.previews and record is not None and record.preview_key and (record.preview_progress or 0) > shared:
                    # run by a worker in another process, which left its latest partial image
                    shared = record.preview_progress or 0
                    image = await asyncio.to_thread(self._shared_preview, record.preview_key)
                    if image is not None:
                        yield TaskEvent("progress", shared, [image])
                if record is None or record.status.terminal:
                    sub.ended = record
                    # Events published before the store said "ended" are still owed to the caller.
                    while not sub.queue.empty():
                        event = sub.queue.get_nowait()
                        if event.kind not in ("done", "failed"):
                            yield event
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(
                    f"the task {task_id} did not finish within {timeout:.0f} s; it goes on: "
                    "poll GET /api/v1/tasks/{task_id}",
                    should_retry=False,
                )
            try:
                event = await asyncio.wait_for(sub.queue.get(), min(remaining, STORE_POLL_SECONDS))
            except TimeoutError:
                read_store = True
                continue
            read_store = False
            if event.kind == "done":
                sub.ended = event.record
                return
            if event.kind == "failed":  # its row could not be written: the waiter hears it here
                raise event.error or ApiError("the task failed", status=500, code="InternalError", should_retry=False)
            yield event

    async def progress(self, task_id: str, events: AsyncIterator[TaskEvent]) -> AsyncIterator[int]:
        """Each new progress value (0-100) of a followed task until it ends, whether its worker
        runs in this process (its events) or in another (the progress the store has, read every
        STORE_POLL_SECONDS). Errors of `events` (a timeout, an unrecorded failure) propagate."""
        inbox: asyncio.Queue[TaskEvent | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for event in events:
                    inbox.put_nowait(event)
            finally:
                inbox.put_nowait(None)

        pumping = asyncio.ensure_future(pump())
        last = 0
        try:
            while True:
                try:
                    event = await asyncio.wait_for(inbox.get(), STORE_POLL_SECONDS)
                except TimeoutError:
                    with store_errors():
                        record = await asyncio.to_thread(self.store.get, task_id)
                    event = TaskEvent("progress", record.progress) if record is not None else None
                    if event is None or record.status.terminal:
                        continue  # the pump ends with the task
                if event is None:
                    await pumping  # raises what `events` raised
                    return
                if event.kind == "progress" and event.progress > last:
                    last = event.progress
                    yield last
        finally:
            pumping.cancel()

    def _shared_preview(self, key: str) -> Image.Image | None:
        try:
            image = Image.open(io.BytesIO(self.images.read(key)))
            image.load()
            return image
        except Exception:  # purged or unreadable: a stream does without this preview
            log.warning("partial image %s could not be read", key, exc_info=True)
            return None
