"""How far each CPU arithmetic of the sd-turbo preset moves the picture from float32: the preset's
engine over the folders `bench/cpu_real.py` built (SD-Turbo's architecture with random weights at
full size, TAESD), one configuration after the other in this process, the same prompts and seeds,
text-to-image and an edit (img2img at the preset's strength); per configuration the mean absolute
pixel difference (0-255) from torch float32 and the CPU seconds per image. With random weights this
is how far each rounding carries through the network, not what a trained model's picture looks
like (no trained checkpoint can be downloaded here).

    .venv/bin/python bench/cpu_real.py --paths wanimage --skip-peers --repeats 1   # builds the folders once
    flock /tmp/wanimage-heavy.lock nice -n 10 .venv/bin/python bench/quantize_quality.py
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from wanimage.core.job import make_job  # noqa: E402
from wanimage.engines.base import no_progress  # noqa: E402
from wanimage.engines.diffusers import FAMILIES  # noqa: E402
from wanimage.engines.diffusers.engine import DiffusersEngine  # noqa: E402
from wanimage.engines.diffusers.loader import PipelinePool  # noqa: E402
from wanimage.engines.diffusers.preset_config import preset_configs  # noqa: E402
from wanimage.types import Mode  # noqa: E402

PROMPTS = ("a red apple on a table", "a lighthouse on a cliff at dusk", "a bowl of cherries, studio light")
CONFIGS = {  # label -> the [defaults] a config file sets over the preset's keys
    "torch float32 (reference)": 'backend = "torch"\ndtype = "float32"\nquantize = "none"\n',
    "openvino, float16 IR": 'quantize = "none"\n',
    "openvino, int8 MatMul weights": 'quantize = { unet = "int8", text_encoder = "int8" }\n',
    "openvino, UNet int8_hybrid": 'quantize = { unet = "int8_hybrid", text_encoder = "int8" }\n',
    "openvino, UNet and decoder int8_hybrid (the preset)": "",
}


def images(engine: DiffusersEngine, size: int) -> tuple[list[np.ndarray], list[float]]:
    """Text-to-image for each prompt (seed = its index), then an edit of the first image."""
    out, cpu = [], []
    for seed, prompt in enumerate(PROMPTS):
        started = time.process_time()
        image = engine.generate(make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, prompt, size, size, 1, seed),
                                no_progress)[0]
        cpu.append(time.process_time() - started)
        out.append(np.asarray(image, dtype=np.float32))
    first = engine.generate(make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, PROMPTS[0], size, size, 1, 0), no_progress)[0]
    edit = make_job("wan2.7-image", Mode.EDIT, "the apple in green", size, size, 1, 5, images=(first,))
    out.append(np.asarray(engine.generate(edit, no_progress)[0], dtype=np.float32))
    return out, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=str(ROOT / ".cache" / "cpu-real" / "models"))
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    models = Path(args.models)
    reference = None
    print(f"sd-turbo preset, {args.size}x{args.size}, 1 step; {len(PROMPTS)} text-to-image images and one edit; "
          "difference: mean absolute pixel difference (0-255) from torch float32, same seeds")
    with tempfile.TemporaryDirectory() as tmp:
        for label, keys in CONFIGS.items():
            override = Path(tmp) / "engines.toml"
            override.write_text("[defaults]\n" + keys)
            cfg = preset_configs("sd-turbo", models, models, override)["wan2.7-image"]
            engine = DiffusersEngine("wan2.7-image", cfg, FAMILIES["sd"], pool=PipelinePool())
            engine.generate(make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, "warm-up", args.size, args.size, 1, 99),
                            no_progress)
            pictures, cpu = images(engine, args.size)
            if reference is None:
                reference = pictures
            made = [float(np.abs(a - b).mean()) for a, b in zip(pictures[:-1], reference[:-1], strict=True)]
            edited = float(np.abs(pictures[-1] - reference[-1]).mean())
            print(f"{label:52s} text-to-image {statistics.mean(made):5.2f}  edit {edited:5.2f}  "
                  f"CPU s per image {statistics.median(cpu):5.2f}", flush=True)
            del engine, pictures
            gc.collect()


if __name__ == "__main__":
    main()
