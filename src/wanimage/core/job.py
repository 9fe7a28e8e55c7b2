"""From a validated request and its decoded input images to the GenerationJob an engine runs,
checking the rules that need both: boxes inside their image, output size, engine capabilities."""

from __future__ import annotations

from PIL import Image

from ..engines.base import GenerationJob
from ..errors import InvalidParameter
from ..types import Capabilities, LayoutItem, Mode
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
    width, height = check_geometry(req, [im.size for im in images])
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
        boxes=[list(b) for b in req.bbox_list] if req.bbox_list else [[] for _ in images],
        palette=[e.to_color() for e in req.color_palette] if req.color_palette else None,
        layout=layout,
    )
