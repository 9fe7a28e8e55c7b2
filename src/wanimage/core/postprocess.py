"""Post-processing applied to every engine output: palette transfer, watermark, PNG encoding.

Measured with `PYTHONPATH=src .venv/bin/python bench/png.py` (best of 3, the shared 2-vCPU VM,
quiet, 2026-12-05). "photo": smooth gradients, shapes, vignette and Gaussian noise sigma 6;
"graphic": flat shapes and text. Levels 1-3 deflate with ISA-L's igzip (python-isal), 0 and 4-9
with zlib:

    |      size | level | encode_png, photo | Pillow save, photo | encode_png, graphic |
    |----------:|------:|------------------:|-------------------:|--------------------:|
    | 1024x1024 |     0 |     1 ms  3.15 MB |     55 ms  3.15 MB |       1 ms  3.15 MB |
    | 1024x1024 |     1 |     9 ms  2.08 MB |    123 ms  2.23 MB |       2 ms  0.25 MB |
    | 1024x1024 |     3 |    11 ms  2.09 MB |    125 ms  2.23 MB |       7 ms  0.26 MB |
    | 1024x1024 |     6 |    91 ms  2.16 MB |    163 ms  2.05 MB |      19 ms  0.22 MB |
    | 2048x2048 |     0 |     8 ms 12.59 MB |    220 ms 12.59 MB |       8 ms 12.59 MB |
    | 2048x2048 |     1 |    21 ms  8.21 MB |    490 ms  8.86 MB |       6 ms  0.27 MB |
    | 2048x2048 |     3 |    32 ms  8.25 MB |    498 ms  8.86 MB |      16 ms  0.27 MB |
    | 2048x2048 |     6 |   190 ms  8.57 MB |    650 ms  8.15 MB |      27 ms  0.21 MB |
    | 4096x4096 |     0 |    90 ms 50.34 MB |    892 ms 50.35 MB |      78 ms 50.34 MB |
    | 4096x4096 |     1 |   103 ms 32.73 MB |   1955 ms 35.40 MB |      24 ms  0.34 MB |
    | 4096x4096 |     3 |   111 ms 32.89 MB |   2001 ms 35.38 MB |      62 ms  0.42 MB |
    | 4096x4096 |     6 |   782 ms 34.21 MB |   2621 ms 32.55 MB |     100 ms  0.22 MB |

Level 1 is the default (Settings.png_compress_level): on photographic output it is the fastest
compressing level and within 2 % of the smallest; higher levels only pay on flat graphics. Before
igzip (zlib with Z_RLE at level 1) the 1K row read 26 ms / 2.06 MB photo, 9 ms / 0.39 MB graphic.
apply_palette: 75 / 143 / 430 ms at 1K / 2K / 4K; add_watermark: 1 / 3 / 13 ms."""

from __future__ import annotations

import io
import itertools
import math
import os
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from isal import isal_zlib
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from wanimage.types import PaletteColor

WATERMARK_TEXT = "AI Generated"  # English wording of §4.5; the default font has no CJK glyphs

# ---------------------------------------------------------------------------------------------
# Watermark


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow >= 10.1 embeds a scalable TrueType font (Aileron): the same pixels on every machine,
    # no system font lookup. Without FreeType it falls back to a fixed bitmap font.
    return ImageFont.load_default(size=size)


def _label_geometry(width: int, height: int, text: str) -> tuple[int, int, int, int, int]:
    """(x0, y0, x1, y1, font_size) of the label plate in the bottom-right corner."""
    size = max(10, round(min(width, height) * 0.032))
    font = _font(size)
    left, top, right, bottom = font.getbbox(text, stroke_width=_stroke(size))
    pad, margin = max(3, round(size * 0.35)), max(4, round(size * 0.6))
    plate_w, plate_h = (right - left) + 2 * pad, (bottom - top) + 2 * pad
    x1, y1 = width - margin, height - margin
    return max(0, x1 - plate_w), max(0, y1 - plate_h), x1, y1, size


