"""ImageService: the only thing route handlers call. Submit, generate (the sync call), stream,
get, cancel, list, files. Everything it returns is core's: `Task` views, never queue rows.

It owns the task store, the image store, the engine registry, the pipeline and the in-process
workers (each a queue `Worker` whose handler is the `TaskPipeline`), and is built once at start-up
by `ImageService.from_settings` (or from parts, in tests)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from PIL import Image

from ..config import Settings
from ..engines.registry import EngineRegistry
from ..errors import (
    ApiError,
    StorageFull,
    Throttling,
    UnsupportedOperation,
)
from ..storage import ImageStore, open_image_store
from ..tasks.events import Subscription, TaskEvent, TaskEvents
from ..tasks.records import QueueFull, TaskRecord
from ..tasks.store import TaskStore
from ..tasks.worker import Worker
from ..thinking import build_planner
from ..types import TaskStatus
from .decoding import DECODED_SUFFIX, InputImage, decoded_png
from .files import UPLOAD_PREFIX, Files
from .following import TaskFollower
from .inputs import ImageFetcher
from .job import resolve_job
from .pipeline import Pipeline, TaskPipeline
from .postprocess import encode_png
from .provenance import Provenance
from .request import GenerationRequest
from .store_guard import check_filter, is_task_id, store_errors
from .task import Origin, Submission, Task
from .tenants import ANYONE, Tenant

log = logging.getLogger(__name__)

DISCONNECT_POLL_SECONDS = 0.5  # how often a sync call asks whether its client is still there


@dataclass
class TaskPage:
    tasks: list[Task]
    total: int
    page_no: int
    page_size: int


class ImageService:
    def __init__(
        self,
        settings: Settings,
        store: TaskStore,
        images: ImageStore,
        engines: EngineRegistry,
        *,
        fetcher: ImageFetcher | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.images = images
        self.engines = engines
        # Thinking mode: one planner shared by the workers.
        self.pipeline = Pipeline(engines, planner=build_planner(settings), png_level=settings.png_compress_level,
                                 provenance=Provenance.from_settings(settings))  # marks on every PNG
        self.events = TaskEvents()
        self.follower = TaskFollower(store, images, self.events)
        self.files = Files(images, public_base_url=settings.public_base_url,
                           upload_ttl_seconds=settings.upload_ttl_seconds)
        self.fetcher = fetcher or ImageFetcher(settings, resolve_upload=self.files.read_upload)
        self.workers: list[Worker] = []
        self.images_made = 0  # read by metrics
        self.on_phase: Callable[[str, float], None] | None = None  # set by the app: phase timings
        self.on_images: Callable[[int], None] | None = None
        self._maintenance: asyncio.Task | None = None

    @classmethod
    def from_settings(cls, settings: Settings, engines: EngineRegistry) -> ImageService:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = TaskStore(settings.resolved_database_url())
        images = open_image_store(settings)
        return cls(settings, store, images, engines)

    # ------------------------------------------------------------ lifecycle

    async def start(self, workers: int | None = None) -> None:
        """Recover what a previous run left behind, start workers and the maintenance loop."""
        self.recover()
        self.purge_expired()
        count = self.settings.workers if workers is None else workers
        if count:  # WANIMAGE_DEVICES: at least one worker per device (engines/devices.py)
            count = max(count, len(self.settings.device_list()))
        handler = TaskPipeline(self.pipeline, self.store, self.images, self.events, on_phase=self._observe_phase,
                               on_images=self._count_images, on_stored=self.files.recent.add)
        for i in range(count):
            worker = Worker(
                self.store,
                handler,
                self.events,
                heartbeat_seconds=self.settings.heartbeat_seconds,
                max_attempts=self.settings.max_attempts,
            )
            worker.start()
            self.workers.append(worker)
            log.info("worker %d started (%s)", i + 1, worker.worker_id)
        self._maintenance = asyncio.create_task(self._maintain())

    async def stop(self) -> None:
        if self._maintenance:
            self._maintenance.cancel()
        for worker in self.workers:
            await asyncio.to_thread(worker.stop)
        self.workers.clear()
        self.store.close()

    def recover(self) -> tuple[int, int]:
        """Re-queue (or fail) RUNNING tasks whose worker is gone: its heartbeat row is older than
        `stale_after_seconds` (a crash, SIGKILL, a lost host)."""
        result = self.store.recover_stale(self.settings.stale_after_seconds, self.settings.max_attempts)
        if result[0]:
            self.events.work_available.set()
        return result

    def purge_expired(self, now: float | None = None) -> int:
        """Delete tasks and images older than the result TTL; returns the number of tasks."""
        now = time.time() if now is None else now
        ids = self.store.purge(now - self.settings.result_ttl_seconds)
        self.images.purge_older_than(self.settings.result_ttl_seconds, now=now, skip=(UPLOAD_PREFIX,))
        # SDK uploads live 48 h (the official temporary-file lifetime), longer than results
        self.images.purge_older_than(self.settings.upload_ttl_seconds, now=now, prefix=UPLOAD_PREFIX)
        return len(ids)

    async def _maintain(self) -> None:
        """Recovery twice per `stale_after_seconds` (a dead worker's task waits at most 1.5 times
        that); retention every min(retention interval, stale_after_seconds). The loop wakes for
        whichever is due first, so a short retention interval is honoured too."""
        every = {"recover": self.settings.stale_after_seconds / 2,
                 "purge": min(self.settings.retention_interval_seconds, self.settings.stale_after_seconds)}
        passes = {"recover": self.recover, "purge": self.purge_expired}
        due = {name: time.monotonic() + seconds for name, seconds in every.items()}
        while True:
            await asyncio.sleep(max(0.0, min(due.values()) - time.monotonic()))
            for name in passes:
                if time.monotonic() < due[name]:
                    continue
                due[name] = time.monotonic() + every[name]
                try:
                    await asyncio.to_thread(passes[name])
                except Exception:
                    log.exception("maintenance pass %s failed", name)

    def _observe_phase(self, phase: str, seconds: float) -> None:
        if self.on_phase:
            self.on_phase(phase, seconds)

    def _count_images(self, count: int) -> None:
        self.images_made += count
        if self.on_images:
            self.on_images(count)

    # ------------------------------------------------------------ submit

    async def submit(
        self,
        req: GenerationRequest,
        origin: Origin,
        *,
        task_id: str | None = None,
        previews: bool = False,
        tenant: Tenant = ANYONE,
    ) -> Task:
        """Fetch the inputs, check every remaining rule and resolve the job, store the inputs,
        queue the task. The queue limit is checked first (a full queue costs no fetch) and again,
        atomically, by the insert. Each thread hop costs a sync call about a millisecond on a busy
        machine, so the checks share one hop, and the insert wakes the workers from its own; with
        no input image to fetch, checks, job and insert share one hop."""
        task_id = task_id or str(uuid.uuid4())
        create = partial(self._queue, task_id, wants_previews=previews, max_pending=self.settings.max_queue,
                         owner=tenant.key_id)
        if not req.images:
            try:
                with store_errors():
                    record = await asyncio.to_thread(self._admit_and_queue, req, origin, create)
            except QueueFull:
                raise self._queue_full() from None
            return Task.of(record)
        engine = await asyncio.to_thread(self._admit, req.model)
        inputs = await self.fetcher.fetch_all(list(req.images))
        refs = tuple(f"input://inputs/{task_id}/{item.position}.{item.format.lower()}" for item in inputs)
        job = resolve_job(req, [item.image for item in inputs], engine.capabilities, refs)
        await asyncio.to_thread(self._store_inputs, inputs, refs)
        submission = Submission(origin=origin, asked=req.with_images(list(refs)).to_json(), job=job)
        try:
            with store_errors():
                record = await asyncio.to_thread(create, req.model, submission.to_payload())
        except QueueFull:
            await asyncio.to_thread(self.images.delete_prefix, f"inputs/{task_id}")
            raise self._queue_full() from None
        return Task.of(record)

    def _admit_and_queue(self, req: GenerationRequest, origin: Origin,
                         create: Callable[[str, str], TaskRecord]) -> TaskRecord:
        """A request without input images, from its engine to its queued row in one thread: no
        fetch to spare, so the queue's depth is left to the insert's own atomic check."""
        engine = self._admit(req.model, depth_checked=False)
        job = resolve_job(req, [], engine.capabilities, ())
        return create(req.model, Submission(origin=origin, asked=req.to_json(), job=job).to_payload())

    def _admit(self, model: str, *, depth_checked: bool = True):
        """The engine serving `model`, once the queue has room (a full queue costs no fetch), the
        model is known and available (a first use loads it) and the disk has room."""
        if depth_checked:
            with store_errors():
                depth = self.queue_depth()
            if depth >= self.settings.max_queue:
                raise self._queue_full()
        engine = self.engines.get(model)
        disk = self.disk_status()
        if disk["low"]:
            raise StorageFull(
                f"storage is full: {disk['free_bytes'] // (1024 * 1024)} MiB free in the data directory, below "
                "WANIMAGE_MIN_FREE_DISK_BYTES; free disk space on the server, then retry",
                retry_after=30,
            )
        return engine

    def _queue(self, task_id: str, model: str, payload: str, **options) -> TaskRecord:
        """Insert the task and wake an idle worker at once, from this thread: not after the hop
        back to the event loop."""
        record = self.store.create(task_id, model, payload, **options)
        self.events.work_available.set()
        return record

    def _store_inputs(self, inputs: list[InputImage], refs: tuple[str, ...]) -> None:
        """The client's bytes (provenance hashes them) and, beside them, the pixels as decoded
        here, so the worker never decodes the client's file again."""
        for item, ref in zip(inputs, refs, strict=True):
            key = ref.removeprefix("input://")
            self.images.put_named(key, item.data)
            self.images.put_named(key + DECODED_SUFFIX, decoded_png(item.image))

    def _queue_full(self) -> Throttling:
        return Throttling(
            f"the queue is full ({self.settings.max_queue} tasks waiting, WANIMAGE_MAX_QUEUE); "
            "retry in a few seconds",
            retry_after=5,
        )

    # ------------------------------------------------------------ the sync call, wait and stream

    async def generate(self, req: GenerationRequest, origin: Origin, *, tenant: Tenant = ANYONE,
                       hung_up: Callable[[], Awaitable[bool]] | None = None) -> Task:
        """A sync call: submit, follow the task to its end and return it SUCCEEDED, or raise the
        error its caller receives. `hung_up` (asked every DISCONNECT_POLL_SECONDS) tells that the
        client went away: the task is canceled, since nobody is left to receive its images.
        The end is awaited on a subscription made before the task exists, so it cannot be
        missed and no read of the store is needed to start following."""
        task_id = str(uuid.uuid4())
        sub = self.events.subscribe(task_id, progress=False)
        try:
            task = await self.submit(req, origin, task_id=task_id, tenant=tenant)
        except BaseException:
            self.events.unsubscribe(sub)
            raise
        waiting = asyncio.ensure_future(self._ended(sub, self.settings.sync_timeout_seconds, read_first=False))
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=DISCONNECT_POLL_SECONDS)
                if done:
                    return self.succeeded(waiting.result())
                if hung_up is not None and await hung_up():
                    self.abandon(task.id)
                    raise ApiError("the client closed the connection; the task was canceled",
                                   status=499, code="Canceled")
        finally:
            waiting.cancel()
            self.events.unsubscribe(sub)  # the follower does it too, unless canceled before it ran

    @staticmethod
    def succeeded(task: Task | None) -> Task:
        """The task, when it SUCCEEDED; otherwise the error a sync or streaming caller receives."""
        if task is None:
            raise ApiError("the task expired before it could be answered", status=500, code="InternalError")
        if task.status is not TaskStatus.SUCCEEDED or task.result is None:
            raise task.failure()
        return task

    async def finished(self, task_id: str) -> Task:
        """A followed task once it ended (a stream's last frame): SUCCEEDED, or the error raised."""
        return self.succeeded(await asyncio.to_thread(self.get, task_id))

    def abandon(self, task_id: str) -> None:
        """The client of a sync or streaming request hung up before its task ended: nobody is left
        to receive the images (those requests never tell the task id), so stop spending the engine
        on it. It runs while the request's coroutine is being cancelled, where nothing can be
        awaited: the cancel (a store write) is handed to a thread, off the event loop."""
        asyncio.get_running_loop().run_in_executor(None, self._cancel_abandoned, task_id)

    def _cancel_abandoned(self, task_id: str) -> None:
        try:
            task = self.cancel(task_id)
        except ApiError:  # it ended meanwhile: nothing to stop
            return
        if task is not None:
            log.info("task %s: the client went away before the end; task %s", task_id, task.status.value)

    async def wait(self, task_id: str, timeout: float | None = None) -> Task:
        timeout = self.settings.sync_timeout_seconds if timeout is None else timeout
        return await self._ended(self.events.subscribe(task_id, progress=False), timeout)

    async def _ended(self, sub: Subscription, timeout: float, *, read_first: bool = True) -> Task:
        """The task once it ended: its row as the end event of a worker here carried it, or
        read from the store (a worker elsewhere)."""
        async for _ in self.follower.events(sub, timeout, read_first=read_first):
            pass
        record = sub.ended
        if record is None:
            with store_errors():
                record = await asyncio.to_thread(self.store.get, sub.task_id)
        assert record is not None
        return Task.of(record)

    async def submit_and_follow(
        self, req: GenerationRequest, origin: Origin, *, previews: bool = False, tenant: Tenant = ANYONE
    ) -> tuple[Task, AsyncIterator[TaskEvent]]:
        """Submit and stream the task's events from its very first step: the subscription exists
        before the task does, so a fast worker cannot run steps (or skip previews) unseen."""
        task_id = str(uuid.uuid4())
        sub = self.events.subscribe(task_id, previews=previews)
        try:
            task = await self.submit(req, origin, task_id=task_id, previews=previews, tenant=tenant)
        except BaseException:
            self.events.unsubscribe(sub)
            raise
        return task, self.follower.events(sub, self.settings.sync_timeout_seconds)

    def follow(
        self, task_id: str, *, timeout: float | None = None, previews: bool = False, progress: bool = True
    ) -> AsyncIterator[TaskEvent]:
        """Yield progress events (with partial images when `previews`) until the task ends;
        with `progress` False, only wait for the end."""
        timeout = self.settings.sync_timeout_seconds if timeout is None else timeout
        return self.follower.events(self.events.subscribe(task_id, previews=previews, progress=progress), timeout)

    def follow_progress(self, task_id: str, events: AsyncIterator[TaskEvent]) -> AsyncIterator[int]:
        """Each new progress value of a followed task (DashScope SSE frames), whichever process
        runs it."""
        return self.follower.progress(task_id, events)

    # ------------------------------------------------------------ queries

    def get(self, task_id: str, tenant: Tenant = ANYONE) -> Task | None:
        """The task, or None when it is unknown, expired or another key's (UNKNOWN on the wire:
        a key cannot even learn that another key's task exists)."""
        record = self._record(task_id, tenant)
        return None if record is None else Task.of(record)

    def _record(self, task_id: str, tenant: Tenant) -> TaskRecord | None:
        if not is_task_id(task_id):
            return None
        with store_errors():
            record = self.store.get(task_id)
        if record is None or record.submit_time < time.time() - self.settings.result_ttl_seconds:
            return None
        return record if tenant.owns(record.owner) else None

    def cancel(self, task_id: str, tenant: Tenant = ANYONE) -> Task | None:
        """PENDING: canceled at once. RUNNING: stops at the next step (a wanimage extension)."""
        record = self._record(task_id, tenant)
        if record is None:
            return None
        if record.status.terminal and record.status is not TaskStatus.CANCELED:
            raise UnsupportedOperation(
                f"task {task_id} is {record.status.value}; only PENDING or RUNNING tasks can be canceled",
                field="task_id",
            )
        with store_errors():
            status = self.store.cancel(task_id)
            if status is TaskStatus.RUNNING:
                self.events.request_cancel(task_id)
            record = self.store.get(task_id)
        return None if record is None else Task.of(record)

    def list(
        self,
        *,
        page_no: int = 1,
        page_size: int = 10,
        status: TaskStatus | None = None,
        model: str | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
        tenant: Tenant = ANYONE,
    ) -> TaskPage:
        check_filter("model_name", model)
        with store_errors():
            records, total = self.store.list(
                page_no=page_no, page_size=page_size, status=status, tag=model, start_time=start_time,
                end_time=end_time, owner=tenant.list_owner,
            )
        return TaskPage([Task.of(r) for r in records], total, page_no, page_size)

    def queue_depth(self) -> int:
        return self.store.count(TaskStatus.PENDING)

    # ------------------------------------------------------------ what else the routers need
    # Each is a method here, so no handler reaches a store (files and uploads: `self.files`).

    def preview_png(self, image: Image.Image) -> bytes:
        """A partial image of a stream as PNG, at the fastest compression: it is shown once."""
        return encode_png(image, 1)

    def disk_status(self) -> dict:
        """Free space where the task database and local images live; `low` below the setting."""
        try:
            free = shutil.disk_usage(self.settings.data_dir).free
        except OSError:
            return {"free_bytes": None, "low": False}
        return {"free_bytes": free, "low": free < self.settings.min_free_disk_bytes}

    def running_count(self) -> int:
        return self.store.count(TaskStatus.RUNNING)

    def worker_count(self) -> int:
        return len(self.workers)

    def presets(self) -> tuple[list, dict]:
        """The model presets `wanimage pull` knows, and their checkpoints by repository id."""
        from ..engines.diffusers.presets import PRESETS, REPOS  # tables only: no diffusers import

        return list(PRESETS.values()), REPOS

    @property
    def served_ids(self) -> tuple[str, ...]:
        """The model ids an engine is configured for, in the catalogue's order."""
        return tuple(self.engines.models)

    def models(self) -> list[dict]:
        """One row per model id: its engine, whether it loaded, the load error, its modes."""
        return self.engines.describe()
