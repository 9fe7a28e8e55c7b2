"""From a checked request and its decoded input images to the one GenerationJob that is queued
and run: the rules that need the images and the engine are checked here, once, before anything
is queued (boxes inside their image, boxes on other images only as "the object to take", output
size, what the serving engine can do), and the request is interpreted here, once: the prompt
split per image and read for its edit intent by the one prompt parser, boxes moved to the pixels
they are used in, the palette as colours."""

from __future__ import annotations

from PIL import Image

from ..engines.job import GenerationJob
from ..errors import InvalidParameter
from ..prompts import EditIntent, parse_edit, set_prompts
from ..types import Box, Capabilities, LayoutItem, Mode, PaletteColor, scale_boxes
from .decoding import original_size
from .model_rules import rules_for
from .parameters import ThinkingEffort
from .request import GenerationRequest, check_boxes_inside, output_size

_MODE_WORDS = {
    Mode.TEXT_TO_IMAGE: "text-to-image",
    Mode.TEXT_TO_IMAGE_SET: "image sets from text (enable_sequential)",
    Mode.EDIT: "image editing",
    Mode.IMAGE_TO_IMAGE_SET: "image sets from reference images (enable_sequential)",
}


def resolve_job(req: GenerationRequest, images: list[Image.Image], caps: Capabilities = Capabilities(),
                inputs: tuple[str, ...] = ()) -> GenerationJob:
    """Check every rule that needs the decoded `images` (each carrying the size it was sent at)
    and the serving engine's `caps`; return the finished job, carrying the images (which its
    payload leaves out). `inputs`: where the images are stored, for a queued job (the CLI runs
    its job in place and stores none)."""
    sent = [original_size(im) for im in images]  # boxes and the output follow the images as sent
    check_boxes_inside(req.bbox_list, sent)
    width, height = output_size(req.size, sent[-1] if sent else None, rules_for(req.model).sizes.tiers)
    boxes = req.bbox_list or tuple(() for _ in images)
    job = assemble_job(
        model=req.model, mode=req.mode, prompt=req.prompt, width=width, height=height, n=req.n, seed=req.seed,
        edit_boxes=tuple(scale_boxes(boxes[-1], sent[-1], (width, height))) if images else (),
        source_boxes=tuple(tuple(scale_boxes(b, s, im.size)) for b, s, im in zip(boxes[:-1], sent, images, strict=False)),
        palette=tuple(e.to_color() for e in req.color_palette) if req.color_palette else None,
        watermark=req.watermark, thinking=req.thinking_applies, inputs=inputs, images=images,
        thinking_effort=req.thinking_effort, negative_prompt=req.negative_prompt,
    )
    # boxes and image sets exclude each other, so the first image's edit intent is the prompt's
    check_box_images(req, job.edits[0].sources if job.edits else ())
    check_capabilities(req, caps, width, height, boxed=bool(job.edit_boxes))
    return job


def assemble_job(*, model: str, mode: Mode, prompt: str, width: int, height: int, n: int, seed: int,
                 edit_boxes: tuple[Box, ...] = (), source_boxes: tuple[tuple[Box, ...], ...] = (),
                 palette: tuple[PaletteColor, ...] | None = None, watermark: bool = False,
                 thinking: bool = False, inputs: tuple[str, ...] = (),
                 layout: list[LayoutItem] | None = None, images: list[Image.Image] | None = None,
                 thinking_effort: ThinkingEffort = "balanced", negative_prompt: str | None = None) -> GenerationJob:
    """The job's interpretation of its prompt, by the one prompt parser: one prompt per image
    (an image set's parts; otherwise the prompt n times) and, for edits, what each asks."""
    prompts = tuple(set_prompts(prompt, n)) if mode.sequential else (prompt,) * n
    edits: tuple[EditIntent, ...] = ()
    if mode in (Mode.EDIT, Mode.IMAGE_TO_IMAGE_SET):
        edits = tuple(parse_edit(p) for p in prompts) if mode.sequential else (parse_edit(prompt),) * n
    return GenerationJob(
        model=model, mode=mode, prompt=prompt, width=width, height=height, n=n, seed=seed, prompts=prompts,
        edits=edits, inputs=inputs, edit_boxes=edit_boxes, source_boxes=source_boxes, palette=palette,
        watermark=watermark, thinking=thinking, layout=tuple(layout) if layout else None,
        images=tuple(images or ()), thinking_effort=thinking_effort, negative_prompt=negative_prompt,
    )


