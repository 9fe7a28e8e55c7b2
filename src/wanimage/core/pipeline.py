"""One task's work, in one place: inputs -> plan -> job -> generate -> finish -> store.

`Pipeline.render` is the whole generation of one validated request from decoded input images to
finished PNGs; the server's workers (through `TaskPipeline`, the queue's handler), the Ray API
replicas and `wanimage generate` all call it, so the same request and seed give the same pixels
everywhere. `TaskPipeline` adds what a queued task needs around it: inputs read back from the
image store, progress reported through the task store, results stored."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from ..engines.base import GenerationJob, ProgressFn
from ..engines.imaging import mask_image, scale_boxes
from ..engines.registry import EngineRegistry
from ..errors import ApiError
from ..storage.base import ImageStore
from ..tasks.events import TaskEvents
from ..tasks.records import TaskContext, TaskRecord, TaskResult
from ..thinking import Brief, Plan, Planner
from ..types import Mode
from .decoding import DECODED_SUFFIX, from_decoded_png
from .inputs import decode_image
from .job import build_job, check_capabilities, check_geometry
from .postprocess import add_watermark, apply_palette, encode_png
from .progress import ProgressStore, TaskProgress
from .provenance import ImageFacts, Ingredient, Provenance, ingredient_of
from .request import GenerationRequest, check_box_images

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
    if job.mode is not Mode.EDIT or not job.boxes or not job.boxes[-1]:
        return None
    boxes = scale_boxes(job.boxes[-1], job.images[-1].size, (job.width, job.height))
    return mask_image(boxes, job.width, job.height)


def _within(changed: Image.Image, original: Image.Image, region: Image.Image | None) -> Image.Image:
    return changed if region is None else Image.composite(changed, original, region)


def finish_image(image: Image.Image, req: GenerationRequest, level: int,
                 provenance: Provenance | None = None, facts: ImageFacts | None = None,
                 region: Image.Image | None = None) -> bytes:
    """Palette transfer, visible label, provenance marks, PNG: the same for every engine and the
    one place result PNGs are written. The invisible watermark goes in after the visible label
    (it covers every pixel); the C2PA manifest last, over the finished file. With a box edit's
    `region`, palette and invisible watermark stay inside the boxes, so every pixel outside them
    is the input's, bit for bit (the visible label, asked for, is drawn where it always is)."""
    if req.color_palette:
        palette = [e.to_color() for e in req.color_palette]
        image = _within(apply_palette(image, palette, strength=PALETTE_STRENGTH), image, region)
    if req.watermark:
        image = add_watermark(image)
    if provenance is None or facts is None:
        return encode_png(image, level)
    pixels = provenance.mark_pixels(image, region)
    return provenance.seal(encode_png(pixels, level, provenance.chunks(facts)), facts)


class Pipeline:
    def __init__(self, engines: EngineRegistry, *, planner: Planner | None = None, png_level: int = 1,
                 provenance: Provenance | None = None) -> None:
        self.engines = engines
        self.planner = planner  # thinking mode; None: prompts go to the engine as given
        self.png_level = png_level
        self.provenance = provenance  # None: bare PNGs (tests, benchmarks)

    def check(self, req: GenerationRequest, sizes: list[tuple[int, int]]) -> tuple[int, int]:
        """The rules that need the input sizes and the engine, before any work: boxes inside their
        images, output size, what this engine can do. Returns the output (width, height)."""
        width, height = check_geometry(req, sizes)
        check_box_images(req)  # boxes on images other than the last: only as "the object to take"
        check_capabilities(req, self.engines.get(req.model).capabilities, width, height)
        return width, height

    def render(self, req: GenerationRequest, inputs: list[Image.Image], progress: ProgressFn,
               clock: PhaseClock | None = None, *, task_id: str | None = None,
               ingredients: tuple[Ingredient, ...] | None = None) -> Rendered:
        """`task_id` names the images in their provenance labels (the CLI: a fresh uuid);
        `ingredients` are the inputs' hashes (default: of their decoded pixels)."""
        clock = clock or PhaseClock(None)
        engine = self.engines.get(req.model)
        plan = self.plan(req, inputs)  # thinking mode: None when it does not apply
        job = build_job(req, inputs, prompt=plan.revised_prompt if plan else None,
                        layout=plan.layout if plan else None)
        clock.lap("planning")
        outputs = engine.generate(job, progress)
        clock.lap("generating")
        if not outputs:
            raise ApiError("the engine produced no image", status=500, code="InternalError.Algo")
        pngs = []
        task_id = task_id or str(uuid.uuid4())
        if ingredients is None:
            ingredients = tuple(ingredient_of(im.tobytes(), k, "image/x-raw-rgb") for k, im in enumerate(inputs, 1))
        region = edit_region(job)
        for index, image in enumerate(outputs, start=1):
            if image.size != (job.width, job.height):  # engines must honour the size; be exact anyway
                image = image.resize((job.width, job.height), Image.Resampling.LANCZOS)
            facts = ImageFacts(task_id, index, req.prompt, job.prompt, job.seed, job.width, job.height,
                               req.model, engine.name, engine.steps, ingredients)
            pngs.append(finish_image(image, req, self.png_level, self.provenance, facts, region))
        clock.lap("encoding")
        return Rendered(pngs, job.width, job.height, job.prompt, plan.planner if plan else None)

    def plan(self, req: GenerationRequest, inputs: list[Image.Image]) -> Plan | None:
        """Thinking mode (pure text-to-image only). Image sets keep the prompt as given: engines
        split "image 1: ... image 2: ..." themselves and have no per-image layout input."""
        if self.planner is None or not req.thinking_applies:
            return None
        started = time.monotonic()
        width, height = check_geometry(req, [im.size for im in inputs])
        brief = Brief(req.prompt, width, height, n=req.n, sequential=req.enable_sequential)
        try:
            plan = self.planner.plan(brief)
        except Exception:  # planners never raise by contract; a bug still must not fail the task
            log.exception("thinking planner failed; the prompt goes on as given")
            return None
        log.info("thinking planner=%s in %.3fs (%d layout boxes)%s", plan.planner, time.monotonic() - started,
                 len(plan.layout or []), f"; {plan.note}" if plan.note else "")
        return plan


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
                 on_phase: PhaseObserver | None = None) -> None:
        self.pipeline, self.store, self.images, self.events = pipeline, store, images, events
        self.on_phase = on_phase

    def __call__(self, task: TaskRecord, worker_id: str) -> TaskResult:
        if self.on_phase and task.scheduled_time is not None:
            self.on_phase("queued", task.scheduled_time - task.submit_time)
        clock = PhaseClock(self.on_phase)
        req = GenerationRequest.from_json(task.request)
        inputs, ingredients = load_inputs(self.images, list(req.images))
        ctx = TaskContext(task.id, worker_id, self.store.url)
        progress = TaskProgress.in_process(ctx, self.store, self.images, self.events,
                                           shared_wanted=task.wants_previews)
        rendered = self.pipeline.render(req, inputs, progress, clock, task_id=task.id, ingredients=ingredients)
        keys = [self.images.put(png, prefix="results") for png in rendered.pngs]
        clock.lap("storing")
        return TaskResult(
            images=keys,
            size=f"{rendered.width}*{rendered.height}",
            prompt=req.prompt,
            revised_prompt=rendered.revised_prompt,
            seed=req.seed,
            sequential=req.enable_sequential,
            planner=rendered.planner,
        )
