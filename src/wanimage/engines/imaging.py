"""Image helpers every engine that wraps a generator shares (diffusers, remote): sizes a model
accepts and the exact resize back, box masks and the exact composite outside boxes, reference
stitching, and the palette written into the prompt. PIL and numpy only: no torch, so an engine
that calls a remote server imports nothing heavy."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..types import Box, PaletteColor, scale_boxes  # noqa: F401  (engines import the one box scaling here)

# ------------------------------------------------------------------------------------- sizes


def generation_size(width: int, height: int, multiple: int, max_pixels: int | None) -> tuple[int, int]:
    """The size a family generates at for a job of width x height: the same aspect ratio, at most
    max_pixels, each side a multiple of `multiple` (nearest, never below one multiple)."""
    scale = 1.0
    if max_pixels and width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))

    def snap(v: float) -> int:
        return max(multiple, int(round(v * scale / multiple)) * multiple)

    w, h = snap(width), snap(height)
    while max_pixels and w * h > max_pixels and max(w, h) > multiple:  # rounding up overshot
        if w >= h:
            w -= multiple
        else:
            h -= multiple
    return w, h


def resize_exact(img: Image.Image, width: int, height: int) -> Image.Image:
    img = img.convert("RGB")
    return img if img.size == (width, height) else img.resize((width, height), Image.Resampling.LANCZOS)


def cap_pixels(img: Image.Image, max_pixels: int) -> Image.Image:
    """Downscale (never up) to at most max_pixels: each reference costs ~4k tokens per megapixel."""
    if img.width * img.height <= max_pixels:
        return img
    s = math.sqrt(max_pixels / (img.width * img.height))
    return img.resize((max(1, int(img.width * s)), max(1, int(img.height * s))), Image.Resampling.LANCZOS)


# ------------------------------------------------------------------------- boxes and masks


def box_alpha(boxes: list[Box], width: int, height: int, feather: int | None = None) -> np.ndarray:
    """(H, W) float32 blend weights: 1 inside each box, ramping to 0 over `feather` pixels inside
    its edges, and exactly 0 outside every box. Default feather: 1/16 of the box's short side."""
    alpha = np.zeros((height, width), dtype=np.float32)
    for b in boxes:
        bw, bh = b.x2 - b.x1, b.y2 - b.y1
        if bw <= 0 or bh <= 0:
            continue
        f = feather if feather is not None else max(1, min(bw, bh) // 16)
        f = max(0, min(f, (min(bw, bh) - 1) // 2))
        # distance (in pixels, from 1 at the edge) to the nearest box edge, per axis
        x = np.minimum(np.arange(1, bw + 1), np.arange(bw, 0, -1)).astype(np.float32)
        y = np.minimum(np.arange(1, bh + 1), np.arange(bh, 0, -1)).astype(np.float32)
        ramp = np.minimum.outer(y, x)  # (bh, bw)
        a = np.clip(ramp / (f + 1), 0, 1) if f else np.ones_like(ramp)
        region = alpha[b.y1:b.y2, b.x1:b.x2]
        np.maximum(region, a, out=region)
    return alpha


def mask_image(boxes: list[Box], width: int, height: int) -> Image.Image:
    """The binary mask handed to an inpaint pipeline: white (repaint) inside the boxes."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for b in boxes:
        mask[b.y1:b.y2, b.x1:b.x2] = 255
    return Image.fromarray(mask, "L")


def crop_sources(images: list[Image.Image], source_boxes: tuple[tuple[Box, ...], ...]) -> list[Image.Image]:
    """Every image before the last cropped to its boxes (the object to take from it: "put the cat
    of image 1 into the box of image 2"); the last, the one edited, as it is."""
    per_image = source_boxes or tuple(() for _ in images[:-1])
    return [crop_to_boxes(im, list(b)) for im, b in zip(images[:-1], per_image, strict=True)] + images[-1:]


def crop_to_boxes(image: Image.Image, boxes: list[Box]) -> Image.Image:
    """A source image's boxes mark the object to take from it: the reference is the region they
    cover together (the whole image when it has none)."""
    if not boxes:
        return image
    return image.crop((min(b.x1 for b in boxes), min(b.y1 for b in boxes),
                       max(b.x2 for b in boxes), max(b.y2 for b in boxes)))


def composite(generated: Image.Image, source: Image.Image, alpha: np.ndarray) -> Image.Image:
    """where(alpha > 0, blend, source): pixels outside every box are the source's, bit for bit."""
    gen = np.asarray(generated.convert("RGB"), dtype=np.float32)
    src = np.asarray(source.convert("RGB"))
    a = alpha[..., None]
    blend = np.clip(np.rint(gen * a + src.astype(np.float32) * (1 - a)), 0, 255).astype(np.uint8)
    return Image.fromarray(np.where(a > 0, blend, src), "RGB")


# ------------------------------------------------------------------------------- references


def stitch(images: list[Image.Image], max_pixels: int) -> Image.Image:
    """References side by side on one canvas (rows of up to 3, each scaled to a common height),
    in order, left to right then top to bottom, so "image k" keeps its reading order."""
    cols = min(3, len(images))
    rows = [images[i:i + cols] for i in range(0, len(images), cols)]
    cell_h = max(64, int(math.sqrt(max_pixels / max(1, len(images)))))
    lines = []
    for row in rows:
        scaled = [im.convert("RGB").resize((max(1, round(im.width * cell_h / im.height)), cell_h),
                                           Image.Resampling.LANCZOS) for im in row]
        line = Image.new("RGB", (sum(s.width for s in scaled), cell_h), (255, 255, 255))
        x = 0
        for s in scaled:
            line.paste(s, (x, 0))
            x += s.width
        lines.append(line)
    canvas = Image.new("RGB", (max(li.width for li in lines), cell_h * len(lines)), (255, 255, 255))
    for k, line in enumerate(lines):
        canvas.paste(line, (0, k * cell_h))
    return cap_pixels(canvas, max_pixels)


def ensure_min_side(img: Image.Image, side: int) -> Image.Image:
    if min(img.size) >= side:
        return img
    s = side / min(img.size)
    return img.resize((max(side, round(img.width * s)), max(side, round(img.height * s))), Image.Resampling.LANCZOS)


def group_references(images: list[Image.Image], limit: int, max_pixels: int) -> list[Image.Image]:
    """At most `limit` references: beyond it, consecutive references share stitched canvases."""
    if len(images) <= limit:
        return images
    sizes = [len(images) // limit + (1 if k < len(images) % limit else 0) for k in range(limit)]
    out, start = [], 0
    for n in sizes:
        chunk = images[start:start + n]
        out.append(chunk[0] if n == 1 else stitch(chunk, max_pixels))
        start += n
    return out


# ------------------------------------------------------------------------------------ prompts


def palette_prompt(prompt: str, palette: tuple[PaletteColor, ...] | list[PaletteColor] | None) -> str:
    """Prompt conditioning for color_palette; the worker applies a measured transfer on top."""
    if not palette:
        return prompt
    colors = ", ".join(f"#{r:02x}{g:02x}{b:02x} ({round(c.weight * 100)}%)" for c in palette for r, g, b in [c.rgb])
    return f"{prompt}. Color palette: {colors}"
