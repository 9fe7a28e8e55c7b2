"""One task's work, in one place: job -> plan -> generate -> finish -> store.

`Pipeline.render` is the whole generation of one resolved job (core/job.py) with its decoded
input images, to finished PNGs; the server's workers (through `TaskPipeline`, the queue's
handler), the Ray API replicas and `wanimage generate` all call it, so the same request and seed
give the same pixels everywhere. `TaskPipeline` adds what a queued task needs around it: the job
loaded from the task's payload, inputs read back from the image store, progress reported through
the task store, results stored."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..engines.base import GenerationJob, ProgressFn
from ..engines.imaging import mask_image
from ..engines.registry import EngineRegistry
from ..errors import ApiError
from ..storage.base import ImageStore
from ..tasks.events import TaskEvents
from ..tasks.records import TaskContext, TaskRecord
from ..thinking import Brief, Planner
from .decoding import BYTES_PER_PIXEL, DECODED_SUFFIX, from_decoded_png, release_after_decoding
from .inputs import decode_image
from .job import resolve_job
from .postprocess import add_watermark, apply_palette, encode_png, label_patch, png_parts
from .progress import ProgressStore, TaskProgress
from .provenance import ImageFacts, Ingredient, Provenance, ingredient_of
from .request import GenerationRequest
from .task import GenerationResult, Submission

log = logging.getLogger(__name__)

PALETTE_STRENGTH = 0.5
PhaseObserver = Callable[[str, float], None]


class PhaseClock:
    """Time spent per phase of a task (queued, planning, generating, encoding, storing), for metrics."""

    def __init__(self, observe: PhaseObserver | None) -> None:
        self.observe = observe
        self.mark = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        if self.observe:
            self.observe(phase, now - self.mark)
        self.mark = now


@dataclass(frozen=True)
class Rendered:
    """A finished generation: PNG bytes in order, and what the API reports with them."""

    pngs: list[bytes]
    width: int
    height: int
    revised_prompt: str  # the prompt itself when thinking mode did not run
    planner: str | None  # which planner ran ("builtin" | "llm"); None: none ran


def edit_region(job: GenerationJob) -> Image.Image | None:
    """For a box edit, the mask ("L", 255 inside) of the output pixels the edit may change: the
    last image's boxes. None for every other mode (the whole image is new)."""
    if not job.edit_boxes or job.sequential:
        return None
    return mask_image(list(job.edit_boxes), job.width, job.height)


def _within(changed: Image.Image, original: Image.Image, region: Image.Image | None) -> Image.Image:
    return changed if region is None else Image.composite(changed, original, region)


def finish_image(image: Image.Image, job: GenerationJob, level: int,
                 provenance: Provenance | None = None, facts: ImageFacts | None = None,
                 region: Image.Image | None = None) -> bytes:
    """Palette transfer, visible label, provenance marks, PNG: the same for every engine and the
    one place result PNGs are written. The invisible watermark goes in after the visible label
    (it covers every pixel); the C2PA manifest last, over the finished file. With a box edit's
    `region`, palette and invisible watermark stay inside the boxes, so every pixel outside them
    is the input's, bit for bit (the visible label, asked for, is drawn where it always is)."""
    if job.palette:
        image = _within(apply_palette(image, list(job.palette), strength=PALETTE_STRENGTH), image, region)
    if provenance is None or facts is None:
        return encode_png(add_watermark(image) if job.watermark else image, level)
    digest, chunks = provenance.digest(), provenance.chunks(facts)
    if region is None and image.mode == "RGB":
        # The marks drawn slice by slice on the PNG writer's threads, and the file hashed for
        # the seal as its slices finish: no pass over the whole image before deflate starts.
        pixels = np.asarray(image)  # (H, W, 3), read-only
        label = label_patch(pixels) if job.watermark else None
        parts = png_parts(pixels, level, chunks, rows=provenance.rows(pixels, label), digest=digest)
    else:
        marked = provenance.mark_pixels(add_watermark(image) if job.watermark else image, region)
        parts = png_parts(marked, level, chunks, digest=digest)
    return provenance.seal(parts, facts, digest)  # joined once, there


