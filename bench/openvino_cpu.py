"""The diffusers engine's OpenVINO backend (`backend = "openvino"`) against its torch backend on
SD-Turbo's architecture, full size, random weights (bench/sd_turbo_cpu.py builds them), 512x512,
one step, guidance 0. Speed and memory do not depend on the weight values; the images are noise.
Nothing is downloaded.

    # speed: torch float32 (the reference image), torch bfloat16, OpenVINO at its default
    # precision (bfloat16 on CPUs that have it) and at float32, all with TAESD, in one process on
    # the same weights and seeds (--static: also OpenVINO reshaped to 512x512; --sdxs: SDXS-512's UNet)
    .venv/bin/python bench/openvino_cpu.py --repeats 3

    # the engine itself: the folders `wanimage pull sd-turbo` writes (sd_turbo_cpu.py --save), the
    # sd-turbo preset's engines for both model ids in a process of their own per row: torch, then
    # OpenVINO converting (first start), then OpenVINO from the cached IR (a restart)
    .venv/bin/python bench/sd_turbo_cpu.py --save /tmp/wanimage-sd-turbo
    .venv/bin/python bench/openvino_cpu.py --engine /tmp/wanimage-sd-turbo

The difference from torch float32 is the mean absolute pixel difference (0-255) on the same seed
and decoder: with random weights, how far each backend's arithmetic carries through the network."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sd_turbo_cpu import PROMPT, params, peak_rss, sd_turbo_pipeline, sdxs_unet, taesd_model  # noqa: E402


def timed(pipe, seed: int, size: int) -> tuple[float, float, np.ndarray]:
    t, c = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        image = pipe(PROMPT, num_inference_steps=1, guidance_scale=0.0, height=size, width=size,
                     generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return time.perf_counter() - t, time.process_time() - c, np.asarray(image, dtype=np.int16)


def row(label: str, pipe, args, reference: dict, model: str, is_reference: bool = False) -> None:
    timed(pipe, 0, args.size)  # warm-up
    walls, cpus, diffs = [], [], []
    for seed in range(1, args.repeats + 1):
        wall, cpu, image = timed(pipe, seed, args.size)
        walls.append(wall)
        cpus.append(cpu)
        ref = reference.setdefault((model, seed), image) if is_reference else reference.get((model, seed))
        if ref is not None:
            diffs.append(float(np.abs(image - ref).mean()))
    diff = f"{statistics.mean(diffs):.2f}" if diffs else "no float32 run"
    print(f"| {label} | {statistics.median(walls):.2f} | {statistics.median(cpus):.1f} | {diff} |", flush=True)


def converted(work: Path, name: str, module):
    """The component's IR in `work` (converted once, kept: the weights are seeded, so the same)."""
    from wanimage.engines.diffusers.openvino_backend import convert

    folder = work / name
    stems = ("encoder", "decoder") if name.endswith("vae") else ("model",)
    if not all((folder / f"{s}.xml").is_file() for s in stems):
        shutil.rmtree(folder, ignore_errors=True)
        started, before = time.monotonic(), peak_rss()
        convert("vae" if name.endswith("vae") else name.split("-")[-1], module, folder)
        print(f"converted {name} in {time.monotonic() - started:.0f}s (peak RSS {before / 1e9:.1f} -> "
              f"{peak_rss() / 1e9:.1f} GB)", flush=True)
    return {s: folder / f"{s}.xml" for s in stems}


