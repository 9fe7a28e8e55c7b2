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
  image-to-image-set per-image prompts applied as edits of the last image

The job arrives interpreted (its per-image prompts and edit intents, boxes in output pixels);
each image's prompt is read here as the model's text input, with the one prompt parser
(wanimage.prompts), into the model's own terms: a ScenePlan (objects with phrase, count, region
and colour; background colours) and for edits an EditSpec. The model reads no English."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from wanimage.engines.base import Engine, GenerationJob, ProgressFn
from wanimage.model.captions import COLOURS, is_blocked
from wanimage.model.generator import BuiltinModel, ImageRequest
from wanimage.model.scenes import MAX_OBJECTS, EditSpec, ObjectSpec, ScenePlan
from wanimage.prompts import (
    REGIONS,
    EditIntent,
    ParsedObject,
    colour_words,
    parse,
    parse_object,
    share_counts,
)
from wanimage.types import LayoutItem, Mode

from .identity import CAPABILITIES, DEFAULT_WEIGHTS, NAME
from .scenery import scenery
from .transplant import foreground_box, move, place_like, transplant

log = logging.getLogger(__name__)
FALLBACK_PHRASE = "a smiling face"  # drawn when all the prompt names is a blocked object


class BuiltinEngine(Engine):
    name = NAME
    capabilities = CAPABILITIES

    def __init__(self, model: BuiltinModel):
        self.model = model

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]:
        if job.negative_prompt:  # the built-in model has no negative conditioning
            log.info("builtin engine: negative_prompt ignored (%d characters): the built-in model draws "
                     "what the prompt names and takes no negative prompt", len(job.negative_prompt))
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
        common = dict(width=job.width, height=job.height, palette=palette)
        layout = list(job.layout) if job.layout else None
        if job.mode is Mode.TEXT_TO_IMAGE:
            scene = text_scene(job.prompts[0], layout, job.width, job.height)
            return [ImageRequest(p, seed=job.seed + i, scene=scene, **common) for i, p in enumerate(job.prompts)]
        if job.mode is Mode.TEXT_TO_IMAGE_SET:
            return [ImageRequest(p, seed=job.seed + i, scene=text_scene(p, layout, job.width, job.height),
                                 background_seed=job.seed, shared_subject_seed=job.seed, **common)
                    for i, p in enumerate(job.prompts)]
        common |= dict(base=self.edit_canvas(job), edit_boxes=[(b.x1, b.y1, b.x2, b.y2) for b in job.edit_boxes])
        shared = dict(shared_subject_seed=job.seed) if job.mode is Mode.IMAGE_TO_IMAGE_SET else {}
        reqs = []
        for i, (p, intent) in enumerate(zip(job.prompts, job.edits, strict=True)):
            scene, edit = edit_scene(p, intent)
            reqs.append(ImageRequest(p, seed=job.seed + i, scene=scene, edit=edit, **shared, **common))
        return reqs

    def edit_canvas(self, job: GenerationJob) -> np.ndarray:
        """The last input image at output size (its boxes are in output pixels already)."""
        last = job.images[-1].convert("RGB")
        if last.size != (job.width, job.height):
            if job.edit_boxes:
                log.warning("bbox edit resized %s -> %sx%s: outside-box pixels are resampled",
                            last.size, job.width, job.height)
            last = last.resize((job.width, job.height), Image.LANCZOS)
        return np.asarray(last, dtype=np.uint8).copy()

    def transplant_if_asked(self, job: GenerationJob, reqs: list[ImageRequest]) -> list[Image.Image] | None:
        """'put the cat of image 1 into the box of image 2': best effort, input pixels only.
        Needs a box on the last image and a prompt that puts or moves another input image's
        content (its edit intent's sources); a box on that image marks the object to take."""
        sources = [k for k in job.edits[0].sources if 1 <= k < len(job.images)]
        if len(job.images) < 2 or not sources or not reqs[0].edit_boxes:
            return None
        out = reqs[0].base.copy()
        for i, box in enumerate(reqs[0].edit_boxes):
            k = sources[min(i, len(sources) - 1)]  # "the dog of image 1 and the cat of image 2"
            transplant(source_pixels(job, k), out, box)
        return [Image.fromarray(out, "RGB") for _ in range(job.n)]

    def move_if_asked(self, job: GenerationJob, reqs: list[ImageRequest]) -> list[Image.Image] | None:
        """'move the cat from the first box to the second' (two boxes on the last image) or, with
        no box, 'move the cat to the top left': input pixels only, nothing generated."""
        intent = job.edits[0]
        if not intent.move:
            return None
        base, boxes = reqs[0].base, reqs[0].edit_boxes
        if len(boxes) >= 2:
            src, dst = boxes[0], boxes[1]
        else:
            src = foreground_box(base)
            if boxes or intent.move_to not in REGIONS or src is None:
                return None  # nothing to move, or nowhere said: generate as an ordinary edit
            dst = place_like(src, REGIONS[intent.move_to], base.shape[1], base.shape[0])
        moved = Image.fromarray(move(base, src, dst), "RGB")
        return [moved.copy() for _ in range(job.n)]


