"""FLUX.1 (Black Forest Labs).

    text_to_image  FluxPipeline              black-forest-labs/FLUX.1-dev (or -schnell: steps 4,
                                             guidance 0)
    edit           FluxKontextPipeline       black-forest-labs/FLUX.1-Kontext-dev: exactly one
                                             reference per call (a list would be a batch), so
                                             several references are stitched onto one canvas, in
                                             reading order (reference_strategy = "stitch"), or
                                             refused (reference_strategy = "error")
    inpaint        FluxFillPipeline          black-forest-labs/FLUX.1-Fill-dev (guidance 30, as its
                                             model card says); it has no padding_mask_crop: the
                                             engine's composite keeps outside-box pixels exact
    refine         FluxImg2ImgPipeline       black-forest-labs/FLUX.1-dev (second pass for 4K)

FLUX.1 is guidance-distilled: `guidance` is the embedded guidance, one forward per step."""

from __future__ import annotations

from .base import Family, packed_grid, shrink_latents, to_pil


class Flux(Family):
    name = "flux"
    multiple = 16  # VAE 8x, then 2x2 packing
    native_pixels = 2 * 1024 * 1024  # FLUX.1 is trained up to ~2 MP
    default_steps = 28
    default_guidance = 3.5
    max_references = 1
    pipelines = {
        "text_to_image": "FluxPipeline",
        "edit": "FluxKontextPipeline",
        "inpaint": "FluxFillPipeline",
        "refine": "FluxImg2ImgPipeline",
    }
    hub_hint = "e.g. black-forest-labs/FLUX.1-dev, FLUX.1-Kontext-dev, FLUX.1-Fill-dev (gated)"

    def sampling_kwargs(self, role: str, cfg) -> dict:
        kw = super().sampling_kwargs(role, cfg)
        if role == "inpaint" and cfg.guidance is None:
            kw["guidance_scale"] = 30.0  # FLUX.1-Fill-dev's recommended guidance
        if role == "edit" and cfg.guidance is None:
            kw["guidance_scale"] = 2.5  # FLUX.1-Kontext-dev's recommended guidance
        if role in ("inpaint", "edit") or cfg.negative_prompt is None:
            kw.pop("negative_prompt", None)  # Fill takes none; elsewhere it turns on true CFG
        if "negative_prompt" in kw:
            kw["true_cfg_scale"] = cfg.true_cfg if cfg.true_cfg is not None else 1.0
        return kw

    def edit_kwargs(self, refs, width, height):
        # Kontext derives its output size from max_area and the aspect of width/height; the
        # reference (already capped at reference_pixels) is used as is, not snapped to 1 MP
        return {"image": refs[0], "_auto_resize": False, "max_area": width * height}

    def inpaint_kwargs(self, canvas, mask, refs):
        return {"image": canvas, "mask_image": mask}  # Fill has strength, but 1.0 is its default

    def decode_preview(self, pipe, latents, width, height):
        rows, cols = packed_grid(latents.shape[1], width, height)
        f = pipe.vae_scale_factor * 2
        z = shrink_latents(pipe._unpack_latents(latents, rows * f, cols * f, pipe.vae_scale_factor))
        c = pipe.vae.config
        z = (z / c.scaling_factor + (c.shift_factor or 0.0)).to(pipe.vae.dtype)
        return to_pil(pipe.vae.decode(z, return_dict=False)[0])
