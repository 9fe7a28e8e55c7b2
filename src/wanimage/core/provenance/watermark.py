"""An invisible watermark that survives resizing, cropping and lossy re-encoding.

Method: tiled spread spectrum in luminance with a self-synchronising search (in the family of
Kalker et al.'s periodic watermarks and Kutter's self-reference marks). A fixed, public
pseudo-random tile of CHIPS x CHIPS chips, each chip +-AMPLITUDE grey levels, is repeated
TILES x TILES times across the short side (so the tile scales with the image) and added to R, G
and B alike. Half of the chips are a sync pattern; the other half carry PAYLOAD_BITS bits, each
spread over CHIPS_PER_BIT chips with a keyed sign.

Finding it needs no original: the suspect image is brought to NORMAL_SHORT pixels on its short
side, high-passed (the host picture is the noise here), and for each candidate tile period it is
folded (every pixel added into its position within one period, on a BINS x BINS grid). At the
right period the fold is the tile plus averaged-down noise, shifted by wherever a crop started;
an FFT cross-correlation with the sync pattern finds that shift and its peak height (a z-score
over all shifts) is the confidence. Scaling changes only the apparent period, which the search
covers; a crop changes only the shift. Measured in docs/provenance.md (bench/watermark.py).

Why not `invisible-watermark` (DWT-DCT): it embeds in fixed 8x8-pixel blocks from the image's
top-left corner, so any resize or crop that moves the block grid loses the bits; measured in
bench/watermark.py --iwm when the package is installed. Why not `trustmark`: a neural model whose
weights are downloaded on first use, which this project does not do."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

TILES = 4  # tile periods across the short side
CHIPS = 16  # chips per tile side: 256 chips, half sync, half payload
PAYLOAD_BITS = 32
CHIPS_PER_BIT = CHIPS * CHIPS // 2 // PAYLOAD_BITS  # 4
AMPLITUDE = 2  # grey levels: PSNR ~42 dB before clipping
BINS = 64  # fold grid per tile side, 4 bins per chip: crop offsets resolved to a quarter chip
NORMAL_SHORT = 256  # detection works on this short side: the search cost is bounded
# Normalised tile periods searched, 1 % steps: crops down to 50 % of the short side, enlargements up
# to 4/3. Longer periods leave under two periods in view, where flat art's straight edges alone
# reached scores of 7 on unmarked images (bench/watermark.py).
PERIODS = np.geomspace(48.0, 128.0, 99)
REFINE, REFINE_STEPS = 3, np.linspace(0.99, 1.01, 21)  # the best 3 periods, again at 0.1 % steps
THRESHOLD = 8.0  # sync z-score; the largest seen on unmarked images is in docs/provenance.md
_KEY_SEED = 0x57414E  # public on purpose: like the metadata, the mark is there for anyone to read


@dataclass(frozen=True)
class Key:
    chips: np.ndarray  # (CHIPS * CHIPS,) +-1 sign of each chip before the payload
    sync: np.ndarray  # (CHIPS * CHIPS,) bool: chips of the sync pattern
    bit_chips: np.ndarray  # (PAYLOAD_BITS, CHIPS_PER_BIT) chip indices carrying each bit


@lru_cache(maxsize=1)
def key() -> Key:
    rng = np.random.default_rng(_KEY_SEED)
    n = CHIPS * CHIPS
    order = rng.permutation(n)
    sync = np.zeros(n, dtype=bool)
    sync[order[: n // 2]] = True
    bit_chips = order[n // 2 :].reshape(PAYLOAD_BITS, CHIPS_PER_BIT)
    return Key(rng.choice(np.array([-1, 1], dtype=np.int8), n), sync, bit_chips)


def payload_for(producer: str) -> int:
    """The 32 bits a deployment writes: the start of SHA-256 of its content producer name, so
    a found mark can be matched against the producer named in the file's XMP or a settings file."""
    return int.from_bytes(hashlib.sha256(producer.encode()).digest()[:4], "big")


def tile_chips(payload: int) -> np.ndarray:
    """(CHIPS, CHIPS) int8 +-1: the sync signs, and each payload chip's sign times its bit."""
    k = key()
    chips = k.chips.copy()
    for i, members in enumerate(k.bit_chips):
        bit = (payload >> (PAYLOAD_BITS - 1 - i)) & 1
        chips[members] *= 1 if bit else -1
    return chips.reshape(CHIPS, CHIPS)


