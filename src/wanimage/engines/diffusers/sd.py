"""Stable Diffusion 1.x / 2.x (and their distilled few-step checkpoints: SD-Turbo, SDXS-512):
the family that draws real images on a CPU.

    text_to_image  StableDiffusionPipeline         stabilityai/sd-turbo (1 step, guidance 0, 512 px)
    edit           StableDiffusionImg2ImgPipeline  the same checkpoint: image-to-image from the first
                                                   reference at `edit_strength` (one reference per
                                                   call; several are stitched onto one canvas)
    inpaint        StableDiffusionInpaintPipeline  the same checkpoint (a 4-channel UNet: diffusers
                                                   blends the source latents outside the mask), or
                                                   a 9-channel inpainting checkpoint
    refine         StableDiffusionImg2ImgPipeline  the same checkpoint (second pass after upscaling)

Image-to-image runs `int(steps * strength)` steps and skips the first `int(steps * (1 -
strength))` of the schedule (SD-Turbo's model card: "ensure that num_inference_steps * strength is
greater than or equal to 1"). With 1-step turbo settings that would be no step at all, or a step
from pure noise, so img2img roles get the fewest steps that keep both at least one."""

from __future__ import annotations

import math

from .base import Family, resize_exact, shrink_latents, to_pil

IMG2IMG_ROLES = ("edit", "refine")


def img2img_steps(steps: int, strength: float) -> int:
    """At least `steps`, and enough that int(n * strength) >= 1 and int(n * (1 - strength)) >= 1
    (one step skipped, so the source image is not replaced by noise), for 0 < strength < 1."""
    if not 0 < strength < 1:
        return steps
    return max(steps, math.ceil(1 / strength - 1e-9), math.ceil(1 / (1 - strength) - 1e-9))


class StableDiffusion(Family):
    name = "sd"
    multiple = 8  # VAE 8x, no packing
    native_pixels = 512 * 512  # SD 1.5, SD 2.1-base, SD-Turbo, SDXS-512
    default_steps = 25
    default_guidance = 7.5
    max_references = 1
    edit_strength = 0.6  # how far an edit departs from its reference image
    pipelines = {
        "text_to_image": "StableDiffusionPipeline",
        "edit": "StableDiffusionImg2ImgPipeline",
        "inpaint": "StableDiffusionInpaintPipeline",
        "refine": "StableDiffusionImg2ImgPipeline",
    }
    hub_hint = "e.g. stabilityai/sd-turbo, IDKiro/sdxs-512-0.9"

    def sampling_kwargs(self, role: str, cfg) -> dict:
        kw = super().sampling_kwargs(role, cfg)
        strength = self.edit_strength if role == "edit" else cfg.refine_strength if role == "refine" else 1.0
        if role in IMG2IMG_ROLES:
            kw["num_inference_steps"] = img2img_steps(kw["num_inference_steps"], strength)
        return kw

    def edit_kwargs(self, refs, width, height):
        # img2img keeps its input's size: hand it the reference at the generation size
        return {"image": resize_exact(refs[0], width, height), "strength": self.edit_strength}

    def decode_preview(self, pipe, latents, width, height):
        z = shrink_latents(latents).to(pipe.vae.dtype) / pipe.vae.config.scaling_factor
        return to_pil(pipe.vae.decode(z, return_dict=False)[0])
