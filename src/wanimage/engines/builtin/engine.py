"""BuiltinEngine: GenerationJob -> the model's ImageRequests -> PIL images.

Job rules live here, model rules in wanimage.model:
  text-to-image      n images, image i uses seed + i
  text-to-image-set  per-image prompts ("image 1: ... image 2: ..."), one shared background
                     and the same subject noise across the set; at most n images
  edit               the last input image, output-sized, is the canvas; boxes on it are
                     bbox edits (pixels outside every box are copied exactly); an object of
                     another input image can be moved into a box ("image 1 ... into the box");
                     "move ..." lifts an object from the first box into the second, or without
                     boxes from where it is to the named place ("to the right")
  image-to-image-set per-image prompts applied as edits of the last image"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image

from wanimage.engines.base import GenerationJob, ProgressFn
from wanimage.model.generator import BuiltinModel, ImageRequest
from wanimage.model.scenes import WHERE, split_set_prompt
from wanimage.types import Capabilities, Mode

from .transplant import foreground_box, move, place_like, transplant

log = logging.getLogger(__name__)
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "builtin.safetensors"
_IMAGE_REF_RE = re.compile(r"\b(?:image|picture|photo)\s*(\d+)\b", re.I)
_MOVE_RE = re.compile(r"\b(?:move|shift|drag|relocate)\b", re.I)
_TO_PLACE_RE = re.compile(r"\bto\s+(?:the\s+)?((?:top|bottom|upper|lower)\s+(?:left|right)|left|right|top|bottom|"
                          r"center|centre|middle)\b", re.I)


class BuiltinEngine:
    name = "builtin"
    capabilities = Capabilities(layout=True, previews=True)

    def __init__(self, model: BuiltinModel):
        self.model = model

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]:
        reqs = self.prepare_requests(job)
        if job.mode is Mode.EDIT and job.images:
            images = self.transplant_if_asked(job, reqs)
            if images is None:
                images = self.move_if_asked(job, reqs)
            if images is not None:
                progress(1.0, None)
                return images
        images = self.model.generate(reqs, progress)
        return [im if im.size == (job.width, job.height) else im.resize((job.width, job.height))
                for im in images]

    def prepare_requests(self, job: GenerationJob) -> list[ImageRequest]:
        palette = [(c.rgb, c.weight) for c in job.palette] if job.palette else None
        layout = [(it.label, (it.box.x1, it.box.y1, it.box.x2, it.box.y2)) for it in job.layout or []]
        common = dict(width=job.width, height=job.height, palette=palette, layout=layout or None)
        if job.mode is Mode.TEXT_TO_IMAGE:
            return [ImageRequest(job.prompt, seed=job.seed + i, **common) for i in range(job.n)]
        if job.mode is Mode.TEXT_TO_IMAGE_SET:
            prompts = split_set_prompt(job.prompt, job.n)
            return [ImageRequest(p, seed=job.seed + i, background_seed=job.seed,
                                 shared_subject_seed=job.seed, **common)
                    for i, p in enumerate(prompts)]
        base, boxes = self.edit_canvas(job)
        common |= dict(base=base, edit_boxes=boxes)
        if job.mode is Mode.EDIT:
            return [ImageRequest(job.prompt, seed=job.seed + i, **common) for i in range(job.n)]
        prompts = split_set_prompt(job.prompt, job.n)  # IMAGE_TO_IMAGE_SET
        return [ImageRequest(p, seed=job.seed + i, shared_subject_seed=job.seed, **common)
                for i, p in enumerate(prompts)]

    def edit_canvas(self, job: GenerationJob) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        """The last input image at output size, and its boxes scaled to output pixels."""
        last = job.images[-1].convert("RGB")
        sx, sy = job.width / last.width, job.height / last.height
        if last.size != (job.width, job.height):
            if job.boxes and any(job.boxes):
                log.warning("bbox edit resized %s -> %sx%s: outside-box pixels are resampled",
                            last.size, job.width, job.height)
            last = last.resize((job.width, job.height), Image.LANCZOS)
        own = job.boxes[len(job.images) - 1] if len(job.boxes) >= len(job.images) else []
        boxes = [(round(b.x1 * sx), round(b.y1 * sy), round(b.x2 * sx), round(b.y2 * sy)) for b in own]
        return np.asarray(last, dtype=np.uint8).copy(), boxes

    def transplant_if_asked(self, job: GenerationJob, reqs: list[ImageRequest]) -> list[Image.Image] | None:
        """'put the object of image 1 into the box of image 2': best effort, input pixels only.
        Needs a box on the last image and a reference to another input image in the prompt."""
        refs = [int(k) for k in _IMAGE_REF_RE.findall(job.prompt)]
        sources = [k for k in refs if 1 <= k < len(job.images)]
        if len(job.images) < 2 or not sources or not reqs[0].edit_boxes:
            return None
        src = np.asarray(job.images[sources[0] - 1].convert("RGB"), dtype=np.uint8)
        out = reqs[0].base.copy()
        for box in reqs[0].edit_boxes:
            transplant(src, out, box)
        return [Image.fromarray(out, "RGB") for _ in range(job.n)]


    def move_if_asked(self, job: GenerationJob, reqs: list[ImageRequest]) -> list[Image.Image] | None:
        """'move the cat from the first box to the second' (two boxes on the last image) or, with
        no box, 'move the cat to the top left': input pixels only, nothing generated."""
        if not _MOVE_RE.search(job.prompt):
            return None
        base, boxes = reqs[0].base, reqs[0].edit_boxes
        if len(boxes) >= 2:
            src, dst = boxes[0], boxes[1]
        else:
            place = _TO_PLACE_RE.search(job.prompt)
            src = foreground_box(base)
            if boxes or place is None or src is None:
                return None  # nothing to move, or nowhere said: generate as an ordinary edit
            where = place.group(1).lower().replace("upper", "top").replace("lower", "bottom").replace("centre", "center")
            dst = place_like(src, WHERE[" ".join(where.split())], base.shape[1], base.shape[0])
        moved = Image.fromarray(move(base, src, dst), "RGB")
        return [moved.copy() for _ in range(job.n)]


def load_builtin_engine(weights_path: Path | None = None, device: str = "cpu") -> BuiltinEngine:
    """Build the engine from a weights file (default: the committed one)."""
    path = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"built-in model weights not found at {path}; train and export them with "
            "`wanimage train --export src/wanimage/weights/builtin.safetensors` "
            "(or `wanimage builtin-export`), or pass the path of an exported .safetensors file"
        )
    return BuiltinEngine(BuiltinModel.from_file(path, device=device))
