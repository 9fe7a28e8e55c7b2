"""From a validated request and its decoded input images to the GenerationJob an engine runs,
checking the rules that need both: boxes inside their image, output size, engine capabilities."""

from __future__ import annotations

from PIL import Image

from ..engines.base import GenerationJob
from ..errors import InvalidParameter
from ..types import Box, Capabilities, LayoutItem, Mode
from .decoding import original_size
from .request import GenerationRequest, check_boxes_inside, output_size

_MODE_WORDS = {
    Mode.TEXT_TO_IMAGE: "text-to-image",
    Mode.TEXT_TO_IMAGE_SET: "image sets from text (enable_sequential)",
    Mode.EDIT: "image editing",
    Mode.IMAGE_TO_IMAGE_SET: "image sets from reference images (enable_sequential)",
}


def check_geometry(req: GenerationRequest, sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """Boxes inside their images; returns the output (width, height)."""
    check_boxes_inside(req.bbox_list, sizes)
    return output_size(req.size, sizes[-1] if sizes else None)


def check_capabilities(req: GenerationRequest, caps: Capabilities, width: int, height: int) -> None:
    """What this engine cannot do is a clear InvalidParameter naming the model and the mode."""
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


def build_job(
    req: GenerationRequest,
    images: list[Image.Image],
    *,
    prompt: str | None = None,
    layout: list[LayoutItem] | None = None,
) -> GenerationJob:
    sizes = [original_size(im) for im in images]  # boxes and the output follow the images as sent
    width, height = check_geometry(req, sizes)
    return GenerationJob(
        model=req.model,
        mode=req.mode,
        prompt=prompt if prompt is not None else req.prompt,
        original_prompt=req.prompt,
        width=width,
        height=height,
        n=req.n,
        seed=req.seed,
        images=images,
        boxes=_boxes_for(req, sizes, images),
        palette=[e.to_color() for e in req.color_palette] if req.color_palette else None,
        layout=layout,
    )


def _boxes_for(req: GenerationRequest, sizes: list[tuple[int, int]], images: list[Image.Image]) -> list[list[Box]]:
    if not req.bbox_list:
        return [[] for _ in images]
    groups = zip(req.bbox_list, sizes, images, strict=True)  # check_geometry made the counts agree
    return [[_scaled(box, sent, im.size) for box in group] for group, sent, im in groups]


def _scaled(box: Box, sent: tuple[int, int], decoded: tuple[int, int]) -> Box:
    """A box in the pixels of the image as sent, moved to the image as decoded (downscaled on
    decode, core/decoding.py); each side keeps at least one pixel."""
    if sent == decoded:
        return box
    sx, sy = decoded[0] / sent[0], decoded[1] / sent[1]
    x1, y1 = min(int(box.x1 * sx), decoded[0] - 1), min(int(box.y1 * sy), decoded[1] - 1)
    return Box(x1, y1, max(x1 + 1, round(box.x2 * sx)), max(y1 + 1, round(box.y2 * sy)))
