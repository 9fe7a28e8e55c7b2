"""Stable Diffusion XL: text-to-image and box edits on small GPUs (8 GB with model offload).

    text_to_image  StableDiffusionXLPipeline         stabilityai/stable-diffusion-xl-base-1.0
    inpaint        StableDiffusionXLInpaintPipeline  diffusers/stable-diffusion-xl-1.0-inpainting-0.1
                                                     (or the base checkpoint, 4-channel UNet)
    refine         StableDiffusionXLImg2ImgPipeline  stabilityai/stable-diffusion-xl-refiner-1.0
    edit           none: SDXL has no instruction edit with references; an edit without boxes
                   is refused with a clear InvalidParameter (the capabilities list EDIT for boxes)"""

from __future__ import annotations

from .base import Family, shrink_latents, to_pil


class SDXL(Family):
    name = "sdxl"
    multiple = 8  # VAE 8x, no packing (the UNet needs multiples of 8 latents only at depth)
    native_pixels = 1024 * 1024
    default_steps = 30
    default_guidance = 5.0
    max_references = 0
    pipelines = {
        "text_to_image": "StableDiffusionXLPipeline",
        "inpaint": "StableDiffusionXLInpaintPipeline",
        "refine": "StableDiffusionXLImg2ImgPipeline",
    }
    hub_hint = "e.g. stabilityai/stable-diffusion-xl-base-1.0"

    def decode_preview(self, pipe, latents, width, height):
        z = shrink_latents(latents).to(pipe.vae.dtype) / pipe.vae.config.scaling_factor
        return to_pil(pipe.vae.decode(z, return_dict=False)[0])