def speed(args) -> None:
    from diffusers import StableDiffusionPipeline

    from wanimage.engines.diffusers.dtypes import cpu_has_bfloat16
    from wanimage.engines.diffusers.openvino_backend import OpenVinoBackend

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    started = time.monotonic()
    base = sd_turbo_pipeline()
    tiny = taesd_model()
    components = {**base.components, "vae": tiny}
    unets = {"sd-turbo": base.unet, **({"sdxs": sdxs_unet()} if args.sdxs else {})}
    print(f"SD-Turbo architecture, random weights, {args.size}x{args.size}, 1 step, guidance 0, TAESD, "
          f"{args.threads} threads on {os.cpu_count()} CPUs, native bfloat16: {cpu_has_bfloat16()} "
          f"(built in {time.monotonic() - started:.1f}s); unet {params(base.unet):.0f}M, text encoder "
          f"{params(base.text_encoder):.0f}M, taesd {params(tiny):.1f}M", flush=True)
    irs = {f"{m}-unet": converted(work, f"{m}-unet", u) for m, u in unets.items()}
    irs["text_encoder"] = converted(work, "text_encoder", base.text_encoder)
    irs["taesd-vae"] = converted(work, "taesd-vae", tiny)
    reference: dict = {}
    print("| model backend precision | wall s (median) | CPU core-s | vs torch float32, same seed |")
    print("|---|---|---|---|")
    for dtype in ("float32", "bfloat16"):  # float32 first: the reference images
        for module in (*unets.values(), base.text_encoder, tiny):
            module.to(getattr(torch, dtype))
        for model, unet in unets.items():
            pipe = StableDiffusionPipeline(**{**components, "unet": unet})
            pipe.set_progress_bar_config(disable=True)
            row(f"{model} torch {dtype}", pipe, args, reference, model, dtype == "float32")
    for module in (*unets.values(), base.text_encoder):
        module.to("meta")  # the torch weights go: OpenVINO holds its own
    precisions = [("auto", "openvino default (bfloat16 here)"), ("float32", "openvino float32")]
    for dtype, label in precisions:
        backend = OpenVinoBackend(dtype, threads=args.threads)
        for model in unets:
            wrapped = {"unet": backend.wrap("unet", unets[model].config, irs[f"{model}-unet"]),
                       "text_encoder": backend.wrap("text_encoder", base.text_encoder.config, irs["text_encoder"]),
                       "vae": backend.wrap("vae", tiny, irs["taesd-vae"])}
            pipe = StableDiffusionPipeline(**{**components, **wrapped})
            pipe.set_progress_bar_config(disable=True)
            row(f"{model} {label}", pipe, args, reference, model)
            if args.static and dtype == "auto":  # the same models reshaped to the one size (FastSD CPU's way)
                side = args.size // 8
                static = {}
                for name, stems in (("unet", irs[f"{model}-unet"]), ("vae", irs["taesd-vae"])):
                    models = {}
                    for stem, path in stems.items():
                        m = backend.core.read_model(str(path))
                        shape = {"unet": {0: [1, 4, side, side], 1: [1], 2: [1, 77, 1024]},
                                 "vae": {0: [1, 4, side, side] if stem == "decoder" else [1, 3, args.size, args.size]}}
                        m.reshape({m.inputs[i]: s for i, s in shape[name].items()})
                        models[stem] = m
                    static[name] = backend.wrap(name, unets[model].config if name == "unet" else tiny, models)
                pipe = StableDiffusionPipeline(**{**components, **wrapped, **static})
                pipe.set_progress_bar_config(disable=True)
                row(f"{model} openvino default, static {args.size}x{args.size}", pipe, args, reference, model)
    print(f"load average (1 min) after: {os.getloadavg()[0]:.1f}; peak RSS {peak_rss() / 1e9:.2f} GB (float32 "
          "torch weights beside OpenVINO's: see --engine for the engine's own load)")


# ------------------------------------------------------------------------------ the engine


def engine_child(models: Path, backend: str, size: int, repeats: int) -> dict:
    """One process: the sd-turbo preset's engines for both model ids over one pool, as served."""
    from dataclasses import replace

    from wanimage.engines.diffusers import FAMILIES
    from wanimage.engines.diffusers.engine import DiffusersEngine
    from wanimage.engines.diffusers.loader import PipelinePool
    from wanimage.engines.diffusers.preset_config import preset_configs

    configs = preset_configs("sd-turbo", models, models)
    pool = PipelinePool()
    started = time.monotonic()
    engines = [DiffusersEngine(m, replace(configs[m], backend=backend), FAMILIES["sd"], "cpu", pool,
                               preset="sd-turbo") for m in ("wan2.7-image", "wan2.7-image-pro")]
    pipes = [e.pipeline("text_to_image") for e in engines]
    load, after_load = time.monotonic() - started, peak_rss()
    first = timed(pipes[0], 0, size)
    warm = [timed(pipes[0], seed, size) for seed in range(1, repeats + 1)]
    return {"unet": type(pipes[0].unet).__name__, "shared": pipes[0] is pipes[1], "load_s": load,
            "peak_after_load": after_load, "peak": peak_rss(), "first": first[:2],
            "wall": statistics.median(w for w, _, _ in warm), "cpu": statistics.median(c for _, c, _ in warm)}


def engine(args) -> None:
    print("| backend | load | UNet | both ids share one pipeline | load s | peak RSS after load | peak RSS after "
          f"{1 + args.repeats} images | first image wall s / CPU core-s | wall s (median of {args.repeats} warm) | "
          "CPU core-s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cache = [p for p in Path(args.engine).rglob(".cache/openvino") if p.is_dir()]
    for p in cache:  # the first OpenVINO row converts
        shutil.rmtree(p)
    for backend, label in (("torch", "bfloat16 torch weights"), ("openvino", "converts (first start)"),
                           ("openvino", "cached IR (a restart)")):
        out = subprocess.run([sys.executable, __file__, "--engine-child", str(args.engine), backend, str(args.size),
                              str(args.repeats)], capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode or not lines:
            print(f"| {backend} | {label} | failed: {out.stderr.strip().splitlines()[-1:]} |", flush=True)
            continue
        r = json.loads(lines[-1])
        print(f"| {backend} | {label} | {r['unet']} | {r['shared']} | {r['load_s']:.1f} | "
              f"{r['peak_after_load'] / 1e9:.2f} GB | {r['peak'] / 1e9:.2f} GB | {r['first'][0]:.2f} / "
              f"{r['first'][1]:.1f} | {r['wall']:.2f} | {r['cpu']:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--sdxs", action="store_true", help="also SDXS-512's UNet (estimated shape)")
    parser.add_argument("--static", action="store_true", help="also OpenVINO reshaped to the one size")
    parser.add_argument("--work", default="/tmp/wanimage-openvino-bench", help="the converted IR (kept)")
    parser.add_argument("--engine", type=Path, help="the folders sd_turbo_cpu.py --save wrote: the engine's rows")
    parser.add_argument("--engine-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_child:
        models, backend, size, repeats = args.engine_child
        print(json.dumps(engine_child(Path(models), backend, int(size), int(repeats))))
    elif args.engine:
        engine(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
