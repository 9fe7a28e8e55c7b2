"""Watermark, palette transfer and PNG encoding on small real images made under a fixed seed."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageDraw

from wanimage.core import postprocess
from wanimage.core.postprocess import (
    add_watermark,
    adler32_combine,
    apply_palette,
    encode_png,
    label_patch,
    palette_distance,
    png_parts,
    watermark_box,
)
from wanimage.types import PaletteColor

PALETTE = [
    PaletteColor((230, 57, 70), 0.30),
    PaletteColor((241, 250, 238), 0.20),
    PaletteColor((168, 218, 220), 0.20),
    PaletteColor((69, 123, 157), 0.15),
    PaletteColor((29, 53, 87), 0.15),
]


def scene(width: int, height: int | None = None, seed: int = 0) -> Image.Image:
    """Smooth gradients, a few shapes and sensor noise: enough structure to test colour work."""
    height = height or width
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)  # (H, W)
    y, x = y / height, x / width
    base = np.stack(
        [128 + 100 * np.sin(3 * x + 1), 110 + 80 * np.cos(4 * y + x), 140 + 90 * np.sin(5 * x * y)],
        axis=-1,
    )  # (H, W, 3)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(2, max(3, min(width, height) // 6)))
        draw.ellipse(
            (x0 - r, y0 - r, x0 + r, y0 + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3))
        )
    noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, 5, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


# -- watermark ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(240, 240), (240, 960), (1024, 768), (4096, 4096)])
def test_watermark_changes_only_its_corner(size):
    width, height = size
    img = Image.new("RGB", size, (200, 180, 40)) if width >= 4096 else scene(width, height)
    original = img.copy()
    out = add_watermark(img)
    assert out.size == img.size and ImageChops.difference(img, original).getbbox() is None
    x0, y0, x1, y1 = watermark_box(width, height)
    assert x1 <= width and y1 <= height and x0 > width / 2 and y0 > height / 2  # bottom-right
    changed = ImageChops.difference(out, img).getbbox()  # smallest box holding every change
    assert changed is not None
    assert x0 <= changed[0] and y0 <= changed[1] and changed[2] <= x1 and changed[3] <= y1
    plate = np.asarray(out.crop((x0, y0, x1, y1))) != np.asarray(img.crop((x0, y0, x1, y1)))
    assert plate.any(axis=-1).mean() > 0.5  # the plate covers the box


def test_watermark_scales_with_the_image():
    small, large = watermark_box(240, 240), watermark_box(4096, 4096)
    small_h, large_h = small[3] - small[1], large[3] - large[1]
    assert small_h >= 12  # legible at the smallest output size
    assert 10 < large_h / small_h < 25  # font size follows min(w, h)
    assert (large[2] - large[0]) < 4096 / 3  # a label, not a banner


@pytest.mark.parametrize("background", [(0, 0, 0), (255, 255, 255), (128, 128, 128)])
def test_watermark_text_is_legible_on_any_background(background):
    out = np.asarray(add_watermark(Image.new("RGB", (512, 512), background)), dtype=np.int16)
    x0, y0, x1, y1 = watermark_box(512, 512)
    luma = out[y0:y1, x0:x1].mean(axis=-1)  # (h, w)
    # bright text on a dark plate: strong contrast whatever was behind it
    assert luma.max() - np.percentile(luma, 25) > 120


def test_watermark_keeps_alpha_mode():
    img = Image.new("RGBA", (300, 300), (10, 200, 30, 128))
    out = add_watermark(img)
    assert out.mode == "RGBA" and out.getpixel((0, 0)) == (10, 200, 30, 128)


# -- palette -----------------------------------------------------------------------------------


def test_palette_distance_is_zero_for_the_palette_itself():
    # an image made of exactly the palette's colours in exactly its proportions
    stripes = np.concatenate(
        [np.tile(np.array(p.rgb, np.uint8), (int(p.weight * 100), 64, 1)) for p in PALETTE]
    )
    exact = palette_distance(Image.fromarray(stripes), PALETTE)
    wrong_share = palette_distance(Image.fromarray(stripes[::-1][:60]), PALETTE)
    assert exact < 2.0 and wrong_share > exact + 5


@pytest.mark.parametrize("strength", [0.25, 0.5, 1.0])
def test_apply_palette_moves_the_image_toward_the_palette(strength):
    img = scene(256)
    before = palette_distance(img, PALETTE)
    out = apply_palette(img, PALETTE, strength=strength)
    assert out.size == img.size and out.mode == "RGB"
    after = palette_distance(out, PALETTE)
    assert after < before * (1 - 0.25 * strength), (before, after)


def test_apply_palette_is_stronger_with_strength():
    img = scene(192)
    distances = [palette_distance(apply_palette(img, PALETTE, s), PALETTE) for s in (0.0, 0.5, 1.0)]
    assert distances[0] > distances[1] > distances[2]
    assert np.array_equal(np.asarray(apply_palette(img, PALETTE, 0.0)), np.asarray(img))


def test_apply_palette_follows_the_weights():
    img = scene(192)
    black_white = [PaletteColor((0, 0, 0), 0.8), PaletteColor((255, 255, 255), 0.2)]
    out = np.asarray(apply_palette(img, black_white, strength=1.0, keep_detail=0.0), np.float32)
    dark_share = (out.mean(axis=-1) < 128).mean()
    assert 0.7 < dark_share < 0.9
    flipped = [PaletteColor((0, 0, 0), 0.2), PaletteColor((255, 255, 255), 0.8)]
    out = np.asarray(apply_palette(img, flipped, strength=1.0, keep_detail=0.0), np.float32)
    assert 0.1 < (out.mean(axis=-1) < 128).mean() < 0.3


def test_apply_palette_keeps_alpha():
    img = scene(64).convert("RGBA")
    img.putalpha(77)
    out = apply_palette(img, PALETTE)
    assert out.mode == "RGBA" and np.all(np.asarray(out)[..., 3] == 77)


# -- PNG ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "I;16", "CMYK"])
@pytest.mark.parametrize("level", [0, 1, 6])
def test_encode_png_round_trips(mode, level):
    img = scene(97, 61).convert(mode)
    decoded = Image.open(io.BytesIO(encode_png(img, level)))
    decoded.load()
    expected = img.convert("RGB") if mode == "CMYK" else img
    assert decoded.format == "PNG" and decoded.mode == expected.mode
    assert np.array_equal(np.asarray(decoded), np.asarray(expected))


def test_encode_png_large_image_uses_parallel_slices_losslessly():
    img = scene(1400, 1100)  # 4.6 MB of samples: more than one deflate slice
    data = encode_png(img, 1)
    decoded = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(decoded), np.asarray(img))
    assert len(data) < 1400 * 1100 * 3 * 0.9


def test_encode_png_edge_shapes_and_levels():
    for size in [(1, 1), (1, 300), (300, 1)]:
        img = scene(*size) if min(size) > 1 else Image.new("RGB", size, (1, 2, 3))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(img)))), np.asarray(img))
    with pytest.raises(ValueError):
        encode_png(Image.new("RGB", (4, 4)), 10)


def _idat_lengths(data: bytes) -> list[int]:
    """The data length of each IDAT chunk, every chunk's CRC checked on the way."""
    lengths, at = [], 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        body, (crc,) = data[at + 8:at + 8 + length], struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        assert zlib.crc32(body, zlib.crc32(kind)) == crc, kind
        lengths += [length] if kind == b"IDAT" else []
        at += 12 + length
    return lengths


