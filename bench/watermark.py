"""The invisible watermark (wanimage.core.provenance.watermark): what it costs and what it survives.

    .venv/bin/python bench/watermark.py [--marked 20] [--photos 400] [--flat 400] [--builtin 200] [--iwm]

Three kinds of image, all made here: "photo" (smooth gradients, shapes, vignette, sensor noise;
bench/png.py's natural_image at random sizes and aspects), "flat" (flat colour shapes and text,
bench/png.py's graphic_image, and posterised blocks), "builtin" (the built-in model's outputs for
a list of prompts, before any marking). For each kind:
  * PSNR of marked against unmarked, and the embed time at 1K;
  * detection rate, bit accuracy (of the 32 payload bits) and the sync score after: nothing,
    a 50 % downscale then JPEG quality 75, a crop to 80 % of each side at a random offset,
    PNG -> WEBP (Pillow's default quality 80), and two harsher ones (25 % downscale, JPEG 50);
  * false positives on images that never had a mark, with the largest score seen.
--iwm runs the same attacks on invisible-watermark's DWT-DCT (when it is importable) for comparison."""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw
from png import graphic_image, natural_image  # bench/png.py, beside this file

from wanimage.core.provenance import watermark

PAYLOAD = watermark.payload_for("wanimage")


# ---------------------------------------------------------------------------------------------
# Images


def photos(count: int, seed: int) -> Iterator[Image.Image]:
    rng = np.random.default_rng(seed)
    for i in range(count):
        side = int(rng.choice([512, 768, 1024]))
        aspect = float(rng.choice([1.0, 4 / 3, 16 / 9, 9 / 16]))
        img = natural_image(side, seed=seed * 100_000 + i)
        w, h = (side, round(side / aspect)) if aspect >= 1 else (round(side * aspect), side)
        yield img.crop((0, 0, w, h))


def flat_art(count: int, seed: int) -> Iterator[Image.Image]:
    rng = np.random.default_rng(seed)
    for i in range(count):
        side = int(rng.choice([512, 768, 1024]))
        if i % 2 == 0:
            yield graphic_image(side, seed=seed * 100_000 + i)
            continue
        palette = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(4)]
        img = Image.new("RGB", (side, side), palette[0])
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(3, 25))):
            x0, y0 = (int(v) for v in rng.integers(0, side, 2))
            r = int(rng.integers(side // 30, side // 3))
            colour = palette[int(rng.integers(1, 4))]
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0 - r, y0 - r, x0 + r, y0 + r), fill=colour)
        yield img


PROMPTS = ["a red apple", "a cat on a sofa", "two houses by a lake", "a blue car in the city",
           "a yellow flower in a field", "three balloons in the sky", "a dog on the beach",
           "a green tree on a hill at sunset", "a bird over the sea", "a cup of coffee on a table"]


def builtin_outputs(count: int, seed: int) -> Iterator[Image.Image]:
    """The built-in model's pixels through the pipeline, without provenance (no marks)."""
    from wanimage.config import Settings
    from wanimage.core.pipeline import Pipeline
    from wanimage.core.request import build_request
    from wanimage.engines.factories import build_registry

    pipeline = Pipeline(build_registry(Settings()), png_level=0)
    made = 0
    while made < count:
        prompt = PROMPTS[made % len(PROMPTS)]
        size = ["1024*1024", "768*768", "1280*720"][made % 3]
        req = build_request(model="wan2.7-image", prompt=prompt, size=size, n=min(4, count - made),
                            seed=seed + made, thinking_mode=False)
        for png in pipeline.render(pipeline.resolve(req, []), lambda *a, **k: None).pngs:
            yield Image.open(io.BytesIO(png)).convert("RGB")
            made += 1


KINDS: dict[str, Callable[[int, int], Iterator[Image.Image]]] = {
    "photo": photos, "flat": flat_art, "builtin": builtin_outputs}


# ---------------------------------------------------------------------------------------------
# Attacks


def _reencode(img: Image.Image, fmt: str, **options) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def crop80(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    cw, ch = round(w * 0.8), round(h * 0.8)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x, y, x + cw, y + ch))


def scaled(img: Image.Image, factor: float) -> Image.Image:
    return img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.LANCZOS)


ATTACKS: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "none": lambda im, rng: im,
    "50% down + JPEG 75": lambda im, rng: _reencode(scaled(im, 0.5), "JPEG", quality=75),
    "crop 80%": crop80,
    "PNG -> WEBP": lambda im, rng: _reencode(im, "WEBP"),
    "25% down": lambda im, rng: scaled(im, 0.25),
    "JPEG 50": lambda im, rng: _reencode(im, "JPEG", quality=50),
}


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-12)))


def bit_accuracy(read: int | None, truth: int) -> float:
    if read is None:
        return 0.5  # nothing read: as good as guessing
    return 1 - bin((read ^ truth) & 0xFFFFFFFF).count("1") / watermark.PAYLOAD_BITS


# ---------------------------------------------------------------------------------------------
# Runs


