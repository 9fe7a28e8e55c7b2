"""CPU cost of the sd-turbo preset, measured without its weights: SD-Turbo's architecture (the SD
2.1 UNet, the OpenCLIP ViT-H text encoder, the SD VAE) and TAESD's are built in code with random
weights, and the same StableDiffusionPipeline call the preset makes (512x512, guidance 0) is timed.
Speed and memory do not depend on the weight values, so this is the preset's cost on this CPU; the
images are noise. Nothing is downloaded.

    # speed: each arithmetic x decoder, in one process on the same weights and seeds (--sdxs: and
    # SDXS-512's smaller UNet with the tiny decoder)
    .venv/bin/python bench/sd_turbo_cpu.py --steps 1 --repeats 3 --dtype float32 bfloat16 --vae full tiny --sdxs

    # faster arithmetic, side by side: bfloat16 + TAESD, then each option on top (one row each;
    # "+" joins options): channels_last, compile, int8-unet, int8-text, int8dyn-unet
    .venv/bin/python bench/sd_turbo_cpu.py --dtype float32 bfloat16 --vae tiny --options none channels_last \
        int8-unet int8-unet+int8-text int8dyn-unet compile

    # memory: the folders `wanimage pull sd-turbo` writes (fp16 files, random weights), then each
    # dtype loaded through the preset's own loader in a process of its own (peak RSS of that process)
    .venv/bin/python bench/sd_turbo_cpu.py --save /tmp/wanimage-sd-turbo
    .venv/bin/python bench/sd_turbo_cpu.py --memory /tmp/wanimage-sd-turbo --dtype auto float32

The difference each option makes to the image is the mean absolute pixel difference (0-255) from
float32 with the same decoder on the same seed. With random weights that measures how far the
arithmetic's rounding carries through the network, not how a trained model's picture looks."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

PROMPT = "a red apple on a table"


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


def taesd_model():
    """TAESD (madebyollin/taesd): diffusers' AutoencoderTiny defaults are its config."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(1)
    return AutoencoderTiny().eval()


def sdxs_unet():
    """SDXS-512's UNet as its paper describes it: SD 2.1's, block-pruned as BK-SDM-Tiny is (three
    levels, one block per level, no middle block): 318.7M parameters, against the paper's 0.32B and
    the published float32 file's ~328M (1.31 GB). Its config.json could not be read here: an
    estimate. (Until 6 December 2026 this kept the middle block: 416M, an upper bound.)"""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(2)
    return UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=1, cross_attention_dim=1024,
        block_out_channels=(320, 640, 1280), attention_head_dim=(5, 10, 20), use_linear_projection=True,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), mid_block_type=None).eval()


