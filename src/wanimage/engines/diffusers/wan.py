"""Wan 2.x (Alibaba), the API's namesake: its video model rendering one frame.

    text_to_image  WanPipeline(num_frames=1)  Wan-AI/Wan2.1-T2V-1.3B-Diffusers, Wan2.1-T2V-14B, ...
    edit, inpaint  none in diffusers 0.42.1 for single images: the capabilities say so and the
                   API answers InvalidParameter naming the model and the mode"""

from __future__ import annotations

import torch

from .base import Family, shrink_latents, to_pil


class Wan(Family):
    name = "wan"
    multiple = 16  # VAE 8x spatial, 1x2x2 patches
    native_pixels = 1280 * 720  # the 720p training resolution
    default_steps = 50
    default_guidance = 5.0
    max_references = 0
    pipelines = {"text_to_image": "WanPipeline"}
    hub_hint = "e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    batch_argument = "num_videos_per_prompt"

    def sampling_kwargs(self, role: str, cfg) -> dict:
        return {**super().sampling_kwargs(role, cfg), "num_frames": 1, "output_type": "pil"}

    def images_of(self, result) -> list:
        return [video[0] for video in result.frames]  # one frame per video

    def decode_preview(self, pipe, latents, width, height):
        c = pipe.vae.config
        z = shrink_latents(latents).to(pipe.vae.dtype)  # (B, C, T, h, w)
        mean = torch.tensor(c.latents_mean).view(1, c.z_dim, 1, 1, 1).to(z)
        std = torch.tensor(c.latents_std).view(1, c.z_dim, 1, 1, 1).to(z)
        return to_pil(pipe.vae.decode(z * std + mean, return_dict=False)[0][:, :, 0])
