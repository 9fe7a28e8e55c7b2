"""A deterministic engine for service tests. It lives under tests/ and is never reachable from
`wanimage serve`. It paints seed-dependent gradients (text-to-image) or the last input image
with filled boxes (edits), in `steps` steps, honouring progress, previews and cancellation."""

from __future__ import annotations

import hashlib
import time

import numpy as np
from PIL import Image, ImageDraw

from wanimage.engines.base import Engine, GenerationJob, ProgressFn
from wanimage.types import ALL_MODES, Capabilities, Mode


class DeterministicEngine(Engine):
    name = "test-deterministic"

    def __init__(
        self, steps: int = 4, step_seconds: float = 0.0, fail_on: str | None = "EXPLODE", log_path: str | None = None,
        finish_seconds: float = 0.0,
    ) -> None:
        self.steps = steps
        self.finish_seconds = finish_seconds  # time after the last step, as encoding a large image takes
        self.log_path = log_path  # one line per finished job: proves across processes what ran
        self.step_seconds = step_seconds
        self.fail_on = fail_on  # a prompt containing this raises, to test engine failures
        self.capabilities = Capabilities(modes=ALL_MODES, previews=True)
        self.jobs: list[GenerationJob] = []

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]:
        self.jobs.append(job)
        if self.fail_on and self.fail_on in (job.revised_prompt or job.prompt):
            raise RuntimeError("engine exploded on purpose")
        count = min(job.n, 3) if job.sequential else job.n  # sets may return fewer than n
        images = [self._paint(job, i) for i in range(count)]
        for step in range(1, self.steps + 1):
            if self.step_seconds:
                time.sleep(self.step_seconds)
            progress(step / self.steps, lambda: [im.resize((64, 64)) for im in images])
        if self.finish_seconds:
            time.sleep(self.finish_seconds)
        if self.log_path:
            with open(self.log_path, "a") as fh:  # O_APPEND: whole short lines from many processes
                fh.write((job.revised_prompt or job.prompt) + "\n")
        return images

    def _paint(self, job: GenerationJob, i: int) -> Image.Image:
        digest = hashlib.sha256(f"{job.revised_prompt or job.prompt}|{job.seed + i}".encode()).digest()
        if job.mode in (Mode.EDIT, Mode.IMAGE_TO_IMAGE_SET):
            base = job.images[-1].resize((job.width, job.height))
            draw = ImageDraw.Draw(base)
            for b in job.edit_boxes:  # in output pixels
                draw.rectangle((b.x1, b.y1, b.x2, b.y2), fill=tuple(digest[:3]))
            return base
        y = np.linspace(0, 1, job.height, dtype=np.float32)[:, None, None]
        x = np.linspace(0, 1, job.width, dtype=np.float32)[None, :, None]
        a = np.frombuffer(digest[:3], dtype=np.uint8).astype(np.float32)
        b = np.frombuffer(digest[3:6], dtype=np.uint8).astype(np.float32)
        pixels = a * (1 - x) * (1 - y) + b * x * y + 60 * x * (1 - y)
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