def _stroke(size: int) -> int:
    return max(0, size // 28)  # a thin stroke in the text colour: a bolder face from a regular one


def watermark_box(width: int, height: int, text: str = WATERMARK_TEXT) -> tuple[int, int, int, int]:
    """The rectangle (x0, y0, x1, y1), x1/y1 exclusive, that add_watermark may change."""
    return _label_geometry(width, height, text)[:4]


def add_watermark(img: Image.Image, text: str = WATERMARK_TEXT) -> Image.Image:
    """A copy of `img` with `text` on a semi-transparent dark plate in the bottom-right corner,
    sized to the image (font ~3.2% of the short side). Pixels outside watermark_box are untouched."""
    out = img.convert("RGBA" if img.mode in ("RGBA", "LA", "PA") else "RGB")
    (x0, y0, _, _), overlay = _label_overlay(out.width, out.height, text)
    region = Image.alpha_composite(out.crop((x0, y0, x0 + overlay.width, y0 + overlay.height)).convert("RGBA"),
                                   overlay)
    out.paste(region.convert(out.mode), (x0, y0))
    return out


def label_patch(pixels: np.ndarray, text: str = WATERMARK_TEXT) -> tuple[int, int, np.ndarray]:
    """The visible label of `add_watermark` for (H, W, 3|4) uint8 `pixels`, as (y0, x0, plate):
    the plate's pixels (h, w, channels), to go at row y0, column x0. Only the plate's rectangle
    is composited, so the whole image is not copied for it (the PNG writer takes the plate)."""
    height, width, channels = pixels.shape
    (x0, y0, x1, y1), overlay = _label_overlay(width, height, text)
    mode = "RGB" if channels == 3 else "RGBA"
    region = Image.alpha_composite(Image.fromarray(pixels[y0:y1, x0:x1], mode).convert("RGBA"), overlay)
    return y0, x0, np.asarray(region.convert(mode))


@lru_cache(maxsize=8)
def _label_overlay(width: int, height: int, text: str) -> tuple[tuple[int, int, int, int], Image.Image]:
    """The label plate's box and its RGBA overlay: the same for every image of a size (drawing the
    text costs more than compositing it). Not mutated by its users (alpha_composite makes a new image)."""
    x0, y0, x1, y1, size = _label_geometry(width, height, text)
    font = _font(size)
    overlay = Image.new("RGBA", (x1 - x0, y1 - y0), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rounded_rectangle(
        (0, 0, overlay.width - 1, overlay.height - 1), radius=max(2, size // 4), fill=(0, 0, 0, 150)
    )
    left, top, right, bottom = font.getbbox(text, stroke_width=_stroke(size))
    text_x = (overlay.width - (right - left)) / 2 - left
    text_y = (overlay.height - (bottom - top)) / 2 - top
    white = (255, 255, 255, 235)
    draw.text(
        (text_x, text_y), text, font=font, fill=white, stroke_width=_stroke(size), stroke_fill=white
    )
    return (x0, y0, x1, y1), overlay


# ---------------------------------------------------------------------------------------------
# Palette transfer
#
# The requested palette is a distribution: colours with proportions. We match the image's colour
# distribution (a histogram of a thumbnail) to it with entropic optimal transport in CIELAB, which
# gives one potential g_k per palette colour. Every colour c is then assigned to
# argmin_k cost(c, p_k) - g_k: a nearest-colour rule shifted so that each palette colour receives
# about its share of the pixels (the weight-aware part), softened by a softmax so that colours
# near a boundary blend two targets instead of flickering between them. The transfer is baked into a 33^3 colour
# lookup table that Pillow applies in C with trilinear interpolation, so a 4K image costs one pass.

LUT_SIZE = 33
HIST_BINS = 17  # histogram cells keep their mean colour, so a coarse grid loses little
_THUMB_PIXELS = 256 * 256
_LAB_SCALE = 100.0  # costs in units of (delta E / 100)^2 keep Sinkhorn's epsilon meaningful
_EPS = 0.002  # entropic regularisation of the transport
_SOFTNESS = 0.05  # temperature of the assignment: boundaries blend over a few delta E


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in 0..255 -> (..., 3) CIELAB (D65)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    peak = x.max(axis=axis, keepdims=True)
    return (peak + np.log(np.exp(x - peak).sum(axis=axis, keepdims=True))).squeeze(axis)


def _sinkhorn(a: np.ndarray, b: np.ndarray, cost: np.ndarray, eps: float, iters: int):
    """Log-domain Sinkhorn. a (M,), b (K,) masses summing to 1, cost (M, K).
    Returns the potentials f (M,), g (K,) and the plan (M, K)."""
    log_a, log_b = np.log(a), np.log(b)
    f, g = np.zeros_like(a), np.zeros_like(b)
    for _ in range(iters):
        f = -eps * _logsumexp(log_b[None, :] + (g[None, :] - cost) / eps, axis=1)  # (M,)
        g = -eps * _logsumexp(log_a[:, None] + (f[:, None] - cost) / eps, axis=0)  # (K,)
    plan = np.exp(log_a[:, None] + log_b[None, :] + (f[:, None] + g[None, :] - cost) / eps)
    return f, g, plan


def _palette_arrays(palette: Sequence[PaletteColor]) -> tuple[np.ndarray, np.ndarray]:
    if not palette:
        raise ValueError("palette is empty")
    rgb = np.array([p.rgb for p in palette], dtype=np.float64)  # (K, 3)
    weights = np.array([max(float(p.weight), 0.0) for p in palette]) + 1e-9
    return rgb, weights / weights.sum()


def _colour_histogram(img: Image.Image, bins: int = HIST_BINS) -> tuple[np.ndarray, np.ndarray]:
    """The colour histogram of a <= 256^2 thumbnail on a bins^3 grid: the occupied cells' mean
    colour (M, 3) and their mass (M,), summing to 1."""
    factor = max(1, math.ceil(math.sqrt(img.width * img.height / _THUMB_PIXELS)))
    thumb = img.reduce(factor) if factor > 1 else img  # box average, the cheapest Pillow resize
    px = np.asarray(thumb.convert("RGB"), dtype=np.float64).reshape(-1, 3)  # (P, 3)
    cell = np.rint(px * ((bins - 1) / 255.0)).astype(np.int64)
    flat = (cell[:, 0] * bins + cell[:, 1]) * bins + cell[:, 2]  # (P,)
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    sums = np.stack([np.bincount(inverse, weights=px[:, i]) for i in range(3)], axis=1)  # (M, 3)
    return sums / counts[:, None], counts / counts.sum()


def palette_distance(img: Image.Image, palette: Sequence[PaletteColor]) -> float:
    """How far the image's colours are from the requested palette, in CIELAB delta E: the
    (entropic) earth mover's distance between the image's colour histogram and the palette's
    colours with their weights. 0 means the image is made of exactly those colours in exactly
    those proportions; it grows both with wrong hues and with wrong proportions."""
    pal_rgb, pal_w = _palette_arrays(palette)
    colours, mass = _colour_histogram(img)
    cost = np.linalg.norm(
        _srgb_to_lab(colours)[:, None, :] - _srgb_to_lab(pal_rgb)[None, :, :], axis=-1
    )
    _, _, plan = _sinkhorn(mass, pal_w, cost, eps=0.5, iters=150)
    return float((plan * cost).sum() / plan.sum())


def apply_palette(
    img: Image.Image,
    palette: Sequence[PaletteColor],
    strength: float = 0.5,
    keep_detail: float = 0.5,
) -> Image.Image:
    """Move the colour distribution of `img` toward `palette` (colours and their weights).

    Each colour is assigned to a palette colour by weight-aware transport (see above); it then
    moves by `strength` toward `p_k + keep_detail * (c - m_k)`, where m_k is the mean colour of
    the image mass assigned to p_k: keep_detail=0 pulls every pixel onto its palette colour
    (posterizing at strength 1), keep_detail=1 only shifts each colour group's mean, keeping
    shading and texture. Alpha, when present, is kept."""
    strength = float(np.clip(strength, 0.0, 1.0))
    if strength == 0.0:
        return img.copy()
    alpha = img.getchannel("A") if img.mode in ("RGBA", "LA", "PA") else None
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    pal_rgb, pal_w = _palette_arrays(palette)
    pal_lab = _srgb_to_lab(pal_rgb) / _LAB_SCALE  # (K, 3)

    # 1. Transport the image histogram onto the palette: potentials g (K,).
    colours, mass = _colour_histogram(rgb)  # (M, 3), (M,)
    cost = ((_srgb_to_lab(colours)[:, None, :] / _LAB_SCALE - pal_lab[None]) ** 2).sum(-1)  # (M, K)
    _, g, _ = _sinkhorn(mass, pal_w, cost, eps=_EPS, iters=200)
    shift = g + _EPS * np.log(pal_w)  # (K,) the weight-aware offset of each palette colour

    def responsibilities(c_rgb: np.ndarray) -> np.ndarray:
        """(N, 3) colours -> (N, K) soft assignment to the palette: a softened power diagram, so
        colours near a boundary blend both targets instead of flickering between them."""
        c_cost = ((_srgb_to_lab(c_rgb)[:, None, :] / _LAB_SCALE - pal_lab[None]) ** 2).sum(-1)
        logits = -(c_cost - shift[None, :]) / _SOFTNESS
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        return weights / weights.sum(axis=1, keepdims=True)

    # 2. Mean colour m_k of the image mass each palette colour receives.
    resp = responsibilities(colours) * mass[:, None]  # (M, K)
    k_mass = resp.sum(axis=0)  # (K,)
    means = np.where(
        k_mass[:, None] > 1e-9, (resp.T @ colours) / np.maximum(k_mass, 1e-9)[:, None], pal_rgb
    )  # (K, 3)

    # 3. The lookup table: every grid colour c -> c + strength * (target(c) - c).
    axis = np.linspace(0.0, 255.0, LUT_SIZE)
    b, gr, r = np.meshgrid(axis, axis, axis, indexing="ij")  # Color3DLUT: red varies fastest
    grid = np.stack([r, gr, b], axis=-1).reshape(-1, 3)  # (LUT_SIZE^3, 3)
    resp = responsibilities(grid)  # (LUT_SIZE^3, K)
    target = resp @ (pal_rgb - keep_detail * means) + keep_detail * grid  # (LUT_SIZE^3, 3)
    table = np.clip(grid + strength * (target - grid), 0.0, 255.0) / 255.0
    lut = ImageFilter.Color3DLUT(LUT_SIZE, table.astype(np.float32), channels=3)
    out = rgb.filter(lut)
    if alpha is not None:
        out.putalpha(alpha)
    return out


# ---------------------------------------------------------------------------------------------
# PNG


_PNG_COLOUR_TYPES = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}  # 8 bits per sample
_PARALLEL_MIN_BYTES = 1 << 20  # below this, one deflate stream is as fast as several
_SLICES_PER_THREAD = 2  # more slices than threads: the first ones are hashed while the last deflate
_AFTER_IHDR = 8 + 12 + 13  # signature, then IHDR: length, type, 13 bytes, CRC
_ADLER_BASE = 65521

RowsFn = Callable[[int, int, np.ndarray], None]
"""`rows(r0, r1, out)` writes rows r0..r1 (exclusive) of the pixels to encode into `out`
(r1 - r0, W * channels): how the PNG writer takes pixels it marks itself, slice by slice."""


def encode_png(img: Image.Image | np.ndarray, level: int = 1, chunks: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """PNG bytes for `img` (the pieces of `png_parts`, joined). 8-bit L/LA/RGB/RGBA go through a fast path; other modes, Pillow.
    A uint8 array (H, W, 3) or (H, W, 4), e.g. the watermarked pixels, is written as RGB / RGBA
    as it is, without the copy out of Pillow an Image costs (0.4 ms for 1K).
    `chunks` (type, data), e.g. the provenance text chunks, are written right after IHDR.

    Pillow's encoder tries five PNG filters on every row, which costs more than the deflate itself
    (about 0.9 s of its 1.8 s for a 4096^2 RGB image). Here every row gets the Up filter, and the
    rows are filtered and deflated in parallel slices, one IDAT chunk each (the pigz layout: raw
    deflate streams joined at byte-aligned sync flushes under one zlib header and Adler-32).
    level 0: stored, no compression. 1-3: ISA-L's igzip, about three times zlib's speed on
    photographic residuals at the same size. 4-9: zlib's default strategy at that level: smaller
    on flat graphics with repeated structure, much slower."""
    return b"".join(png_parts(img, level, chunks))


def png_parts(img: Image.Image | np.ndarray, level: int = 1, chunks: Sequence[tuple[bytes, bytes]] = (), *,
              rows: RowsFn | None = None, digest=None) -> list[bytes]:
    """The PNG file of `encode_png` as its pieces in order, not joined: parts[0] the signature,
    parts[1] the IHDR chunk, then the text chunks, the IDAT chunks and IEND. The C2PA seal places
    its manifest after IHDR and the file is joined once, there: each join of a 2 MB PNG is a
    fresh buffer the kernel must fault in (about 1 ms on a busy machine).

    `rows`: the pixels to write are not `img` (an array that gives their shape) but what
    `rows` makes of them, slice by slice on the deflate threads (the watermarks: no pass over
    the whole image before the first slice can start). `digest`: a hashlib object fed every
    part in order as it is ready, each IDAT chunk while later slices still deflate (the C2PA
    hard binding hashes the file: Provenance.seal takes the digest instead of hashing again)."""
    level = int(level)
    if not 0 <= level <= 9:
        raise ValueError(f"PNG compress level must be 0..9, got {level}")
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
            raise ValueError(f"PNG pixels must be uint8 (H, W, 3|4), got {img.dtype} {img.shape}")
        mode, (height, width) = ("RGB" if img.shape[2] == 3 else "RGBA"), img.shape[:2]
        source = np.ascontiguousarray(img).reshape(height, -1)  # (H, W * channels)
    else:
        if rows is not None:
            raise ValueError("png_parts: `rows` goes with an array, not an Image")
        if img.mode not in _PNG_COLOUR_TYPES:
            if img.mode in ("P", "1", "I;16", "I", "F"):
                buf = io.BytesIO()
                img.save(buf, format="PNG", compress_level=level)
                data = buf.getvalue()
                parts = [data[:8], data[8:_AFTER_IHDR], *(_chunk(*c) for c in chunks), data[_AFTER_IHDR:]]
                for part in parts if digest is not None else ():
                    digest.update(part)
                return parts
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        mode, (width, height) = img.mode, img.size
        source = np.asarray(img, dtype=np.uint8).reshape(height, -1)  # (H, W * channels)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPES[mode], 0, 0, 0)
    head = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr), *(_chunk(*c) for c in chunks)]
    for part in head if digest is not None else ():
        digest.update(part)
    idat = _idat_chunks(source, rows, level, digest)
    if digest is not None:
        digest.update(_IEND)
    return [*head, *idat, _IEND]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return b"".join([struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc)])