def pattern(width: int, height: int, payload: int) -> np.ndarray:
    """(H, W * 3) uint8, read-only: the mark `embed_pixels` adds to a clipped image's R, G, B rows."""
    return _pattern(width, height, payload)


def clip(values: np.ndarray, out: np.ndarray) -> None:
    """`values` clipped to [AMPLITUDE, 255 - AMPLITUDE] into `out`: the headroom adding
    `pattern` modulo 256 needs not to wrap."""
    np.clip(values, AMPLITUDE, 255 - AMPLITUDE, out=out)


@lru_cache(maxsize=2)  # a server makes one size most of the time; 4K RGB holds 48 MB
def _pattern(width: int, height: int, payload: int) -> np.ndarray:
    """(H, W * 3) uint8: the mark to add, modulo 256, to every R, G and B value of a row:
    AMPLITUDE where the chip is +1, 256 - AMPLITUDE (that is, -AMPLITUDE) where it is -1."""
    period = min(width, height) / TILES
    cx = ((np.arange(width) % period) * (CHIPS / period)).astype(np.intp)  # (W,)
    cy = ((np.arange(height) % period) * (CHIPS / period)).astype(np.intp)  # (H,)
    positive = tile_chips(payload)[cy[:, None], cx[None, :]] > 0  # (H, W)
    delta = np.where(positive, AMPLITUDE, 256 - AMPLITUDE).astype(np.uint8)
    return np.repeat(delta, 3, axis=1)  # (H, W * 3): the same mark on R, G and B


def embed_pixels(image: Image.Image, payload: int) -> np.ndarray:
    """(H, W, 3) uint8, (H, W, 4) with alpha kept: `image` with the mark, as the PNG writer
    takes it (core.postprocess.encode_png writes an array without another copy out of Pillow).

    Two passes over the values: clip to [AMPLITUDE, 255 - AMPLITUDE], then add the pattern
    modulo 256, which the clip keeps from wrapping. So the mark is +-AMPLITUDE everywhere,
    pure white and black included (255 becomes 255 or 251), where a saturating add would
    leave half of it out; 0.2 ms for 1K where the four saturating passes took 1.4 (bench/png.py)."""
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    pixels = np.clip(np.asarray(rgb), AMPLITUDE, 255 - AMPLITUDE)  # (H, W, 3), a new array
    flat = pixels.reshape(rgb.height, -1)  # (H, W * 3): the same memory
    flat += _pattern(rgb.width, rgb.height, payload)
    if alpha is None:
        return pixels
    return np.dstack((pixels, np.asarray(alpha)))


def embed(image: Image.Image, payload: int) -> Image.Image:
    """`image` with the mark added to R, G and B (alpha kept), as a Pillow image."""
    marked = embed_pixels(image, payload)
    return Image.fromarray(marked)  # RGB, or RGBA from the 4th channel


@dataclass(frozen=True)
class Detection:
    found: bool
    confidence: float  # sync z-score: how many standard deviations the best peak stands out
    payload: int | None  # the 32 bits read, when found
    period: float  # the tile period found, in normalised pixels
    bit_margin: float  # weakest bit's |correlation| over the noise: low means bits may be wrong


def _normalised_highpass(image: Image.Image) -> np.ndarray:
    """(h, w) float32: luminance at NORMAL_SHORT on the short side minus its 3x3 mean, divided by
    its local energy (the mean square of that residual over 7x7) and clipped. The division is the
    weighting a matched filter wants: where the picture is busy (edges, text, texture) its
    residual is noise to the detector and counts for little; flat and smooth areas, where the
    mark is all there is, count fully. On pages of text it doubled the score (bench/watermark.py)."""
    gray = image.convert("RGB").convert("L")
    scale = NORMAL_SHORT / min(gray.size)
    size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    gray = gray.resize(size, resample)
    blurred = gray.filter(ImageFilter.BoxBlur(1))
    residual = np.asarray(gray, dtype=np.float32) - np.asarray(blurred, dtype=np.float32)
    energy = _box_mean(residual * residual, 3)
    return np.clip(residual / (energy + 1.0), -2.0, 2.0)


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """The mean over a (2r+1)^2 window at every pixel, edges repeated (an integral image)."""
    k = 2 * radius + 1
    integral = np.pad(np.cumsum(np.cumsum(np.pad(values, radius, mode="edge"), 0), 1), ((1, 0), (1, 0)))
    return (integral[k:, k:] - integral[:-k, k:] - integral[k:, :-k] + integral[:-k, :-k]) / (k * k)


