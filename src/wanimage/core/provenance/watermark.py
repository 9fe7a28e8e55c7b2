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
from PIL import Image, ImageChops, ImageFilter

TILES = 4  # tile periods across the short side
CHIPS = 16  # chips per tile side: 256 chips, half sync, half payload
PAYLOAD_BITS = 32
CHIPS_PER_BIT = CHIPS * CHIPS // 2 // PAYLOAD_BITS  # 4
AMPLITUDE = 2  # grey levels: PSNR ~42 dB before clipping
BINS = 64  # fold grid per tile side, 4 bins per chip: crop offsets resolved to a quarter chip
NORMAL_SHORT = 256  # detection works on this short side: the search cost is bounded
PERIODS = np.geomspace(48.0, 176.0, 132)  # normalised tile periods searched (1 % steps): crops to ~36 %
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


@lru_cache(maxsize=2)  # a server makes one size most of the time; a 4K pattern is 16 MB
def _pattern(width: int, height: int, payload: int) -> Image.Image:
    """An "L" image of 128 + AMPLITUDE * chip sign: the delta ImageChops.add applies."""
    period = min(width, height) / TILES
    cx = ((np.arange(width) % period) * (CHIPS / period)).astype(np.intp)  # (W,)
    cy = ((np.arange(height) % period) * (CHIPS / period)).astype(np.intp)  # (H,)
    delta = tile_chips(payload)[cy[:, None], cx[None, :]]  # (H, W) +-1
    return Image.fromarray((128 + AMPLITUDE * delta.astype(np.int16)).astype(np.uint8), "L")


def embed(image: Image.Image, payload: int) -> Image.Image:
    """`image` with the mark added to its colour channels (alpha kept). In C: one saturating
    add of a cached pattern, about 2 ms for 1K."""
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    pattern = _pattern(rgb.width, rgb.height, payload)
    marked = ImageChops.add(rgb, Image.merge("RGB", (pattern,) * 3), scale=1.0, offset=-128)
    if alpha is not None:
        marked.putalpha(alpha)
    return marked


@dataclass(frozen=True)
class Detection:
    found: bool
    confidence: float  # sync z-score: how many standard deviations the best peak stands out
    payload: int | None  # the 32 bits read, when found
    period: float  # the tile period found, in normalised pixels
    bit_margin: float  # weakest bit's |correlation| over the noise: low means bits may be wrong


def _normalised_highpass(image: Image.Image) -> np.ndarray:
    """(h, w) float32: luminance at NORMAL_SHORT on the short side minus its 3x3 mean, clipped."""
    gray = image.convert("RGB").convert("L")
    scale = NORMAL_SHORT / min(gray.size)
    size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    gray = gray.resize(size, resample)
    blurred = gray.filter(ImageFilter.BoxBlur(1))
    residual = np.asarray(gray, dtype=np.float32) - np.asarray(blurred, dtype=np.float32)
    # Clipped to +-1: edges and texture then weigh no more than the mark (a sign detector),
    # which on measured images doubled the sync score; see docs/provenance.md.
    return np.clip(residual, -1.0, 1.0)


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


def detect(image: Image.Image) -> Detection:
    """Search every period for the sync pattern; read the payload where it stands out most."""
    hp = _normalised_highpass(image)
    best = (-np.inf, 0.0, (0, 0), None)
    for period in PERIODS:
        if period > min(hp.shape):  # less than one whole period in view
            break
        folded = _fold(hp, period)
        corr = np.fft.irfft2(np.fft.rfft2(folded) * _sync_spectrum(), s=folded.shape)
        z = float((corr.max() - corr.mean()) / (corr.std() + 1e-12))
        if z > best[0]:
            shift = np.unravel_index(int(corr.argmax()), corr.shape)
            best = (z, float(period), (int(shift[0]), int(shift[1])), folded)
    z, period, shift, folded = best
    if folded is None or z < THRESHOLD:
        return Detection(False, max(z, 0.0), None, period, 0.0)
    payload, margin = _read_bits(np.roll(folded, (-shift[0], -shift[1]), axis=(0, 1)))
    return Detection(True, z, payload, period, margin)


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
