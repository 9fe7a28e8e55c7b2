"""CPU cost of the sd-turbo preset, measured without its weights: SD-Turbo's architecture (the SD
2.1 UNet, the OpenCLIP ViT-H text encoder, the SD VAE) is built in code with random weights, and
the same StableDiffusionPipeline call the preset makes (512x512, guidance 0) is timed. Speed and
memory do not depend on the weight values, so this is the preset's cost on this CPU; the images
are noise. Nothing is downloaded.

    .venv/bin/python bench/sd_turbo_cpu.py --steps 1 4 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import torch


def sd_turbo_pipeline():
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from wanimage.engines.diffusers.tiny import clip_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(  # stabilityai/sd-turbo unet/config.json (SD 2.1)
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=1024,
        block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3).eval()
    vae = AutoencoderKL(  # the SD VAE
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=768,
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4).eval()
    text = CLIPTextModel(CLIPTextConfig(  # OpenCLIP ViT-H/14's text tower, as SD 2.x uses it
        hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
        projection_dim=1024, hidden_act="gelu", vocab_size=49408, max_position_embeddings=77)).eval()
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="trailing", steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=clip_tokenizer(), unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def params(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    pipe = sd_turbo_pipeline()
    print(f"SD-Turbo architecture, random weights, float32, {args.size}x{args.size}, guidance 0, "
          f"{args.threads} torch threads on {os.cpu_count()} CPUs (built in {time.monotonic() - started:.1f}s)")
    print(f"params: unet {params(pipe.unet):.0f}M, text encoder {params(pipe.text_encoder):.0f}M, "
          f"vae {params(pipe.vae):.1f}M")
    gen = torch.Generator("cpu")
    with torch.inference_mode():
        pipe("warm-up", num_inference_steps=1, guidance_scale=0.0, height=args.size, width=args.size,
             generator=gen.manual_seed(0))
        for steps in args.steps:
            times, cpu = [], []
            for i in range(args.repeats):
                t, c = time.perf_counter(), time.process_time()
                pipe("a red apple on a table", num_inference_steps=steps, guidance_scale=0.0, height=args.size,
                     width=args.size, generator=gen.manual_seed(i))
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            # CPU seconds say what the work costs whatever else runs beside it; wall seconds depend on that
            print(f"{steps} step(s): wall median {statistics.median(times):.2f} s per image "
                  f"(min {min(times):.2f}, max {max(times):.2f}), CPU {statistics.median(cpu):.1f} core-seconds "
                  f"per image, {args.repeats} runs; load average (1 min) after: {os.getloadavg()[0]:.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    print(f"peak RSS {peak / 1e9:.2f} GB (the whole process: weights, activations, Python)")


if __name__ == "__main__":
    main()