def params(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def timed(pipe, steps: int, seed: int, size: int) -> tuple[float, float, np.ndarray]:
    t, c = time.perf_counter(), time.process_time()
    image = pipe(PROMPT, num_inference_steps=steps, guidance_scale=0.0, height=size, width=size,
                 generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return time.perf_counter() - t, time.process_time() - c, np.asarray(image, dtype=np.int16)


# ------------------------------------------------------------------------------ speed


def speed(args) -> None:
    from wanimage.engines.diffusers.dtypes import DTYPES, cpu_has_bfloat16

    torch.set_num_threads(args.threads)
    started = time.monotonic()
    pipe = sd_turbo_pipeline()
    full, tiny = pipe.vae, taesd_model()
    turbo, small = pipe.unet, (sdxs_unet() if args.sdxs else None)
    print(f"SD-Turbo architecture, random weights, {args.size}x{args.size}, guidance 0, {args.threads} torch "
          f"threads on {os.cpu_count()} CPUs, CPU capability {torch.backends.cpu.get_cpu_capability()}, native "
          f"bfloat16: {cpu_has_bfloat16()} (built in {time.monotonic() - started:.1f}s)")
    print(f"params: unet {params(pipe.unet):.0f}M, text encoder {params(pipe.text_encoder):.0f}M, "
          f"vae {params(full):.1f}M, taesd {params(tiny):.1f}M"
          + (f", sdxs unet (estimated shape) {params(small):.0f}M" if small is not None else ""))
    reference: dict[tuple[str, int, int], np.ndarray] = {}  # (vae, steps, seed) -> float32 image
    print("| model | dtype | decoder | steps | wall s (median) | CPU core-s | vs float32, same decoder and seed |")
    print("|---|---|---|---|---|---|---|")
    runs = [("sd-turbo", vae) for vae in args.vae] + ([("sdxs", "tiny")] if small is not None else [])
    for dtype in args.dtype:  # float32 first: the reference
        for module in (turbo, small, pipe.text_encoder, full, tiny):
            if module is not None:
                module.to(DTYPES[dtype])
        for model, vae in runs:
            pipe.unet = turbo if model == "sd-turbo" else small
            pipe.vae = full if vae == "full" else tiny
            with torch.inference_mode():
                timed(pipe, 1, 0, args.size)  # warm-up
                for steps in args.steps:
                    walls, cpus, diffs = [], [], []
                    for seed in range(args.repeats):
                        wall, cpu, image = timed(pipe, steps, seed, args.size)
                        walls.append(wall)
                        cpus.append(cpu)
                        key = (model, vae, steps, seed)
                        ref = reference.setdefault(key, image) if dtype == "float32" else reference.get(key)
                        if ref is not None:
                            diffs.append(float(np.abs(image - ref).mean()))
                    diff = f"{statistics.mean(diffs):.2f}" if diffs else "no float32 run"
                    print(f"| {model} | {dtype} | {vae} | {steps} | {statistics.median(walls):.2f} | "
                          f"{statistics.median(cpus):.1f} | {diff} |", flush=True)
    if args.options:
        options_table(args, pipe, turbo, tiny, reference)
    print(f"load average (1 min) after: {os.getloadavg()[0]:.1f}; peak RSS {peak_rss() / 1e9:.2f} GB (float32 "
          "weights built, then cast: see --memory for the preset's own load)")


# ------------------------------------------------------------------------------ options

OPTIONS = ("none", "channels_last", "compile", "int8-unet", "int8-text", "int8dyn-unet", "int8dyn-text")


def with_options(pipe, options: set[str]) -> None:
    """The options on the pipeline's modules, in place: torchao int8 (weight-only as the engine's
    `quantize = "int8"`, or dynamic activation + weight: int8 matmuls), channels_last convolutions,
    torch.compile of the UNet (inductor, whole module)."""
    from wanimage.engines.diffusers.acceleration import quantize_module

    for option in sorted(options):
        kind, _, component = option.partition("-")
        if kind in ("int8", "int8dyn"):
            quantize_module(getattr(pipe, {"unet": "unet", "text": "text_encoder"}[component]),
                            "int8" if kind == "int8" else "int8_dynamic")
    if "channels_last" in options:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if "compile" in options:
        pipe.unet = torch.compile(pipe.unet)


def options_table(args, pipe, turbo, tiny, reference) -> None:
    """sd-turbo with TAESD in the compute dtype (bfloat16 when asked), each option set on fresh
    copies of the modules: wall, core-seconds, the first call (compilation), weight bytes, and the
    difference from float32 on the same seed."""
    import copy

    from wanimage.engines.diffusers.loader import module_bytes

    dtype = next((d for d in args.dtype if d != "float32"), "float32")
    from wanimage.engines.diffusers.dtypes import DTYPES

    text = pipe.text_encoder
    for module in (turbo, text, tiny):
        module.to(DTYPES[dtype])
    print(f"\n| options (sd-turbo, {dtype}, tiny decoder) | wall s (median) | CPU core-s | first call s | weights | "
          "vs float32, same seed |")
    print("|---|---|---|---|---|---|")
    for spec in args.options:
        options = set(spec.split("+")) - {"none"}
        pipe.unet, pipe.text_encoder, pipe.vae = copy.deepcopy(turbo), copy.deepcopy(text), copy.deepcopy(tiny)
        with_options(pipe, options)
        with torch.inference_mode():
            first = time.perf_counter()
            timed(pipe, 1, 0, args.size)  # warm-up (compiles)
            first = time.perf_counter() - first
            walls, cpus, diffs = [], [], []
            for seed in range(args.repeats):
                wall, cpu, image = timed(pipe, 1, seed, args.size)
                walls.append(wall)
                cpus.append(cpu)
                ref = reference.get(("sd-turbo", "tiny", 1, seed))
                if ref is not None:
                    diffs.append(float(np.abs(image - ref).mean()))
        weights = module_bytes(pipe, set())
        diff = f"{statistics.mean(diffs):.2f}" if diffs else "no float32 run"
        print(f"| {spec} | {statistics.median(walls):.2f} | {statistics.median(cpus):.1f} | {first:.1f} | "
              f"{weights / 1e9:.2f} GB | {diff} |", flush=True)
    pipe.unet, pipe.text_encoder, pipe.vae = turbo, text, tiny


# ------------------------------------------------------------------------------ memory


def save(models: Path) -> None:
    """The folders `wanimage pull sd-turbo` writes: fp16 variant files, TAESD's float32 file."""
    from wanimage.engines.diffusers.models_dir import folder_name, write_manifest
    from wanimage.engines.diffusers.presets import TAESD

    def pulled(repo: str, write) -> None:
        folder = models / folder_name(repo)
        folder.mkdir(parents=True, exist_ok=True)
        write(folder)
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                       and not p.name.startswith(".wanimage"))
        write_manifest(folder, repo, None, "bench/sd_turbo_cpu.py (random weights)", files)
        print(f"{repo}: {len(files)} files in {folder}")

    pipe = sd_turbo_pipeline()
    with torch.no_grad():
        pulled("stabilityai/sd-turbo", lambda f: pipe.to(torch.float16).save_pretrained(f, variant="fp16"))
        pulled(TAESD, lambda f: taesd_model().save_pretrained(f))


def memory_child(models: Path, dtype: str, vae: str, size: int, quantize: str = "preset") -> dict:
    """One process: the preset's engines for both model ids over one pool, one image each.
    `quantize`: "preset" keeps the preset's int8 components, "none" turns them off."""
    from dataclasses import replace

    from wanimage.engines.diffusers import FAMILIES
    from wanimage.engines.diffusers.engine import DiffusersEngine
    from wanimage.engines.diffusers.loader import PipelinePool, module_bytes
    from wanimage.engines.diffusers.preset_config import preset_configs

    configs = preset_configs("sd-turbo", models, models)
    pool = PipelinePool()
    started = time.monotonic()
    engines = []
    for model in ("wan2.7-image", "wan2.7-image-pro"):
        cfg = replace(configs[model], dtype=dtype, **({"vae": "full"} if vae == "full" else {}),
                      **({"quantize": {}} if quantize == "none" else {}))
        engines.append(DiffusersEngine(model, cfg, FAMILIES["sd"], "cpu", pool, preset="sd-turbo"))
    pipes = [e.pipeline("text_to_image") for e in engines]
    load = time.monotonic() - started
    after_load = peak_rss()
    with torch.inference_mode():
        wall, cpu, _ = timed(pipes[0], 1, 0, size)
    return {"dtype": str(engines[0].dtype).removeprefix("torch."), "vae": type(pipes[0].vae).__name__,
            "int8": ", ".join(engines[0].cfg.quantize) or "none",
            "shared": pipes[0] is pipes[1], "load_s": load, "peak_after_load": after_load, "peak": peak_rss(),
            "wall": wall, "cpu": cpu, "weights": module_bytes(pipes[0], set())}


def memory(args) -> None:
    print("| dtype asked | computes in | decoder | int8 | both ids share one pipeline | load s | weights | "
          "peak RSS after load | peak RSS after one 512x512 image | wall s | CPU core-s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for dtype in args.dtype:
        for vae in args.vae:
            for quantize in args.quantize:
                out = subprocess.run([sys.executable, __file__, "--memory-child", str(args.memory), dtype, vae,
                                      str(args.size), quantize], capture_output=True, text=True)
                lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
                if out.returncode or not lines:
                    print(f"| {dtype} | failed: {out.stderr.strip().splitlines()[-1:]} |")
                    continue
                r = json.loads(lines[-1])
                print(f"| {dtype} | {r['dtype']} | {r['vae']} | {r['int8']} | {r['shared']} | {r['load_s']:.1f} | "
                      f"{r['weights'] / 1e9:.2f} GB | {r['peak_after_load'] / 1e9:.2f} GB | {r['peak'] / 1e9:.2f} GB | "
                      f"{r['wall']:.2f} | {r['cpu']:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--vae", nargs="+", default=["full", "tiny"], choices=["full", "tiny"])
    parser.add_argument("--options", nargs="+", default=[], help=f"rows of options on bfloat16 + TAESD, "
                        f"'+' joins several: {', '.join(OPTIONS)}")
    parser.add_argument("--sdxs", action="store_true", help="also time SDXS-512's UNet (estimated shape), TAESD")
    parser.add_argument("--save", type=Path, help="write the pulled folders (random weights) here")
    parser.add_argument("--memory", type=Path, help="load the folders --save wrote, one process per dtype")
    parser.add_argument("--quantize", nargs="+", default=["preset"], choices=["preset", "none"],
                        help="--memory: the preset's int8 components, or none")
    parser.add_argument("--memory-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        models, dtype, vae, size, quantize = args.memory_child
        print(json.dumps(memory_child(Path(models), dtype, vae, int(size), quantize)))
    elif args.save:
        save(args.save)
    elif args.memory:
        memory(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