def check_box_images(req: GenerationRequest, sources: tuple[int, ...]) -> None:
    """Only the last input image is edited: a box on another image k means "the object to take
    from image k", so it is accepted only when the prompt puts or moves image k's content ("put
    the cat of image 1 into the box of image 2"); anywhere else it would be ignored, so it is
    refused, naming the image. `sources`: the images the prompt takes content from (its edit
    intent)."""
    boxes = req.bbox_list or ()
    last = len(req.images)
    for k, image_boxes in enumerate(boxes[:-1], start=1):
        if image_boxes and k not in sources:
            raise InvalidParameter(
                f"bbox_list: image {k} has boxes, but only the last image (image {last}) is edited; a box on "
                f"image {k} can only mark the object to take from it, and the prompt does not put or move "
                f"image {k}'s content (as in \"put the cat of image {k} into the box of image {last}\"): draw "
                f"the boxes on image {last}, or send [] for image {k}",
                field="bbox_list",
            )


def check_capabilities(req: GenerationRequest, caps: Capabilities, width: int, height: int, *,
                       boxed: bool = False) -> None:
    """What this engine cannot do is a clear InvalidParameter naming the model and the mode.
    `boxed`: the edited image has boxes (a model that only inpaints takes only those edits)."""
    mode = req.mode
    if mode not in caps.modes:
        raise InvalidParameter(
            f"model: {req.model} on this server does not support {_MODE_WORDS[mode]}", field="model"
        )
    if len(req.images) > caps.max_input_images:
        raise InvalidParameter(
            f"image: {req.model} on this server takes at most {caps.max_input_images} input images", field="image"
        )
    if width * height > caps.max_pixels:
        raise InvalidParameter(
            f"size: {width}*{height} is larger than {req.model} on this server can make "
            f"({caps.max_pixels} pixels); choose a smaller size",
            field="size",
        )
    if req.bbox_list and any(req.bbox_list) and not caps.bbox:
        raise InvalidParameter(f"bbox_list: {req.model} on this server does not support box edits", field="bbox_list")
    if mode is Mode.EDIT and not boxed and not caps.unboxed_edits:
        raise InvalidParameter(
            f"model: {req.model} on this server ({caps.family or 'this engine'}) edits only inside boxes: send "
            "bbox_list, or configure an `edit` checkpoint", field="model")


def make_job(model: str, mode: Mode, prompt: str, width: int, height: int, n: int, seed: int, *,
             images: list[Image.Image] | tuple = (), boxes: list[list[Box]] | None = None,
             palette: list[PaletteColor] | None = None, layout: list[LayoutItem] | None = None,
             original_prompt: str | None = None, negative_prompt: str | None = None) -> GenerationJob:
    """A job from parts, for benchmarks and engine tests that skip the request: `boxes` per input
    image in that image's pixels (as a client draws them), `prompt` as drawn; with
    `original_prompt`, `prompt` is taken as thinking mode's revision of it."""
    images = list(images)
    per_image = boxes if boxes and len(boxes) == len(images) else [[] for _ in images]
    job = assemble_job(
        model=model, mode=mode, prompt=original_prompt or prompt, width=width, height=height, n=n, seed=seed,
        edit_boxes=tuple(scale_boxes(per_image[-1], images[-1].size, (width, height))) if images else (),
        source_boxes=tuple(tuple(b) for b in per_image[:-1]), palette=tuple(palette) if palette else None,
        layout=layout, images=images, negative_prompt=negative_prompt)
    return job.planned(prompt, layout, "given") if original_prompt else job