@lru_cache(maxsize=1)
def _sync_spectrum() -> np.ndarray:
    k = key()
    sync = np.where(k.sync, k.chips, 0).reshape(CHIPS, CHIPS).astype(np.float32)
    template = np.kron(sync, np.ones((BINS // CHIPS, BINS // CHIPS), dtype=np.float32))
    return np.conj(np.fft.rfft2(template))  # (BINS, BINS // 2 + 1)


def _fold(hp: np.ndarray, period: float) -> np.ndarray:
    """(BINS, BINS): the mean of `hp` at each position within one tile period. One bincount;
    the counts are separable. (A one-hot matrix product is faster alone but, with BLAS threads
    on a busy machine, several times slower.)"""
    h, w = hp.shape
    bx = ((np.arange(w) % period) * (BINS / period)).astype(np.intp)  # (w,)
    by = ((np.arange(h) % period) * (BINS / period)).astype(np.intp)  # (h,)
    index = (by[:, None] * BINS + bx[None, :]).ravel()
    sums = np.bincount(index, weights=hp.ravel(), minlength=BINS * BINS).reshape(BINS, BINS)
    counts = np.outer(np.bincount(by, minlength=BINS), np.bincount(bx, minlength=BINS))
    return sums / np.maximum(counts, 1)


@dataclass(frozen=True)
class _Peak:
    score: float
    period: float
    shift: tuple[int, int]
    folded: np.ndarray


def _peak(hp: np.ndarray, period: float) -> _Peak:
    """The sync pattern's best offset at one period, and how far it stands out (a z-score)."""
    folded = _fold(hp, period)
    corr = np.fft.irfft2(np.fft.rfft2(folded) * _sync_spectrum(), s=folded.shape)  # (BINS, BINS)
    row, col = np.unravel_index(int(corr.argmax()), corr.shape)
    score = float((corr.max() - corr.mean()) / (corr.std() + 1e-12))
    return _Peak(score, float(period), (int(row), int(col)), folded)


def detect(image: Image.Image) -> Detection:
    """Search every period for the sync pattern, refine the best few, read the payload there.
    The coarse 1 % steps leave a period up to 0.5 % off, which smears a crop's fold; refining
    in 0.1 % steps around the three best raised the scores of crops by up to 40 %."""
    hp = _normalised_highpass(image)
    coarse = [_peak(hp, p) for p in PERIODS if p <= min(hp.shape)]  # >= one whole period in view
    if not coarse:
        return Detection(False, 0.0, None, 0.0, 0.0)
    best = max(coarse, key=lambda peak: peak.score)
    for candidate in sorted(coarse, key=lambda peak: peak.score)[-REFINE:]:
        for period in candidate.period * REFINE_STEPS:
            refined = _peak(hp, period)
            best = refined if refined.score > best.score else best
    if best.score < THRESHOLD:
        return Detection(False, max(best.score, 0.0), None, best.period, 0.0)
    aligned = np.roll(best.folded, (-best.shift[0], -best.shift[1]), axis=(0, 1))
    payload, margin = _read_bits(aligned)
    return Detection(True, best.score, payload, best.period, margin)


def _read_bits(aligned: np.ndarray) -> tuple[int, float]:
    """The payload from a fold aligned to the tile: each bit is the sign of its chips' sum."""
    k = key()
    step = BINS // CHIPS
    chip_means = aligned.reshape(CHIPS, step, CHIPS, step).mean(axis=(1, 3)).ravel()  # (256,)
    signed = chip_means * k.chips
    noise = float(np.std(signed[k.sync] - np.mean(signed[k.sync]))) + 1e-12
    sums = signed[k.bit_chips].sum(axis=1)  # (PAYLOAD_BITS,)
    payload = 0
    for value in sums:
        payload = (payload << 1) | int(value > 0)
    return payload, float(np.abs(sums).min() / (noise * np.sqrt(CHIPS_PER_BIT)))