def robustness(count: int) -> None:
    rng = np.random.default_rng(1)
    print(f"\nmarked images, {count} per kind: detected / bit accuracy / sync score median (min)")
    print("| kind    | PSNR dB mean (min) | " + " | ".join(f"{a:>24}" for a in ATTACKS) + " |")
    print("|---------|-------------------:|" + "|".join("-" * 25 + ":" for _ in ATTACKS) + "|")
    for kind, make in KINDS.items():
        scores: dict[str, list[tuple[bool, float, float]]] = {a: [] for a in ATTACKS}
        psnrs = []
        for img in make(count, 7):
            marked = watermark.embed(img, PAYLOAD)
            psnrs.append(psnr(img, marked))
            for name, attack in ATTACKS.items():
                found = watermark.detect(attack(marked, rng))
                scores[name].append((found.found, bit_accuracy(found.payload, PAYLOAD), found.confidence))
        cells = []
        for name in ATTACKS:
            rows = np.array(scores[name])
            cells.append(f"{rows[:, 0].mean():4.0%} {rows[:, 1].mean():6.1%} {np.median(rows[:, 2]):4.1f} ({rows[:, 2].min():4.1f})")
        print(f"| {kind:7s} | {np.mean(psnrs):9.1f} ({min(psnrs):4.1f}) | " + " | ".join(f"{c:>24}" for c in cells) + " |")


def false_positives(counts: dict[str, int]) -> None:
    print(f"\nunmarked images: false positives at threshold {watermark.THRESHOLD}")
    print("| kind    | images | false positives | largest score | median score |")
    print("|---------|-------:|----------------:|--------------:|-------------:|")
    total, hits = 0, 0
    for kind, count in counts.items():
        z = [watermark.detect(img).confidence for img in KINDS[kind](count, 1000)]
        found = sum(s >= watermark.THRESHOLD for s in z)
        total, hits = total + len(z), hits + found
        print(f"| {kind:7s} | {len(z):6d} | {found:15d} | {max(z):13.2f} | {np.median(z):12.2f} |")
    print(f"| all     | {total:6d} | {hits:15d} |               |              |")


def embed_cost(repeat: int = 7) -> None:
    img = natural_image(1024)
    watermark.embed(img, PAYLOAD)  # the pattern is cached per size: the steady state
    best = min(_timed(lambda: watermark.embed(img, PAYLOAD)) for _ in range(repeat))
    marked = watermark.embed(img, PAYLOAD)
    detect = min(_timed(lambda: watermark.detect(marked)) for _ in range(3))
    print(f"1024x1024: embed {best * 1000:.1f} ms (best of {repeat}, cached pattern); detect {detect * 1000:.0f} ms")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def invisible_watermark_comparison(count: int) -> None:
    try:
        import cv2
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        print("\n--iwm: invisible-watermark (and opencv) are not installed; skipped")
        return
    bits = [(PAYLOAD >> (31 - i)) & 1 for i in range(32)]
    encoder, decoder = WatermarkEncoder(), WatermarkDecoder("bits", 32)
    encoder.set_watermark("bits", bits)
    rng = np.random.default_rng(1)
    print(f"\ninvisible-watermark 0.2 dwtDct, {count} photos and {count} flat images: bit accuracy")
    accuracy: dict[str, list[float]] = {a: [] for a in ATTACKS}
    psnrs, times = [], []
    for img in [*photos(count, 7), *flat_art(count, 7)]:
        start = time.perf_counter()
        out = encoder.encode(cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR), "dwtDct")
        times.append(time.perf_counter() - start)
        marked = Image.fromarray(cv2.cvtColor(out, cv2.COLOR_BGR2RGB))
        psnrs.append(psnr(img, marked))
        for name, attack in ATTACKS.items():
            try:
                got = decoder.decode(cv2.cvtColor(np.asarray(attack(marked, rng)), cv2.COLOR_RGB2BGR), "dwtDct")
            except RuntimeError:  # "image too small": it reads nothing below 256x256
                accuracy[name].append(0.5)
                continue
            accuracy[name].append(float(np.mean(np.array(got) == np.array(bits))))
    print(f"PSNR {np.mean(psnrs):.1f} dB, embed median {np.median(times) * 1000:.0f} ms; "
          + ", ".join(f"{a}: {np.mean(v):.1%}" for a, v in accuracy.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marked", type=int, default=20, help="marked images per kind")
    parser.add_argument("--photos", type=int, default=400, help="unmarked photos")
    parser.add_argument("--flat", type=int, default=400, help="unmarked flat images")
    parser.add_argument("--builtin", type=int, default=200, help="unmarked built-in model outputs")
    parser.add_argument("--iwm", action="store_true", help="compare invisible-watermark's DWT-DCT")
    args = parser.parse_args()
    embed_cost()
    robustness(args.marked)
    false_positives({"photo": args.photos, "flat": args.flat, "builtin": args.builtin})
    if args.iwm:
        invisible_watermark_comparison(max(2, args.marked // 4))


if __name__ == "__main__":
    main()
