"""FLUX.2 (Black Forest Labs): one model for text-to-image and multi-reference edits.

    text_to_image  Flux2KleinPipeline          black-forest-labs/FLUX.2-klein-4B (or Flux2Pipeline
                                               with FLUX.2-dev: 64 GB in bf16, offload it)
    edit           Flux2KleinPipeline          the same checkpoint, image=[...]; the vendor
                                               recommends <= 4 references for klein (<= 6 for dev):
                                               beyond max_references they are stitched
    inpaint        Flux2KleinInpaintPipeline   the same checkpoint; the other input images go in
                                               as image_reference (the first one; the rest stitched)
    refine         none in diffusers 0.42.1: 4K is a Lanczos upscale of the native 4 MP

klein's Qwen3 text encoder reads hidden layers (9, 18, 27) by default; tiny test models set
`call_kwargs = { text_encoder_out_layers = [1] }`."""

from __future__ import annotations

import torch

from .base import Family, ensure_min_side, packed_grid, shrink_latents, stitch, to_pil


class Flux2(Family):
    name = "flux2"
    multiple = 16  # VAE 8x, 2x2 patches
    native_pixels = 2048 * 2048  # FLUX.2 renders up to 4 MP
    default_steps = 28
    default_guidance = 4.0
    max_references = 4
    inpaint_references = True
    min_reference_side = 64  # Flux2ImageProcessor refuses smaller references
    pipelines = {
        "text_to_image": "Flux2KleinPipeline",
        "edit": "Flux2KleinPipeline",
        "inpaint": "Flux2KleinInpaintPipeline",
    }
    hub_hint = "e.g. black-forest-labs/FLUX.2-klein-4B, black-forest-labs/FLUX.2-dev (gated)"

    def inpaint_kwargs(self, canvas, mask, refs):
        kw = {"image": canvas, "mask_image": mask, "strength": 1.0}
        if refs:
            kw["image_reference"] = refs[0] if len(refs) == 1 else ensure_min_side(
                stitch(refs, refs[0].width * refs[0].height), self.min_reference_side)
        return kw

    def decode_preview(self, pipe, latents, width, height):
        rows, cols = packed_grid(latents.shape[1], width, height)
        z = latents.reshape(latents.shape[0], rows, cols, -1).permute(0, 3, 1, 2)  # (B, C*4, h/2, w/2)
        bn = pipe.vae.bn
        z = z * torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps).to(z)
        z = pipe._unpatchify_latents(z + bn.running_mean.view(1, -1, 1, 1).to(z))
        return to_pil(pipe.vae.decode(shrink_latents(z).to(pipe.vae.dtype), return_dict=False)[0])