class Pipeline:
    def __init__(self, engines: EngineRegistry, *, planner: Planner | None = None, png_level: int = 1,
                 provenance: Provenance | None = None) -> None:
        self.engines = engines
        self.planner = planner  # thinking mode; None: prompts go to the engine as given
        self.png_level = png_level
        self.provenance = provenance  # None: bare PNGs (tests, benchmarks)

    def resolve(self, req: GenerationRequest, images: list[Image.Image]) -> GenerationJob:
        """The job of a checked request and its decoded input images, for the engine serving its
        model (every rule that needs them checked here: core/job.py)."""
        return resolve_job(req, images, self.engines.get(req.model).capabilities)

    def render(self, job: GenerationJob, progress: ProgressFn, clock: PhaseClock | None = None, *,
               task_id: str | None = None, ingredients: tuple[Ingredient, ...] | None = None) -> Rendered:
        """`job` carries its decoded input images. `task_id` names the images in their provenance
        labels (the CLI: a fresh uuid); `ingredients` are the inputs' hashes (default: of their
        decoded pixels)."""
        clock = clock or PhaseClock(None)
        engine = self.engines.get(job.model)
        job = self.plan(job)  # thinking mode: the job as it was when it does not apply
        prepare = getattr(engine, "prepare", None)  # e.g. Chinese in English for a CLIP text encoder
        if prepare is not None:
            job = prepare(job)
        clock.lap("planning")
        outputs = engine.generate(job, progress)
        clock.lap("generating")
        if not outputs:
            raise ApiError("the engine produced no image", status=500, code="InternalError.Algo")
        pngs = []
        task_id = task_id or str(uuid.uuid4())
        if ingredients is None:
            ingredients = tuple(ingredient_of(im.tobytes(), k, "image/x-raw-rgb") for k, im in enumerate(job.images, 1))
        region = edit_region(job)
        drawn = job.revised_prompt or job.prompt
        for index, image in enumerate(outputs, start=1):
            if image.size != (job.width, job.height):  # engines must honour the size; be exact anyway
                image = image.resize((job.width, job.height), Image.Resampling.LANCZOS)
            facts = ImageFacts(task_id, index, job.prompt, drawn, job.seed, job.width, job.height,
                               job.model, engine.name, engine.steps, ingredients)
            pngs.append(finish_image(image, job, self.png_level, self.provenance, facts, region))
        clock.lap("encoding")
        return Rendered(pngs, job.width, job.height, drawn, job.planner)

    def plan(self, job: GenerationJob) -> GenerationJob:
        """Thinking mode (pure text-to-image only: `job.thinking`). Image sets keep the prompt as
        given: their parts were split at submit, and engines have no per-image layout input."""
        if self.planner is None or not job.thinking:
            return job
        started = time.monotonic()
        brief = Brief(job.prompt, job.width, job.height, n=job.n, sequential=job.sequential,
                      effort=job.thinking_effort)
        try:
            plan = self.planner.plan(brief)
        except Exception:  # planners never raise by contract; a bug still must not fail the task
            log.exception("thinking planner failed; the prompt goes on as given")
            return job
        log.info("thinking planner=%s in %.3fs (%d layout boxes)%s", plan.planner, time.monotonic() - started,
                 len(plan.layout or []), f"; {plan.note}" if plan.note else "")
        return job.planned(plan.revised_prompt, plan.layout, plan.planner)


def load_inputs(images: ImageStore, refs: list[str]) -> tuple[list[Image.Image], tuple[Ingredient, ...]]:
    """Input images were stored at submit as `input://KEY`, with their decoded pixels beside them
    (KEY + DECODED_SUFFIX): read those, so no input is decoded at full size twice. Tasks queued
    before that copy existed are decoded from the client's bytes. Also the provenance
    ingredients: the SHA-256 of the bytes as the client sent them."""
    decoded, ingredients = [], []
    for position, ref in enumerate(refs, start=1):
        key = ref.removeprefix("input://")
        data = images.read(key)
        if images.exists(key + DECODED_SUFFIX):
            image = from_decoded_png(images.read(key + DECODED_SUFFIX))
            fmt = key.rpartition(".")[2]
        else:
            found = decode_image(data, position)
            image, fmt = found.image, found.format.lower()
        decoded.append(image)
        ingredients.append(ingredient_of(data, position, f"image/{fmt}"))
    return decoded, tuple(ingredients)


class TaskPipeline:
    """The worker's handler: one queued task through the Pipeline, its results in the image store."""

    def __init__(self, pipeline: Pipeline, store: ProgressStore, images: ImageStore, events: TaskEvents, *,
                 on_phase: PhaseObserver | None = None, on_images: Callable[[int], None] | None = None,
                 on_stored: Callable[[str, bytes], None] | None = None) -> None:
        self.pipeline, self.store, self.images, self.events = pipeline, store, images, events
        self.on_phase, self.on_images = on_phase, on_images
        self.on_stored = on_stored  # each result's key and bytes, once stored (the service keeps the newest)

    def __call__(self, task: TaskRecord, worker_id: str) -> str:
        if self.on_phase and task.scheduled_time is not None:
            self.on_phase("queued", task.scheduled_time - task.submit_time)
        clock = PhaseClock(self.on_phase)
        job = Submission.from_payload(task.payload).job
        if job is None:
            raise ApiError("this task was queued by an earlier version of the server and cannot run; submit it "
                           "again", status=500, code="InternalError.Stale", should_retry=False)
        inputs, ingredients = load_inputs(self.images, list(job.inputs))
        pixel_bytes = sum(image.width * image.height for image in inputs) * BYTES_PER_PIXEL
        ctx = TaskContext(task.id, worker_id, self.store.url)
        progress = TaskProgress.in_process(ctx, self.store, self.images, self.events,
                                           shared_wanted=task.wants_previews)
        try:
            rendered = self.pipeline.render(job.with_images(inputs), progress, clock, task_id=task.id,
                                            ingredients=ingredients)
        finally:
            del inputs  # the decoded inputs' pages go back to the system once they are freed (large ones)
            release_after_decoding(pixel_bytes)
        keys = [self.images.put(png, prefix="results") for png in rendered.pngs]
        if self.on_stored:
            for key, png in zip(keys, rendered.pngs, strict=True):
                self.on_stored(key, png)
        clock.lap("storing")
        if self.on_images:
            self.on_images(len(keys))
        return GenerationResult(
            images=keys,
            size=f"{rendered.width}*{rendered.height}",
            prompt=job.prompt,
            revised_prompt=rendered.revised_prompt,
            seed=job.seed,
            sequential=job.sequential,
            planner=rendered.planner,
        ).to_payload()