@pytest.mark.parametrize("level", [0, 1, 6])
def test_a_large_image_is_written_as_several_idat_chunks_that_pillow_reads(monkeypatch, level):
    monkeypatch.setattr(postprocess.os, "cpu_count", lambda: 4)  # slices even on a one-core machine
    img = scene(1024, 768)
    data = encode_png(img, level)
    assert len(_idat_lengths(data)) > 2  # one IDAT chunk per slice, each with its own CRC
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    assert np.array_equal(np.asarray(decoded), np.asarray(img))


def test_marks_drawn_slice_by_slice_give_the_pixels_of_a_whole_image_pass(monkeypatch):
    """`rows` (what the writer marks on its threads) and the digest fed as slices finish: the
    same pixels as the marks applied to the whole image first, and the SHA-256 of the file."""
    monkeypatch.setattr(postprocess.os, "cpu_count", lambda: 3)
    pixels = np.asarray(scene(900, 1300))

    def rows(r0, r1, out):  # e.g. a watermark: every value changes, by row
        np.add(pixels.reshape(len(pixels), -1)[r0:r1], (np.arange(r0, r1) % 256).astype(np.uint8)[:, None], out=out)

    digest = hashlib.sha256()
    parts = png_parts(pixels, 1, [(b"tEXt", b"k\x00v")], rows=rows, digest=digest)
    data = b"".join(parts)
    expected = pixels + (np.arange(len(pixels)) % 256).astype(np.uint8)[:, None, None]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), expected)
    assert digest.digest() == hashlib.sha256(data).digest()
    assert len(_idat_lengths(data)) > 1


def test_adler32_of_slices_combines_to_the_whole():
    rng = np.random.default_rng(0)
    a, b = rng.bytes(70000), rng.bytes(123457)
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)
    assert adler32_combine(1, zlib.adler32(b), len(b)) == zlib.adler32(b)
    assert adler32_combine(zlib.adler32(a), 1, 0) == zlib.adler32(a)


@pytest.mark.parametrize("size", [(1024, 1024), (97, 61), (40, 20)])
def test_the_label_plate_alone_is_the_label_add_watermark_draws(size):
    img = scene(*size)
    y0, x0, plate = label_patch(np.asarray(img))
    expected = np.asarray(img).copy()
    expected[y0:y0 + plate.shape[0], x0:x0 + plate.shape[1]] = plate
    assert np.array_equal(np.asarray(add_watermark(img)), expected)


def test_images_encoded_at_once_share_the_deflate_threads_and_each_comes_out_whole(monkeypatch):
    """Workers encoding at the same time: a slice whose helper is busy elsewhere is taken by its
    own caller, and every file still decodes to its pixels with the digest of its bytes."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(postprocess.os, "cpu_count", lambda: 3)
    images = [np.asarray(scene(700, 900, seed=seed)) for seed in range(4)]

    def encode(pixels):
        digest = hashlib.sha256()
        data = b"".join(png_parts(pixels, 1, digest=digest))
        return data, digest.digest()

    with ThreadPoolExecutor(4) as workers:
        for _ in range(3):
            for pixels, (data, digest) in zip(images, workers.map(encode, images), strict=True):
                assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
                assert digest == hashlib.sha256(data).digest()
