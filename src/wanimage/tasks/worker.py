"""The worker loop: claim -> load inputs -> (plan) -> generate -> post-process -> store -> finish.

Workers are threads in the server process by default (`Worker.start`); the same `run_one` is what
a stand-alone worker process or a Ray replica calls. Every outcome ends the task: SUCCEEDED,
FAILED with a code and message, or CANCELED. Nothing is left RUNNING by an exception."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable

from PIL import Image

from ..core.inputs import decode_image
from ..core.job import build_job, check_geometry
from ..core.postprocess import add_watermark, apply_palette, encode_png
from ..core.request import GenerationRequest
from ..engines.base import Canceled, EngineLost, PreviewFn
from ..engines.registry import EngineRegistry
from ..errors import ApiError
from ..storage.base import ImageStore
from ..thinking import Brief, Plan, Planner
from .events import TaskEvent, TaskEvents
from .records import TaskContext, TaskRecord, TaskResult, TaskStatus
from .store import TaskStore

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL = 0.5  # seconds between progress writes to the store
CANCEL_POLL_INTERVAL = 0.5  # seconds between cancel checks in the store (other processes)
PREVIEW_SHARE_INTERVAL = 0.5  # seconds between partial images left in the store for another process
PALETTE_STRENGTH = 0.5


def load_inputs(store: ImageStore, refs: list[str]) -> list[Image.Image]:
    """Input images were stored at submit as `input://KEY`; decode them again here."""
    images = []
    for position, ref in enumerate(refs, start=1):
        key = ref.removeprefix("input://")
        images.append(decode_image(store.read(key), position).image)
    return images


def finish_image(image: Image.Image, req: GenerationRequest, level: int) -> bytes:
    """Palette transfer, watermark, PNG: the same for every engine."""
    if req.color_palette:
        image = apply_palette(image, [e.to_color() for e in req.color_palette], strength=PALETTE_STRENGTH)
    if req.watermark:
        image = add_watermark(image)
    return encode_png(image, level)


PhaseObserver = Callable[[str, float], None]


class _PhaseClock:
    """Time spent per phase of a task (queued, planning, generating, encoding, storing), for metrics."""

    def __init__(self, observe: PhaseObserver | None) -> None:
        self.observe = observe
        self.mark = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        if self.observe:
            self.observe(phase, now - self.mark)
        self.mark = now


class _Progress:
    """The ProgressFn handed to engines for one task: reports progress and partial images,
    and raises Canceled once the task is canceled (here or through the store)."""

    def __init__(self, worker: Worker, task: TaskRecord) -> None:
        self.worker, self.task = worker, task
        # For engines in other processes (Ray replicas), which report and check cancels themselves.
        self.context = TaskContext(task.id, worker.worker_id, worker.store.url)
        self._last_write = self._last_shared_preview = 0.0
        self._last_cancel_check = time.monotonic()

    def __call__(self, fraction: float, preview: PreviewFn | None = None) -> None:
        events, store, task_id = self.worker.events, self.worker.store, self.task.id
        t = time.monotonic()
        if events.is_canceled(task_id):
            raise Canceled
        if t - self._last_cancel_check > CANCEL_POLL_INTERVAL:
            self._last_cancel_check = t
            if store.cancel_requested(task_id):
                raise Canceled
        pct = int(max(0.0, min(1.0, fraction)) * 100)
        here = events.wants_previews(task_id)  # a stream in this process listens
        # A stream asked for partial images but listens in another process: leave them in the store.
        share = (not here and self.task.wants_previews and pct < 100
                 and t - self._last_shared_preview > PREVIEW_SHARE_INTERVAL)
        previews = preview() if preview is not None and (here or share) else []
        events.publish(task_id, TaskEvent("progress", pct, previews if here else []))
        if share and previews:
            self._last_shared_preview = t
            self.worker.share_preview(task_id, previews[0], pct)
        if t - self._last_write > PROGRESS_WRITE_INTERVAL:
            self._last_write = t
            store.heartbeat(task_id, self.worker.worker_id, pct)


class Worker:
    def __init__(
        self,
        store: TaskStore,
        images: ImageStore,
        engines: EngineRegistry,
        events: TaskEvents,
        *,
        png_level: int = 1,
        heartbeat_seconds: float = 5.0,
        max_attempts: int = 2,
        name: str | None = None,
        on_finished: Callable[[TaskRecord, TaskStatus, int], None] | None = None,
        on_phase: PhaseObserver | None = None,
        planner: Planner | None = None,  # thinking mode; None: prompts go to the engine as given
    ) -> None:
        self.store, self.images, self.engines, self.events = store, images, engines, events
        self.png_level = png_level
        self.heartbeat_seconds = heartbeat_seconds
        self.max_attempts = max_attempts
        self.worker_id = name or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.on_finished = on_finished
        self.on_phase = on_phase
        self.planner = planner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ loop

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name=f"worker-{self.worker_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.events.work_available.set()
        if self._thread:
            self._thread.join(timeout)

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_one()
            except Exception:  # the store itself failed (e.g. database down): back off, go on
                log.exception("worker %s: claim failed", self.worker_id)
                worked = False
                time.sleep(1.0)
            if not worked:
                self.events.work_available.wait(0.5)
                self.events.work_available.clear()

    def run_one(self) -> bool:
        task = self.store.claim(self.worker_id)
        if task is None:
            return False
        if self.on_phase and task.scheduled_time is not None:
            self.on_phase("queued", task.scheduled_time - task.submit_time)
        beat = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(task.id, beat), daemon=True)
        heart.start()
        try:
            self._run(task)
        finally:
            beat.set()
            self.events.forget(task.id)
        return True

    def _heartbeat(self, task_id: str, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_seconds):
            try:
                self.store.heartbeat(task_id, self.worker_id)
            except Exception:
                log.exception("heartbeat failed for %s", task_id)

    # ------------------------------------------------------------ one task

    def _run(self, task: TaskRecord) -> None:
        started = time.monotonic()
        status, result, code, message = TaskStatus.FAILED, None, None, None
        requeued = False
        try:
            result = self._generate(task)
            status = TaskStatus.SUCCEEDED
        except EngineLost as exc:
            log.warning("task %s: engine lost (%s); giving the task back to the queue", task.id, exc)
            requeued = True
        except Canceled:
            status, code, message = TaskStatus.CANCELED, "Canceled", "the task was canceled while it ran"
        except ApiError as exc:
            code, message = exc.code, exc.message
        except Exception as exc:  # an engine bug must end the task, not leave it RUNNING
            log.exception("task %s failed", task.id)
            code, message = "InternalError.Algo", f"generation failed: {type(exc).__name__}: {exc}"
        finally:
            if requeued:
                status = self.store.requeue(task.id, self.worker_id, self.max_attempts) or status
                self.events.work_available.set()
            elif not self.store.finish(task.id, self.worker_id, status, result=result, code=code, message=message):
                log.warning("task %s was taken from worker %s before it finished", task.id, self.worker_id)
            if status is not TaskStatus.PENDING:
                self.events.publish(task.id, TaskEvent("done", 100))
        log.info("task %s %s in %.2fs", task.id, status.value, time.monotonic() - started)
        if self.on_finished:
            self.on_finished(task, status, len(result.images) if result else 0)

    def _generate(self, task: TaskRecord) -> TaskResult:
        req = GenerationRequest.from_json(task.request)
        engine = self.engines.get(req.model)
        clock = _PhaseClock(self.on_phase)
        inputs = load_inputs(self.images, list(req.images))
        plan = self._plan(task, req, inputs)  # thinking mode: None when it does not apply
        job = build_job(req, inputs, prompt=plan.revised_prompt if plan else None,
                        layout=plan.layout if plan else None)
        revised_prompt = job.prompt
        clock.lap("planning")
        outputs = engine.generate(job, _Progress(self, task))
        clock.lap("generating")
        if not outputs:
            raise ApiError("the engine produced no image", status=500, code="InternalError.Algo")
        keys = []
        for image in outputs:
            if image.size != (job.width, job.height):  # engines must honour the size; be exact anyway
                image = image.resize((job.width, job.height), Image.Resampling.LANCZOS)
            png = finish_image(image, req, self.png_level)
            clock.lap("encoding")
            keys.append(self.images.put(png, prefix="results"))
            clock.lap("storing")
        return TaskResult(
            images=keys,
            size=f"{job.width}*{job.height}",
            prompt=req.prompt,
            revised_prompt=revised_prompt,
            seed=req.seed,
            sequential=req.enable_sequential,
            planner=plan.planner if plan else None,
        )

    def share_preview(self, task_id: str, image: Image.Image, progress: int) -> None:
        """Leave a partial image where a stream in another process finds it (its key in the task
        row, the PNG in the image store). Best effort: a failure costs a preview, never the task."""
        try:
            key = f"previews/{task_id}/{progress:03d}.png"
            self.images.put_named(key, encode_png(image.convert("RGB"), 1))
            self.store.put_preview(task_id, self.worker_id, key, progress)
        except Exception:
            log.warning("task %s: could not share a partial image", task_id, exc_info=True)

    def _plan(self, task: TaskRecord, req: GenerationRequest, inputs: list[Image.Image]) -> Plan | None:
        """Thinking mode (pure text-to-image only). Image sets keep the prompt as given: engines
        split "image 1: ... image 2: ..." themselves and have no per-image layout input."""
        if self.planner is None or not req.thinking_applies:
            return None
        started = time.monotonic()
        width, height = check_geometry(req, [im.size for im in inputs])
        try:
            plan = self.planner.plan(Brief(req.prompt, width, height, n=req.n, sequential=req.enable_sequential))
        except Exception:  # planners never raise by contract; a bug still must not fail the task
            log.exception("task %s: thinking planner failed; the prompt goes on as given", task.id)
            return None
        log.info("task %s: thinking planner=%s in %.3fs (%d layout boxes)%s", task.id, plan.planner,
                 time.monotonic() - started, len(plan.layout or []), f"; {plan.note}" if plan.note else "")
        return plan