def source_pixels(job: GenerationJob, k: int) -> np.ndarray:
    """Input image k (1-based) as RGB pixels; cropped to its first box when it has one (the box
    marks the object to take, with a pixel of margin so its background still shows)."""
    img = np.asarray(job.images[k - 1].convert("RGB"), dtype=np.uint8)
    boxes = job.source_boxes[k - 1] if len(job.source_boxes) >= k else ()
    if not boxes:
        return img
    b = boxes[0]
    h, w = img.shape[:2]
    return img[max(b.y1 - 1, 0) : min(b.y2 + 1, h), max(b.x1 - 1, 0) : min(b.x2 + 1, w)]


def scene_plan(prompt: str) -> ScenePlan:
    """A prompt's scene in the model's terms: its objects (blocked ones left out), at most two
    background colours the model can paint, and whether the background is a gradient. With no
    background colour asked, scene words ("at dusk", "in the snow") give a sky and a ground."""
    parsed = parse(prompt)
    kept = [o for o in parsed.objects if not is_blocked(o.label)]
    counts = share_counts([o.count for o in kept], MAX_OBJECTS)  # every object drawn, not 8 of the first
    objects = [replace(object_spec(o), count=c) for o, c in zip(kept, counts, strict=True) if c > 0]
    desc = parsed.background or ""
    colours = [COLOURS[c] for c in colour_words(desc) if c in COLOURS]
    if colours:
        return ScenePlan(objects, colours[:2], "gradient" in desc.lower() or len(colours) > 1)
    sky, ground = scenery(parsed.scene)
    return ScenePlan(objects, sky, bool(sky), ground)


def object_spec(o: ParsedObject) -> ObjectSpec:
    return ObjectSpec(o.label, o.count, o.where, REGIONS.get(o.where or ""), colour=paint_colour(o.label),
                      subject=o.noun, context=o.detail)


def layout_subject(label: str) -> str | None:
    """A layout label's object noun ('a red sedan' -> 'sedan'), for the concept lookup."""
    obj = parse_object(label, lenient=True)
    return obj.noun if obj is not None else None


def paint_colour(phrase: str) -> str | None:
    """The first colour the phrase names that the model can paint ('a blue apple' -> 'blue')."""
    return next((c for c in colour_words(phrase) if c in COLOURS), None)


def text_scene(prompt: str, layout: list[LayoutItem] | None, width: int, height: int) -> ScenePlan:
    """Text-to-image: thinking mode's boxes replace the parsed objects (the background is still
    read from the prompt); with no object at all, the prompt itself is the one object."""
    scene = scene_plan(prompt)
    if layout:
        scene.objects = [ObjectSpec(it.label, box=(it.box.x1 / width, it.box.y1 / height, it.box.x2 / width,
                                                   it.box.y2 / height), colour=paint_colour(it.label),
                                    subject=layout_subject(it.label))
                         for it in layout]
    if not scene.objects:
        text = prompt.strip()
        phrase = text if text and not is_blocked(text) else FALLBACK_PHRASE
        scene.objects = [ObjectSpec(phrase, colour=paint_colour(phrase), subject=phrase)]
    return scene


def edit_scene(prompt: str, intent: EditIntent) -> tuple[ScenePlan, EditSpec]:
    """Edits: what to draw comes after the verb ("replace the cat with <a dog>": the intent's
    target), else the whole prompt; remove / background-recolour requests draw nothing new."""
    text = prompt.lower()
    scene = scene_plan(intent.target if intent.target is not None else text)
    if not scene.objects:
        phrase = FALLBACK_PHRASE if is_blocked(text) else text
        scene.objects = [ObjectSpec(phrase, colour=paint_colour(phrase), subject=phrase)]
    edit = EditSpec(remove=intent.remove, background_only=intent.background is not None,
                    background=COLOURS.get(intent.background or ""))
    return scene, edit


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
