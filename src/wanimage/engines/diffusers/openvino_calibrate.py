"""`quantize = { unet = "int8_hybrid" }` on the OpenVINO backend: the UNet's convolutions run in
int8, weights and activations (the CPU's VNNI / AMX int8 kernels), while its MatMuls keep int8
weights only and compute in the inference precision, as optimum-intel's hybrid quantization of
diffusion models does (full int8 on the attention MatMuls is what costs image quality there).

Activations need their ranges measured, so NNCF's static quantization runs the float UNet on
calibration inputs, which the pipeline makes here itself (no dataset is downloaded): the
CALIBRATION_PROMPTS through its own text encoder, its scheduler's timesteps, and the latents of a
short sampling run of the float UNet.
Measured on sd-turbo's UNet at 512x512 on a 2-core AMD EPYC (AVX512-VNNI, no AMX), random weights:
0.76x the CPU time of the UNet with int8 MatMul weights alone (docs/diffusers.md "OpenVINO backend")."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# Everyday subjects and styles, a few words each, as users write them (English: the CLIP text
# encoders of the sd family read English; Chinese prompts reach them translated).
CALIBRATION_PROMPTS = (
    "a red apple on a wooden table",
    "a portrait of an old man with a grey beard, soft window light",
    "a mountain lake at sunrise, pine trees and mist",
    "a city street at night with neon signs in the rain",
    "a cat asleep on a blue sofa",
    "a bowl of ramen with chopsticks, seen from above",
    "an astronaut riding a horse on the moon, digital art",
    "a watercolor painting of flowers in a glass vase",
)
MAX_SAMPLES = 16  # UNet inputs measured: NNCF's statistics cost one UNet call each
# The sampling run's steps: the model's, at least MIN_STEPS (a one-step model's edits start from
# partly noised images, and its quality setting runs 4 steps: their inputs are measured too) and
# at most MAX_STEPS (the same timestep range, fewer UNet calls)
MIN_STEPS, MAX_STEPS = 4, 8


@dataclass(frozen=True)
class Calibration:
    """What a calibration run needs of the pipeline."""

    encode: Callable[[str], np.ndarray]  # prompt -> its text embeddings, (1, tokens, width)
    scheduler: Any  # a diffusers scheduler, set to the run's steps here (a copy is used)
    latent_shape: tuple[int, int, int]  # (channels, height, width) of the UNet's sample
    steps: int
    guidance: float  # above 1: classifier-free guidance, the batch of two the pipeline runs

    @classmethod
    def of(cls, tokenizer, text_encoder, scheduler, unet_config, steps: int | None,
           guidance: float | None) -> Calibration:
        """From the pipeline's parts; `steps` / `guidance` as the model is configured (None: the sd
        family's defaults, 25 and 7.5)."""

        def encode(prompt: str) -> np.ndarray:
            ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                            return_tensors="pt").input_ids
            with torch.no_grad():
                return text_encoder(ids)[0].float().numpy()

        size = unet_config["sample_size"]
        return cls(encode, scheduler, (unet_config["in_channels"], size, size), steps or 25,
                   7.5 if guidance is None else guidance)


def unet_inputs(model, calibration: Calibration) -> list[list[np.ndarray]]:
    """UNet inputs (sample, timestep, text embeddings) as the pipeline makes them: one per prompt
    and step, the prompts cut so that at most MAX_SAMPLES are made. `model` is the float UNet's
    openvino.Model, run only where a later step needs the latents of an earlier one."""
    import openvino as ov

    c = calibration
    scheduler = copy.deepcopy(c.scheduler)
    steps = min(max(c.steps, MIN_STEPS), MAX_STEPS)
    prompts = CALIBRATION_PROMPTS[:max(1, MAX_SAMPLES // steps)]
    guided = c.guidance > 1
    unconditional = c.encode("") if guided else None
    unet = ov.Core().compile_model(model, "CPU") if steps > 1 else None
    rng = np.random.default_rng(0)
    samples = []
    for prompt in prompts:
        embeddings = c.encode(prompt)
        if guided:
            embeddings = np.concatenate([unconditional, embeddings])
        scheduler.set_timesteps(steps)
        latents = torch.from_numpy(rng.standard_normal((1, *c.latent_shape), dtype=np.float32))
        latents = latents * scheduler.init_noise_sigma
        for index, t in enumerate(scheduler.timesteps):
            x = scheduler.scale_model_input(latents, t)
            x = torch.cat([x, x]) if guided else x
            inputs = [x.numpy(), np.array([float(t)], dtype=np.float32), embeddings]
            samples.append(inputs)
            if index == steps - 1:
                break  # the last step's output feeds no further input
            noise = torch.from_numpy(np.asarray(unet(inputs)[0]))
            if guided:
                uncond, cond = noise.chunk(2)
                noise = uncond + c.guidance * (cond - uncond)
            latents = scheduler.step(noise, t, latents).prev_sample
    del unet
    return samples


def quantize_convolutions(model, samples: list[list[np.ndarray]]):
    """The model with its convolutions' weights and inputs in int8 (NNCF static quantization,
    ranges measured on `samples`); its MatMuls left as they are, for `compress` to give int8 weights."""
    import nncf

    return nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples),
                         model_type=nncf.ModelType.TRANSFORMER, fast_bias_correction=True,
                         ignored_scope=nncf.IgnoredScope(types=["MatMul"], validate=False))
