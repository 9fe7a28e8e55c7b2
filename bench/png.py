"""PNG encode time and size per zlib level, plus the other post-processing steps, at 1K/2K/4K.

    .venv/bin/python bench/png.py [--sizes 1024 2048 4096] [--levels 0 1 3 6] [--repeat 3]
    .venv/bin/python bench/png.py --provenance-only [--sizes 1024] [--repeat 40]

The provenance table (docs/provenance.md) prices each mark against writing the bare PNG at
level 1: the watermark, the XMP + parameters chunks, the C2PA manifest, and all of them.

The test image is made in code to look like a photo to zlib: smooth gradients, filled shapes,
a soft vignette and Gaussian sensor noise (sigma 6). Pure noise would be incompressible at
every level and a flat image trivially compressible; neither says anything about real outputs."""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from wanimage.core.postprocess import add_watermark, apply_palette, encode_png
from wanimage.core.provenance import ImageFacts, Options, Provenance
from wanimage.core.provenance.c2pa import ContentCredentials, ensure_self_signed
from wanimage.types import PaletteColor

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


def graphic_image(side: int, seed: int = 0) -> Image.Image:
    """Flat colours, hard edges and text, no noise: the case where zlib's matching pays off."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (side, side), (245, 243, 238))
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x0, y0 = (int(v) for v in rng.integers(0, side, 2))
        w, h = (int(v) for v in rng.integers(side // 50, side // 5, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
    for row in range(0, side, max(12, side // 40)):
        draw.text((side // 20, row), "Lorem ipsum dolor sit amet 0123456789" * 3, fill=(20, 20, 20))
    return img


def best_of(fn, repeat: int) -> tuple[float, object]:
    """The fastest of `repeat` runs: the cost without noise from other processes."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def pillow_png(img: Image.Image, level: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def provenance_cost(sides: list[int], repeat: int) -> None:
    """Each mark's cost over the bare PNG (level 1, photo), the steady state of a server: the
    signer built once, the watermark pattern cached for the size. The watermark and the text
    chunks are priced as what they add to writing the PNG; C2PA as signing the finished bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        credentials = ContentCredentials.from_files(None, None, Path(tmp))
        marks = Provenance(Options(), credentials)
        print(f"\nprovenance marks on a level-1 PNG, photo, best of {repeat}")
        print("|      size | bare PNG | + watermark | + XMP, parameters | + C2PA | all marks | all, % of bare |")
        print("|----------:|---------:|------------:|------------------:|-------:|----------:|---------------:|")
        for side in sides:
            print(_provenance_row(marks, side, repeat))


def _provenance_row(marks: Provenance, side: int, repeat: int) -> str:
    """The variants run in turn, `repeat` rounds, each keeping its fastest: on a shared machine a
    quiet moment then helps every column alike instead of whichever ran during it."""
    photo = natural_image(side)
    facts = ImageFacts("5d41402a-bench", 1, "a red fox in snow, photo", "a red fox in deep snow, dusk",
                       42, side, side, "wan2.7-image", "builtin", 30)
    bare_png = encode_png(photo, 1)
    variants = {
        "bare": lambda: encode_png(photo, 1),
        "watermark": lambda: encode_png(marks.mark_pixels(photo), 1),  # the array goes straight in
        "text": lambda: encode_png(photo, 1, marks.chunks(facts)),
        "c2pa": lambda: marks.seal(bare_png, facts),
        "all": lambda: marks.seal(encode_png(marks.mark_pixels(photo), 1, marks.chunks(facts)), facts),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeat):
        for name, fn in variants.items():
            best[name] = min(best[name], best_of(fn, 1)[0])
    bare, every = best["bare"], best["all"]
    return (f"| {side:>4}x{side:<4} | {bare * 1000:5.1f} ms | {(best['watermark'] - bare) * 1000:8.1f} ms "
            f"| {(best['text'] - bare) * 1000:14.1f} ms | {best['c2pa'] * 1000:3.1f} ms | {every * 1000:6.1f} ms "
            f"| {(every - bare) / bare:13.0%} |")


def c2pa_settings_cost(repeat: int) -> None:
    """Why C2PA is switched the way it is: the library's own defaults against wanimage's."""
    photo_png = encode_png(natural_image(1024), 1)
    facts = ImageFacts("5d41402a-bench", 1, "a fox", None, 42, 1024, 1024, "wan2.7-image", "builtin")
    variants = {  # name: (library settings, data-hash flow); None: wanimage's own settings
        "Builder.sign, library defaults (thumbnail, verify after sign)": ({}, False),
        "Builder.sign, no thumbnail": ({"builder": {"thumbnail": {"enabled": False}}}, False),
        "Builder.sign, no thumbnail, no verify after sign": (None, False),
        "data-hash flow, same settings (wanimage)": (None, True),
    }
    print(f"\nC2PA signing of a 1K PNG ({len(photo_png) / 1e6:.1f} MB), best of {repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = ensure_self_signed(Path(tmp))
        for name, (library_settings, data_hash) in variants.items():
            signer = ContentCredentials(cert.read_bytes(), key.read_bytes(), library_settings=library_settings,
                                        data_hash=data_hash)
            marks = Provenance(Options(xmp=False, parameters=False, watermark=False), signer)
            seconds, signed = best_of(lambda marks=marks: marks.seal(photo_png, facts), repeat)
            print(f"| {name:62s} | {seconds * 1000:6.1f} ms | +{(len(signed) - len(photo_png)) / 1e3:7.1f} kB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 1, 3, 6])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--provenance-only", action="store_true", help="only the provenance table")
    args = parser.parse_args()
    if args.provenance_only:
        provenance_cost(args.sizes, args.repeat)
        c2pa_settings_cost(min(args.repeat, 10))
        return

    def cell(encode, img, level) -> str:
        seconds, data = best_of(lambda: encode(img, level), args.repeat)
        return f"{seconds * 1000:>6.0f} ms {len(data) / 1e6:>6.2f} MB"

    print(f"PNG encode, best of {args.repeat}; {os.cpu_count()} CPUs")
    print(
        "|      size | level | encode_png, photo    | Pillow save, photo   | encode_png, graphic  |"
    )
    print(
        "|----------:|------:|---------------------:|---------------------:|---------------------:|"
    )
    for side in args.sizes:
        photo, graphic = natural_image(side), graphic_image(side)
        for level in args.levels:
            print(
                f"| {side:>4}x{side:<4} | {level:>5} | {cell(encode_png, photo, level)} "
                f"| {cell(pillow_png, photo, level)} | {cell(encode_png, graphic, level)} |"
            )

    print(f"\nother post-processing, photo, best of {args.repeat}")
    print("|      size | apply_palette | add_watermark |")
    print("|----------:|--------------:|--------------:|")
    for side in args.sizes:
        photo = natural_image(side)
        palette_s, _ = best_of(lambda photo=photo: apply_palette(photo, PALETTE), args.repeat)
        mark_s, _ = best_of(lambda photo=photo: add_watermark(photo), args.repeat)
        print(f"| {side:>4}x{side:<4} | {palette_s * 1000:>10.0f} ms | {mark_s * 1000:>10.0f} ms |")

    provenance_cost(args.sizes, args.repeat)
    c2pa_settings_cost(args.repeat)


if __name__ == "__main__":
    main()
