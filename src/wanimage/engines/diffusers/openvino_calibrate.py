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
            with torch.no_grad():  # a torch text encoder, or a function of the ids giving the same output
                return torch.as_tensor(text_encoder(ids)[0]).float().numpy()

        size = unet_config["sample_size"]
        return cls(encode, scheduler, (unet_config["in_channels"], size, size), steps or 25,
                   7.5 if guidance is None else guidance)


UNetFn = Callable[[list[np.ndarray]], np.ndarray]  # (sample, timestep, text embeddings) -> the prediction


def sample(calibration: Calibration, steps: int, prompts: tuple[str, ...], unet: UNetFn | None,
           on_input: Callable[[list[np.ndarray]], None]) -> list[torch.Tensor]:
    """A sampling run per prompt as the pipeline makes it (seeded noise, the scheduler's timesteps,
    classifier-free guidance where asked): each UNet input handed to `on_input`; the final latents
    returned. `unet` None: only the first step's inputs are made (no prediction to step with)."""
    c = calibration
    scheduler = copy.deepcopy(c.scheduler)
    guided = c.guidance > 1
    unconditional = c.encode("") if guided else None
    rng = np.random.default_rng(0)
    finals = []
    for prompt in prompts:
        embeddings = c.encode(prompt)
        if guided:
            embeddings = np.concatenate([unconditional, embeddings])
        scheduler.set_timesteps(steps)
        latents = torch.from_numpy(rng.standard_normal((1, *c.latent_shape), dtype=np.float32))
        latents = latents * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            x = scheduler.scale_model_input(latents, t)
            x = torch.cat([x, x]) if guided else x
            inputs = [x.numpy(), np.array([float(t)], dtype=np.float32), embeddings]
            on_input(inputs)
            if unet is None:
                break
            noise = torch.from_numpy(np.asarray(unet(inputs)))
            if guided:
                uncond, cond = noise.chunk(2)
                noise = uncond + c.guidance * (cond - uncond)
            latents = scheduler.step(noise, t, latents).prev_sample
        finals.append(latents)
    return finals


def unet_inputs(model, calibration: Calibration) -> list[list[np.ndarray]]:
    """UNet inputs (sample, timestep, text embeddings) as the pipeline makes them: one per prompt
    and step, the prompts cut so that at most MAX_SAMPLES are made. `model` is the float UNet's
    openvino.Model, run to step from one input to the next (a run of one step needs none)."""
    import openvino as ov

    steps = min(max(calibration.steps, MIN_STEPS), MAX_STEPS)
    prompts = CALIBRATION_PROMPTS[:max(1, MAX_SAMPLES // steps)]
    run = None
    if steps > 1:
        compiled = ov.Core().compile_model(model, "CPU")  # freed when this returns, before NNCF's own copy

        def run(inputs: list[np.ndarray]) -> np.ndarray:
            return compiled(inputs)[0]

    samples: list[list[np.ndarray]] = []
    sample(calibration, steps, prompts, run, samples.append)
    return samples


class _Captured(Exception):
    """Stops a VAE's decode at its decoder's input (calibration needs that input, not the image)."""


def decoder_inputs(vae, unet: UNetFn, calibration: Calibration) -> list[list[np.ndarray]]:
    """What a VAE's decoder submodule receives for the CALIBRATION_PROMPTS' images: the final
    latents of the model's own sampling run (its steps, at most MAX_STEPS; `unet` the converted
    UNet), through the pipeline's `vae.decode(latents / scaling_factor)` up to the decoder (the
    SD VAE's post-quant convolution included), captured there without decoding."""
    steps = min(calibration.steps, MAX_STEPS)
    finals = sample(calibration, steps, CALIBRATION_PROMPTS, unet, lambda inputs: None)
    captured: list[list[np.ndarray]] = []

    def capture(module, args):
        captured.append([args[0].detach().float().numpy()])
        raise _Captured

    hook = vae.decoder.register_forward_pre_hook(capture)
    try:
        for latents in finals:
            try:
                with torch.no_grad():
                    vae.decode(latents / vae.config.scaling_factor)
            except _Captured:
                pass
    finally:
        hook.remove()
    return captured


def quantize_convolutions(model, samples: list[list[np.ndarray]]):
    """The model with its convolutions' weights and inputs in int8 (NNCF static quantization,
    ranges measured on `samples`); its MatMuls left as they are (`compress` gave them int8 weights)."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    # SmoothQuant off: for a TRANSFORMER model NNCF would smooth every MatMul (a pass of its own
    # over the samples, and a copy of their weights: 3 GB and a quarter of sd-turbo's conversion time) for
    # the int8 inputs they do not get here
    no_smoothing = AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(convolution=-1,
                                                                                                    matmul=-1))
    return nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples),
                         model_type=nncf.ModelType.TRANSFORMER, fast_bias_correction=True,
                         ignored_scope=nncf.IgnoredScope(types=["MatMul"], validate=False),
                         advanced_parameters=no_smoothing)
