"""What every diffusers family shares (besides engines/imaging.py: sizes, masks, composite, references):
generators, the step callback (progress, cancel, previews) and the Family base class.

A family module says which pipeline classes serve which role and how its latents decode; the
engine (engine.py) drives the pipelines. Nothing here rewrites a denoising loop: the pipelines
run as diffusers ships them, steered through their documented arguments and callback."""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from ..base import Canceled, ProgressFn

# Sizes, boxes and the exact composite, references and the palette prompt are shared with the
# remote engine: they live in engines/imaging.py (no torch) and are re-exported here.
from ..imaging import (  # noqa: F401 - re-exported for the families and tests
    box_alpha,
    cap_pixels,
    composite,
    crop_sources,
    ensure_min_side,
    generation_size,
    group_references,
    mask_image,
    palette_prompt,
    resize_exact,
    scale_boxes,
    stitch,
)

log = logging.getLogger(__name__)
PREVIEW_LATENT_SIDE = 64  # previews decode at most 64x64 latents (~512 px): cheap at any size


# ---------------------------------------------------------------------------------------- seeds


def generator(seed: int) -> torch.Generator:
    """A CPU generator: the same noise on every device, so a seed means the same image anywhere
    the kernels agree (bit-identical on CPU)."""
    return torch.Generator("cpu").manual_seed(int(seed) % (2**63))


# ---------------------------------------------------------------------------- step callback


class StepCallback:
    """`callback_on_step_end` for one pipeline call: progress over [start, end] of the job,
    previews decoded lazily from the latents at this step, cancellation through pipe._interrupt
    (the pipeline then skips its remaining steps; the engine raises Canceled after it returns)."""

    def __init__(self, progress: ProgressFn, start: float, end: float, steps: int,
                 preview: Callable[[Any, torch.Tensor], list[Image.Image]] | None):
        self.progress, self.start, self.end, self.steps = progress, start, end, max(1, steps)
        self.preview = preview
        self.canceled = False

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        if self.canceled:
            return callback_kwargs
        total = getattr(pipe, "_num_timesteps", None) or self.steps
        fraction = self.start + (self.end - self.start) * min(1.0, (step + 1) / total)
        latents = callback_kwargs.get("latents")
        render = None
        if self.preview is not None and latents is not None:
            render = lambda: self.preview(pipe, latents)  # noqa: E731 - decoded only if asked
        try:
            self.progress(fraction, render)
        except Canceled:
            self.canceled = True
            pipe._interrupt = True
        return callback_kwargs


# ------------------------------------------------------------------------------------ family


def packed_grid(tokens: int, width: int, height: int) -> tuple[int, int]:
    """(rows, cols) of a packed latent sequence of `tokens` for an image of about this aspect."""
    guess = max(1, round(math.sqrt(tokens * height / width)))
    for d in sorted(range(1, tokens + 1), key=lambda r: abs(r - guess)):
        if tokens % d == 0:
            return d, tokens // d
    return 1, tokens


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [-1, 1] -> PIL images."""
    arr = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a, "RGB") for a in arr]


def shrink_latents(latents: torch.Tensor) -> torch.Tensor:
    """(..., h, w) latents area-downsampled so neither side exceeds PREVIEW_LATENT_SIDE."""
    h, w = latents.shape[-2:]
    s = PREVIEW_LATENT_SIDE / max(h, w)
    if s >= 1:
        return latents
    size = (max(1, int(h * s)), max(1, int(w * s)))
    flat = latents.reshape(-1, *latents.shape[-3:]) if latents.ndim == 5 else latents
    out = torch.nn.functional.interpolate(flat.float(), size=size, mode="area").to(latents.dtype)
    if latents.ndim == 5:  # (B, C, T, h, w) was flattened as (B*C, T, h, w)
        out = out.reshape(*latents.shape[:-2], *size)
    return out


class Family(abc.ABC):
    """One model family. Subclasses set the class attributes and override the hooks that differ;
    `decode_preview` is the one every family must provide (its latents are packed its own way)."""

    name = ""
    multiple = 16  # sides are generated at multiples of this
    native_pixels = 1024 * 1024  # default max_generate_pixels: beyond it, upscale (+ refine)
    default_steps = 30
    default_guidance: float | None = None
    max_references = 1  # references per edit call
    pipelines: dict[str, str] = {}  # role -> default diffusers class name
    inpaint_references = False  # the inpaint pipeline also takes reference images
    min_reference_side = 0  # references are upscaled to at least this many pixels a side
    hub_hint = ""  # example checkpoints, for error messages
    batch_argument = "num_images_per_prompt"  # the call argument for images per prompt (max_batch)

    # --------------------------------------------------------------- call arguments

    def sampling_kwargs(self, role: str, cfg) -> dict:
        kw: dict[str, Any] = {"num_inference_steps": cfg.steps or self.default_steps}
        guidance = cfg.guidance if cfg.guidance is not None else self.default_guidance
        if guidance is not None:
            kw["guidance_scale"] = guidance
        if cfg.negative_prompt is not None:
            kw["negative_prompt"] = cfg.negative_prompt
        return kw

    def edit_kwargs(self, refs: list[Image.Image], width: int, height: int) -> dict:
        return {"image": refs if self.max_references > 1 else refs[0]}

    def inpaint_kwargs(self, canvas: Image.Image, mask: Image.Image, refs: list[Image.Image]) -> dict:
        return {"image": canvas, "mask_image": mask, "strength": 1.0}

    def refine_kwargs(self, image: Image.Image, strength: float) -> dict:
        return {"image": image, "strength": strength}

    def images_of(self, result) -> list[Image.Image]:
        return list(result.images)

    # --------------------------------------------------------------- previews

    @abc.abstractmethod
    def decode_preview(self, pipe, latents: torch.Tensor, width: int, height: int) -> list[Image.Image]:
        """Partial images from the latents at a step (noisy early on, by nature)."""

    def preview(self, pipe, latents: torch.Tensor, width: int, height: int) -> list[Image.Image]:
        with torch.no_grad():
            try:
                return self.decode_preview(pipe, latents, width, height)
            except Exception:  # a preview must never fail the task
                log.warning("preview decode failed for %s", self.name, exc_info=True)
                return []
