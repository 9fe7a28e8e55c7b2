"""PNG encode time and size per zlib level, plus the other post-processing steps, at 1K/2K/4K.

    .venv/bin/python bench/png.py [--sizes 1024 2048 4096] [--levels 0 1 3 6] [--repeat 3]

The test image is made in code to look like a photo to zlib: smooth gradients, filled shapes,
a soft vignette and Gaussian sensor noise (sigma 6). Pure noise would be incompressible at
every level and a flat image trivially compressible; neither says anything about real outputs."""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from wanimage.core.postprocess import add_watermark, apply_palette, encode_png
from wanimage.engines.base import PaletteColor

PALETTE = [
    PaletteColor((230, 57, 70), 0.30),
    PaletteColor((241, 250, 238), 0.20),
    PaletteColor((168, 218, 220), 0.20),
    PaletteColor((69, 123, 157), 0.15),
    PaletteColor((29, 53, 87), 0.15),
]


def natural_image(side: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side  # (H, W)
    base = np.stack(
        [
            128 + 100 * np.sin(3 * x + 1) * np.cos(2 * y),
            110 + 80 * np.cos(4 * y + x),
            140 + 90 * np.sin(5 * x * y + 2),
        ],
        axis=-1,
    )  # (H, W, 3)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x0, y0 = rng.integers(0, side, 2)
        r = int(rng.integers(side // 40, side // 6 + 1))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0 - r, y0 - r, x0 + r, y0 + r), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(side / 512))  # soft edges, like a lens
    vignette = 1 - 0.35 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)[..., None]  # (H, W, 1)
    arr = np.asarray(img, dtype=np.float32) * vignette + rng.normal(0, 6, (side, side, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def best_of(fn, repeat: int) -> tuple[float, object]:
    """The fastest of `repeat` runs: the cost without noise from other processes."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 1, 3, 6])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print("encode_png (best of %d)" % args.repeat)
    print(f"| {'size':>9} | level | {'time ms':>8} | {'size MB':>8} | ratio |")
    print("|----------:|------:|---------:|---------:|------:|")
    images = {side: natural_image(side) for side in args.sizes}
    for side, img in images.items():
        raw = side * side * 3
        for level in args.levels:
            seconds, data = best_of(lambda img=img, level=level: encode_png(img, level), args.repeat)
            print(
                f"| {side:>4}x{side:<4} | {level:>5} | {seconds * 1000:>8.0f} "
                f"| {len(data) / 1e6:>8.2f} | {len(data) / raw:>5.2f} |"
            )

    print("\nother steps (best of %d)" % args.repeat)
    print(f"| {'size':>9} | apply_palette ms | add_watermark ms |")
    print("|----------:|-----------------:|-----------------:|")
    for side, img in images.items():
        palette_s, _ = best_of(lambda img=img: apply_palette(img, PALETTE), args.repeat)
        mark_s, _ = best_of(lambda img=img: add_watermark(img), args.repeat)
        print(f"| {side:>4}x{side:<4} | {palette_s * 1000:>16.0f} | {mark_s * 1000:>16.0f} |")


if __name__ == "__main__":
    main()