_IEND = _chunk(b"IEND", b"")


def _deflater(level: int):
    """A raw-deflate compressor at `level`: ISA-L's igzip for 1-3 (three times zlib's speed on
    photo-like rows at the same size, and far smaller on flat art, see bench/png.py), zlib for
    0 (stored) and 4-9 (its default strategy: slower, smaller on flat graphics)."""
    if 1 <= level <= 3:
        return isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15, 9)
    return zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY)


@lru_cache(maxsize=1)
def _deflate_pool() -> ThreadPoolExecutor:
    """Threads kept for the slices the caller does not take itself: starting threads for every
    image cost more than a 1K image's second slice saves."""
    return ThreadPoolExecutor(max(1, min(os.cpu_count() or 1, 8) - 1), thread_name_prefix="deflate")


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from each one's and the second's length (zlib's
    adler32_combine, which neither zlib module exposes): each slice sums its own rows on its thread."""
    rem = second_length % _ADLER_BASE
    sum1 = first & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_BASE
    sum1 = (sum1 + (second & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    sum2 = (sum2 + (first >> 16) + (second >> 16) + _ADLER_BASE - rem) % _ADLER_BASE
    return sum1 | (sum2 << 16)


def _idat_chunks(source: np.ndarray, rows: RowsFn | None, level: int, digest) -> list[bytes]:
    """The image data as IDAT chunks, one per slice of rows, each slice made whole on a thread:
    its rows (`rows`, else `source`'s), filtered, deflated, its chunk's CRC-32 and its Adler-32.
    The caller takes slices too; whichever thread finishes one feeds `digest` the chunks ready,
    in order, so the hash of the first slices overlaps the deflate of the last.
    Each chunk's data is a piece of one zlib stream: the header in the first, the Adler-32 of all
    the filtered rows (combined from the slices') at the end of the last. Both deflaters and
    numpy release the GIL."""
    height, row_bytes = source.shape
    threads = max(1, min(os.cpu_count() or 1, 8, height * (row_bytes + 1) // _PARALLEL_MIN_BYTES))
    count = min(height, threads * _SLICES_PER_THREAD if threads > 1 else 1)
    bounds = [height * i // count for i in range(count + 1)]
    header = b"\x78\x01" if level <= 1 else b"\x78\x9c"  # CMF/FLG; FLEVEL is informative only
    done = [threading.Event() for _ in range(count)]
    results: list = [None] * count
    claim = itertools.count()

    def make(index: int) -> tuple[list[bytes], int, int, int]:
        """Slice `index`: its chunk's pieces before the CRC, the CRC so far, its Adler-32 and length."""
        r0, r1 = bounds[index], bounds[index + 1]
        above = max(r0 - 1, 0)  # the Up filter needs the row above the slice
        if rows is None:
            pixels = source[above:r1]
        else:
            pixels = np.empty((r1 - above, row_bytes), dtype=np.uint8)  # (rows, W * channels)
            rows(above, r1, pixels)
        filtered = np.empty((r1 - r0, row_bytes + 1), dtype=np.uint8)  # (rows, 1 + W * channels)
        if level == 0:
            filtered[:, 0] = 0  # filter None: stored data needs no prediction
            filtered[:, 1:] = pixels[r0 - above:]
        else:
            filtered[:, 0] = 2  # filter Up: this row minus the row above (the first row: minus zeros)
            if r0 == 0:
                filtered[0, 1:] = pixels[0]
                np.subtract(pixels[1:], pixels[:-1], out=filtered[1:, 1:])
            else:
                np.subtract(pixels[1:], pixels[:-1], out=filtered[:, 1:])
        data = memoryview(filtered).cast("B")
        stream = _deflater(level)
        last = index == count - 1
        body = [stream.compress(data), stream.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)]
        if index == 0:
            body.insert(0, header)
        crc = isal_zlib.crc32(b"IDAT")
        for piece in body:
            crc = isal_zlib.crc32(piece, crc)
        return body, crc, isal_zlib.adler32(data), len(data)

    pieces: list = [None] * count  # per slice, its IDAT chunk's pieces, once hashed
    hashing = threading.Lock()
    state = {"next": 0, "adler": 1}  # the next slice to hash; the Adler-32 of the rows before it

    def close(index: int) -> list[bytes]:
        """Slice `index`'s whole IDAT chunk, fed to the digest (in order: under `hashing`)."""
        body, crc, slice_adler, length = results[index]
        state["adler"] = adler32_combine(state["adler"], slice_adler, length)
        if index == count - 1:
            trailer = struct.pack(">I", state["adler"])
            body, crc = [*body, trailer], isal_zlib.crc32(trailer, crc)
        chunk = [struct.pack(">I", sum(map(len, body))) + b"IDAT", *body, struct.pack(">I", crc)]
        for part in chunk if digest is not None else ():
            digest.update(part)
        return chunk

    def ready(index: int) -> bool:
        return index < count and done[index].is_set() and not isinstance(results[index], BaseException)

    def hash_ready() -> None:
        """Whoever finishes a slice hashes the slices ready in order, as far as they go; one
        thread at a time, and the holder looks again after letting go, so none is left behind."""
        while ready(state["next"]) and hashing.acquire(blocking=False):
            try:
                while ready(index := state["next"]):
                    pieces[index] = close(index)
                    state["next"] = index + 1
            finally:
                hashing.release()

    def work() -> None:
        while (index := next(claim)) < count:
            try:
                results[index] = make(index)
            except BaseException as exc:  # handed to the caller, which raises it
                results[index] = exc
            done[index].set()
            hash_ready()

    for _ in range(min(threads - 1, count - 1)):  # not waited for: a helper the pool starts late finds no slice left
        _deflate_pool().submit(work)
    work()  # the caller takes slices too: one no helper has started is not waited for
    for event in done:
        event.wait()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    with hashing:  # what the helpers left: slices that finished while the lock was held
        while (index := state["next"]) < count:
            pieces[index] = close(index)
            state["next"] = index + 1
    return [part for chunk in pieces for part in chunk if part]
