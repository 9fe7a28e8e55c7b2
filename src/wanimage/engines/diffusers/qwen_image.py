"""Qwen-Image (Alibaba's open model, the default GPU family).

    text_to_image  QwenImagePipeline               Qwen/Qwen-Image
    edit           QwenImageEditPlusPipeline        Qwen/Qwen-Image-Edit-2509 (a list of references;
                                                    the vendor recommends 1-3: beyond max_references
                                                    they are stitched, see base.group_references)
    inpaint        QwenImageEditInpaintPipeline     Qwen/Qwen-Image-Edit (or QwenImageInpaintPipeline
                                                    with Qwen/Qwen-Image); it works at ~1 MP whatever
                                                    height/width say: the engine resizes back
    refine         QwenImageImg2ImgPipeline         Qwen/Qwen-Image (second pass for 4K)

True classifier-free guidance (`true_cfg_scale`) only runs with a negative prompt, so the family
defaults to negative_prompt " " with true_cfg 4.0, as the model card does."""

from __future__ import annotations

import torch

from .base import Family, packed_grid, shrink_latents, to_pil


class QwenImage(Family):
    name = "qwen_image"
    multiple = 16  # VAE 8x, then 2x2 patches
    native_pixels = 1664 * 928  # the largest of the model card's aspect-ratio table (~1.5 MP)
    default_steps = 50
    max_references = 3
    pipelines = {
        "text_to_image": "QwenImagePipeline",
        "edit": "QwenImageEditPlusPipeline",
        "inpaint": "QwenImageEditInpaintPipeline",
        "refine": "QwenImageImg2ImgPipeline",
    }
    hub_hint = "e.g. Qwen/Qwen-Image, Qwen/Qwen-Image-Edit-2509"

    def sampling_kwargs(self, role: str, cfg) -> dict:
        kw = {"num_inference_steps": cfg.steps or self.default_steps,
              "true_cfg_scale": cfg.true_cfg if cfg.true_cfg is not None else 4.0,
              "negative_prompt": cfg.negative_prompt if cfg.negative_prompt is not None else " "}
        if kw["true_cfg_scale"] <= 1:
            del kw["negative_prompt"]  # no CFG: do not encode a negative prompt for nothing
        if cfg.guidance is not None:  # only for guidance-distilled checkpoints
            kw["guidance_scale"] = cfg.guidance
        return kw

    def decode_preview(self, pipe, latents: torch.Tensor, width: int, height: int):
        rows, cols = packed_grid(latents.shape[1], width, height)
        f = pipe.vae_scale_factor * 2
        z = pipe._unpack_latents(latents, rows * f, cols * f, pipe.vae_scale_factor)  # (B, C, 1, h, w)
        z = shrink_latents(z).to(pipe.vae.dtype)
        c = pipe.vae.config
        mean = torch.tensor(c.latents_mean).view(1, c.z_dim, 1, 1, 1).to(z)
        std = torch.tensor(c.latents_std).view(1, c.z_dim, 1, 1, 1).to(z)
        return to_pil(pipe.vae.decode(z * std + mean, return_dict=False)[0][:, :, 0])
