"""RemoteEngine: one API model id served by an OpenAI-compatible images server, with wanimage's
own semantics kept on this side of the wire.

    job mode            backend calls (docs/remote.md)
    text-to-image       generations with n (the count is checked); the images it did not make,
                        one call each with seed + i (a backend that ignores n is then called so)
    text-to-image-set   per-image prompts; image 1 by generations, images 2.. by edits of
                        image 1 (chaining), or generations when the backend has no edits
    edit, no boxes      edits with the references (stitched beyond edit_max_images), n checked
    edit with boxes     edits of the canvas (the last image at output size), with a mask when
                        the backend takes one; outside every box the output is the canvas,
                        exactly (feathered blend inside the box edges)
    image-to-image-set  per-image prompts as edits of the references (+ image 1 when room)

Sizes go out as the nearest the backend accepts and come back resized to exactly the job size.
The prompt is the job's (thinking mode's revised prompt when it ran) plus the palette; palette
transfer, watermark and provenance follow in the pipeline's finish step, as for every engine."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from PIL import Image

from ...types import Capabilities, Mode
from ..base import Canceled, Engine, GenerationJob, ProgressFn
from ..imaging import (
    box_alpha,
    cap_pixels,
    composite,
    crop_sources,
    generation_size,
    group_references,
    palette_prompt,
    resize_exact,
    scale_boxes,
)
from .client import Backend, BackendDown, Call
from .config import RemoteConfig, parse_wxh

log = logging.getLogger(__name__)
POLL_SECONDS = 0.1
EXPECTED_SECONDS = 8.0  # time-based progress before the first call has been timed
GRACE_SECONDS = 10.0  # past the SDK's own timeout, the engine gives up on a call itself


class _Progress:
    """Progress over the job's calls: call k of K owns [k/K, (k+1)/K]; inside a call, partial
    images from the backend's stream when it sends them, else elapsed time against the average
    call so far (never reaching the end of the share before the answer)."""

    def __init__(self, report: ProgressFn, calls: int) -> None:
        self.report, self.calls, self.done = report, max(1, calls), 0
        self.average = EXPECTED_SECONDS

    def tick(self, elapsed: float, partial: float | None = None, preview=None) -> None:
        inside = partial if partial is not None else 0.95 * (1 - math.exp(-elapsed / self.average))
        self.report((self.done + min(inside, 0.99)) / self.calls, preview)

    def finished(self, seconds: float) -> None:
        self.done = min(self.calls, self.done + 1)
        self.average = 0.7 * self.average + 0.3 * max(0.05, seconds)
        self.report(self.done / self.calls)


class RemoteEngine(Engine):
    name = "remote"

    def __init__(self, model: str, cfg: RemoteConfig, backend: Backend | None = None,
                 slots: threading.BoundedSemaphore | None = None) -> None:
        self.model, self.cfg = model, cfg
        self.backend = backend or Backend(cfg)
        self.slots = slots or threading.BoundedSemaphore(cfg.max_concurrency)
        self.ignores_n = not cfg.n  # learned: a backend that answered fewer than n is asked per image
        self.capabilities = self._capabilities()

    def _capabilities(self) -> Capabilities:
        modes = set()
        if self.cfg.generations:
            modes |= {Mode.TEXT_TO_IMAGE, Mode.TEXT_TO_IMAGE_SET}
        if self.cfg.edits:
            modes |= {Mode.EDIT, Mode.IMAGE_TO_IMAGE_SET}
        return Capabilities(modes=frozenset(modes), max_input_images=9, bbox=self.cfg.edits,
                            palette=self.cfg.palette_prompt, previews=self.cfg.stream)

    # ------------------------------------------------------------------ generate

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]:
        if job.negative_prompt and not self.cfg.negative_prompt:
            log.info("%s: negative_prompt not forwarded: the backend %s is not configured to take one "
                     "(negative_prompt = true in its config)", self.model, self.cfg.label)
        prompts = [palette_prompt(p, job.palette) if self.cfg.palette_prompt else p for p in job.prompts]
        size = self.backend_size(job.width, job.height)
        if job.mode is Mode.TEXT_TO_IMAGE:
            track = _Progress(progress, 1 if not self.ignores_n else job.n)
            return self._n_images(job, Call(prompts[0], job.n, size, job.seed), track)
        if job.mode is Mode.TEXT_TO_IMAGE_SET:
            track, out = _Progress(progress, len(prompts)), []
            for i, p in enumerate(prompts):
                refs = (self._fit(out[0], size),) if i and self.cfg.edits else ()
                out += self._images(job, Call(p, 1, size, job.seed + i, refs), track)[:1]
            return out
        refs = crop_sources([im.convert("RGB") for im in job.images], job.source_boxes)
        if job.mode is Mode.EDIT and job.edit_boxes:
            return self._box_edit(job, prompts[0], size, refs, progress)
        grouped = tuple(self._references(refs))
        if job.mode is Mode.EDIT:
            track = _Progress(progress, 1 if not self.ignores_n else job.n)
            return self._n_images(job, Call(prompts[0], job.n, size, job.seed, grouped), track)
        track, out = _Progress(progress, len(prompts)), []  # IMAGE_TO_IMAGE_SET
        for i, p in enumerate(prompts):
            chained = grouped + (self._fit(out[0], size),) if i and len(grouped) < self.cfg.edit_max_images else grouped
            out += self._images(job, Call(p, 1, size, job.seed + i, chained), track)[:1]
        return out

    def _n_images(self, job: GenerationJob, call: Call, track: _Progress) -> list[Image.Image]:
        """n images: one call asking for n when the backend takes n, then one call per missing
        image with seed + i (the count an answer brings is checked, never trusted)."""
        out: list[Image.Image] = []
        if not self.ignores_n:
            out = self._images(job, call, track)[: job.n]
            if len(out) < job.n:
                log.warning("%s: the backend %s answered %d of %d images; asking for the rest one at a time "
                            "(set n = false in its config to skip the first try)",
                            self.model, self.cfg.label, len(out), job.n)
                self.ignores_n = True
                track.calls = 1 + job.n - len(out)
        for i in range(len(out), job.n):
            single = Call(call.prompt, 1, call.size, job.seed + i, call.images, call.mask)
            out += self._images(job, single, track)[:1]
        return out

    def _box_edit(self, job: GenerationJob, prompt: str, size: tuple[int, int], refs: list[Image.Image],
                  progress: ProgressFn) -> list[Image.Image]:
        """Edits of the canvas; every pixel outside the boxes comes from the canvas, bit for bit."""
        canvas = resize_exact(refs[-1], job.width, job.height)
        scaled = list(job.edit_boxes)
        others = tuple(self._references(refs[:-1])) if self.cfg.edit_max_images > 1 and len(refs) > 1 else ()
        if len(refs) > 1 and not others:
            log.warning("%s: the backend %s takes one image per edit: box edits send the canvas only, "
                        "%d reference image(s) not sent", self.model, self.cfg.label, len(refs) - 1)
        sent = resize_exact(canvas, *size)
        mask = self._mask(scale_boxes(scaled, (job.width, job.height), size), size) if self.cfg.mask else None
        call = Call(prompt, job.n, size, job.seed, (sent, *others[: self.cfg.edit_max_images - 1]), mask)
        track = _Progress(progress, 1 if not self.ignores_n else job.n)
        alpha = box_alpha(scaled, job.width, job.height, self.cfg.feather)
        return [composite(resize_exact(im, job.width, job.height), canvas, alpha)
                for im in self._n_images(job, call, track)]

    def _mask(self, boxes, size: tuple[int, int]) -> Image.Image:
        """The edit area: transparent inside the boxes (OpenAI) or white inside them (grey masks)."""
        w, h = size
        inside = np.zeros((h, w), dtype=bool)
        for b in boxes:
            inside[b.y1:b.y2, b.x1:b.x2] = True
        if self.cfg.mask_format == "white":
            return Image.fromarray(np.where(inside, 255, 0).astype(np.uint8), "L")
        rgba = np.zeros((h, w, 4), dtype=np.uint8)
        rgba[..., 3] = np.where(inside, 0, 255)
        return Image.fromarray(rgba, "RGBA")

    # ------------------------------------------------------------------ sizes and references

    def backend_size(self, width: int, height: int) -> tuple[int, int]:
        """The size to ask for: of the backend's fixed sizes the nearest in aspect ratio (then
        area), else the job's aspect ratio at most max_pixels, in multiples of size_multiple."""
        if self.cfg.sizes:
            options = [parse_wxh(s) for s in self.cfg.sizes]
            aspect = math.log(width / height)
            return min(options, key=lambda s: (round(abs(math.log(s[0] / s[1]) - aspect), 3),
                                               abs(s[0] * s[1] - width * height)))
        return generation_size(width, height, self.cfg.size_multiple, self.cfg.max_pixels)

    def _fit(self, image: Image.Image, size: tuple[int, int]) -> Image.Image:
        return resize_exact(image, *size)

    def _references(self, refs: list[Image.Image]) -> list[Image.Image]:
        refs = [cap_pixels(r, self.cfg.reference_pixels) for r in refs]
        return group_references(refs, self.cfg.edit_max_images, self.cfg.reference_pixels)

    # ------------------------------------------------------------------ one call

    def _images(self, job: GenerationJob, call: Call, track: _Progress) -> list[Image.Image]:
        """One backend call (and its retries while the backend is down), with progress and cancel
        checked every POLL_SECONDS; the answers resized to exactly the job size."""
        attempts = self.cfg.attempts
        if job.negative_prompt and self.cfg.negative_prompt:
            call = replace(call, negative_prompt=job.negative_prompt)
        for attempt in range(1, attempts + 1):
            try:
                images = self._once(call, track)
                return [resize_exact(im, job.width, job.height) for im in images]
            except BackendDown as exc:
                log.warning("%s: backend %s %s (attempt %d of %d)", self.model, self.cfg.label, exc, attempt, attempts)
                if attempt == attempts:
                    raise self.backend.unavailable(self.model, str(exc), attempts) from None
                self._wait(0.5 * attempt, track)
        raise AssertionError("unreachable")

    def _once(self, call: Call, track: _Progress) -> list[Image.Image]:
        partials: queue.Queue = queue.Queue()
        started = time.monotonic()
        with self._slot(track):
            future = self.backend.submit(call, lambda i, im: partials.put((i, im)) if self.cfg.stream else None)
            deadline = started + self.cfg.timeout_seconds + GRACE_SECONDS
            try:
                while True:
                    try:
                        images = future.result(timeout=POLL_SECONDS)
                        if not partials.empty():  # partial images that came with a fast answer
                            self._report(track, started, partials)
                        break
                    except FutureTimeout:
                        pass
                    if time.monotonic() > deadline:
                        future.cancel()
                        raise self.backend.timeout_error()
                    self._report(track, started, partials)
            except Canceled:
                future.cancel()  # cancels the request's task: the HTTP request is closed
                raise
            except CancelledError:
                raise Canceled from None
        track.finished(time.monotonic() - started)
        return images

    def _report(self, track: _Progress, started: float, partials: queue.Queue) -> None:
        latest = None
        while not partials.empty():
            latest = partials.get_nowait()
        if latest is None:
            track.tick(time.monotonic() - started)
            return
        index, image = latest
        track.tick(0, (index + 1) / (self.cfg.partial_images + 1), lambda: [image])

    @contextmanager
    def _slot(self, track: _Progress):
        """A place among the backend's max_concurrency calls in flight; cancel is checked while waiting."""
        while not self.slots.acquire(timeout=POLL_SECONDS):
            track.tick(0.0)
        try:
            yield
        finally:
            self.slots.release()

    def _wait(self, seconds: float, track: _Progress) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            track.tick(0.0)
            time.sleep(POLL_SECONDS)

    # ------------------------------------------------------------------ introspection

    def close(self) -> None:
        """Stop the backend's event loop and health probe (the server is shutting down)."""
        self.backend.close()

    def describe(self) -> dict:
        """For /health and `wanimage models`: the backend and whether it answered lately."""
        h = self.backend.health
        return {"backend": self.cfg.label, "backend_model": self.cfg.model or None,
                "reachable": h.reachable, "checked_at": h.checked_at, "error": h.error,
                "latency_ms": round(h.latency_ms, 1) if h.latency_ms is not None else None,
                "max_concurrency": self.cfg.max_concurrency}

    def probe(self) -> dict:
        self.backend.probe()
        return self.describe()

