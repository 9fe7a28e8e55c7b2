"""Engine overhead on CPU: seconds per denoising step of each family's tiny pipeline, called bare
(the pipeline with the same arguments the engine would pass, no callback) and through
DiffusersEngine.generate (argument building, the step callback with progress, resizing to the job
size, references, masks and the exact composite for box edits). Goal: the engine adds < 5 %.

Both sides share one loaded pipeline and run round-robin (bare, engine, engine, bare, ...), so
machine noise hits both alike; each figure is the median over the repeats.

    .venv/bin/python bench/engine_overhead.py [--repeats 9] [--steps 8] [--size 64]
        [--families qwen_image,flux,...] [--modes text_to_image,edit,inpaint]

Tiny random weights (engines/diffusers/tiny.py), one torch thread (tiny_cpu_speedups): the
per-step time is small, so this is a worst case for the engine's fixed costs relative to the
denoiser; with real models each step costs 10^3-10^5 x more and the same fixed costs vanish."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from wanimage.core.job import make_job  # noqa: E402
from wanimage.engines.base import no_progress  # noqa: E402
from wanimage.engines.diffusers import FAMILIES  # noqa: E402
from wanimage.engines.diffusers.base import generator, mask_image, resize_exact  # noqa: E402
from wanimage.engines.diffusers.config import parse_config  # noqa: E402
from wanimage.engines.diffusers.engine import DiffusersEngine  # noqa: E402
from wanimage.engines.diffusers.tiny import tiny_cpu_speedups  # noqa: E402
from wanimage.types import Box, Mode  # noqa: E402

ROLES = {
    "qwen_image": {"text_to_image": "tiny:qwen_image", "edit": "tiny:qwen_image", "inpaint": "tiny:qwen_image"},
    "flux": {"text_to_image": "tiny:flux", "edit": "tiny:flux", "inpaint": "tiny:flux:fill"},
    "flux2": {"text_to_image": "tiny:flux2", "edit": "tiny:flux2", "inpaint": "tiny:flux2",
              "call_kwargs": {"text_encoder_out_layers": [1]}},
    "sdxl": {"text_to_image": "tiny:sdxl", "inpaint": "tiny:sdxl"},
    "zimage": {"text_to_image": "tiny:zimage", "edit": "tiny:zimage:omni", "inpaint": "tiny:zimage"},
    "wan": {"text_to_image": "tiny:wan"},
}
PROMPT = "a red apple on a wooden table"


def photo(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def make_engine(family: str, steps: int) -> DiffusersEngine:
    raw = {"family": family, **ROLES[family], "steps": steps, "true_cfg": 1.0,
           "reference_pixels": 64 * 64}
    cfg = parse_config({"models": {"m": raw}})["m"]
    return DiffusersEngine("wan2.7-image", cfg, FAMILIES[family])


def cases(engine: DiffusersEngine, role: str, size: int):
    """(job for the engine, the bare pipeline call) for one role, with the same pipeline arguments."""
    fam, cfg = engine.family, engine.cfg
    base = {"prompt": PROMPT, "width": size, "height": size, "generator": None,
            **fam.sampling_kwargs(role, cfg), **cfg.call_kwargs}
    if role == "text_to_image":
        job = make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, PROMPT, size, size, 1, 7)
        extra = {}
    elif role == "edit":
        refs = [photo(size, size, 1)]
        job = make_job("wan2.7-image", Mode.EDIT, PROMPT, size, size, 1, 7, images=refs)
        extra = fam.edit_kwargs(engine._references(refs), size, size)
    else:  # inpaint: one box on the canvas; the engine adds mask, feathered alpha and composite
        canvas = photo(size, size, 2)
        box = Box(size // 8, size // 8, size // 2, size // 2)
        job = make_job("wan2.7-image", Mode.EDIT, PROMPT, size, size, 1, 7, images=[canvas], boxes=[[box]])
        extra = fam.inpaint_kwargs(resize_exact(canvas, size, size), mask_image([box], size, size), [])
    pipe = engine.pipeline(role)
    pipe.set_progress_bar_config(disable=True)  # pipelines made with from_pipe print tqdm bars otherwise

    def bare():
        return fam.images_of(pipe(**{**base, **extra, "generator": generator(7)}))[0]

    def through_engine():
        return engine.generate(job, no_progress)[0]

    return bare, through_engine


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="job and generation size (a multiple of 16)")
    parser.add_argument("--families", default=",".join(ROLES))
    parser.add_argument("--modes", default="text_to_image,edit,inpaint")
    args = parser.parse_args()
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()

    with tiny_cpu_speedups():
        rows = []
        for family in args.families.split(","):
            engine = make_engine(family, args.steps)
            for role in args.modes.split(","):
                if role in ROLES[family]:
                    bare, through = cases(engine, role, args.size)
                    bare(), through()  # warm-up: load, first-call allocations
                    rows.append((family, role, bare, through, [], []))
        for r in range(args.repeats):  # round-robin over every case; alternate which side goes first
            for _family, _role, bare, through, tb, te in rows:
                if r % 2:
                    te.append(timed(through))
                    tb.append(timed(bare))
                else:
                    tb.append(timed(bare))
                    te.append(timed(through))

    print(f"tiny pipelines on CPU, 1 torch thread, {args.size}x{args.size}, {args.steps} steps, "
          f"median of {args.repeats} round-robin repeats")
    print(f"{'family':<11} {'mode':<14} {'bare ms/step':>13} {'engine ms/step':>15} {'ratio':>7} {'best-of ratio':>14}")
    ratios, best = [], []
    for family, role, _b, _t, tb, te in rows:
        b, e = statistics.median(tb) / args.steps, statistics.median(te) / args.steps
        ratios.append(e / b)
        best.append(min(te) / min(tb))
        print(f"{family:<11} {role:<14} {b * 1e3:>13.2f} {e * 1e3:>15.2f} {e / b:>7.3f} {best[-1]:>14.3f}")
    print(f"ratio of medians: median {statistics.median(ratios):.3f}, max {max(ratios):.3f}; "
          f"ratio of best times: median {statistics.median(best):.3f}, max {max(best):.3f} (goal: < 1.05)")


if __name__ == "__main__":
    main()
