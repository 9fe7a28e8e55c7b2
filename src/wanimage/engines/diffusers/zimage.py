"""Z-Image (Alibaba Tongyi): Turbo for fast text-to-image, Omni/Edit weights for edits.

    text_to_image  ZImagePipeline         Tongyi-MAI/Z-Image-Turbo (8-9 steps, guidance 0)
    edit           ZImageOmniPipeline     Z-Image Omni / Edit weights (a list of references; it
                                          needs a SigLIP image encoder in the checkpoint, and
                                          dtype bfloat16: diffusers 0.42.1 encodes references
                                          with `image.bfloat16()`)
    inpaint        ZImageInpaintPipeline  the Turbo checkpoint (no padding_mask_crop: the engine's
                                          composite keeps outside-box pixels exact)
    refine         ZImageImg2ImgPipeline  the Turbo checkpoint (second pass for 4K)"""

from __future__ import annotations

from .base import Family, shrink_latents, to_pil


class ZImage(Family):
    name = "zimage"
    multiple = 16  # VAE 8x, 2x2 patches
    native_pixels = 2048 * 2048  # Turbo renders up to 2K natively
    default_steps = 9
    default_guidance = 0.0  # Turbo is distilled: no CFG
    max_references = 3
    min_reference_side = 64  # the Omni pipeline refuses smaller references
    pipelines = {
        "text_to_image": "ZImagePipeline",
        "edit": "ZImageOmniPipeline",
        "inpaint": "ZImageInpaintPipeline",
        "refine": "ZImageImg2ImgPipeline",
    }
    hub_hint = "e.g. Tongyi-MAI/Z-Image-Turbo"

    def decode_preview(self, pipe, latents, width, height):
        c = pipe.vae.config
        z = shrink_latents(latents).to(pipe.vae.dtype) / c.scaling_factor + (c.shift_factor or 0.0)
        return to_pil(pipe.vae.decode(z, return_dict=False)[0])
