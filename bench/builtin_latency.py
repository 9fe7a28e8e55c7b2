"""CPU latency of the built-in engine: one 1024x1024 image, a 12-image set, a 2-image edit,
each the median of --repeats runs after one warm-up, plus peak resident memory.

    .venv/bin/python bench/builtin_latency.py [--threads 2] [--repeats 5] [--weights PATH]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from wanimage.core.job import make_job
from wanimage.engines.base import GenerationJob, no_progress
from wanimage.engines.builtin import load_builtin_engine
from wanimage.types import Box, Mode


def cases() -> dict[str, GenerationJob]:
    base = Image.new("RGB", (1024, 1024), (180, 210, 240))
    first = Image.new("RGB", (512, 512), (250, 250, 250))
    return {
        "t2i 1024x1024, 1 object": make_job("wan2.7-image", Mode.TEXT_TO_IMAGE,
                                                 "a red apple", 1024, 1024, 1, 1),
        "t2i 1024x1024, 3 objects": make_job(
            "wan2.7-image", Mode.TEXT_TO_IMAGE,
            "two red apples on the left and a cat on the right on a blue background",
            1024, 1024, 1, 1),
        "set of 12 at 1024x1024": make_job("wan2.7-image", Mode.TEXT_TO_IMAGE_SET,
                                                "a cat on a green background", 1024, 1024, 12, 1),
        "2-image bbox edit 1024x1024": make_job(
            "wan2.7-image", Mode.EDIT, "add a dog in the box", 1024, 1024, 1, 1,
            images=[first, base], boxes=[[], [Box(100, 500, 500, 900)]]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--weights", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    engine = load_builtin_engine(args.weights)
    print(f"load: {time.perf_counter() - t:.2f} s (weights + MiniLM), threads={args.threads}")
    for name, job in cases().items():
        engine.generate(job, no_progress)  # warm-up: text cache, oneDNN kernels
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            images = engine.generate(job, no_progress)
            times.append(time.perf_counter() - t)
        print(f"{name:32s} median {statistics.median(times):6.3f} s  min {min(times):6.3f} s  "
              f"images {len(images)}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
