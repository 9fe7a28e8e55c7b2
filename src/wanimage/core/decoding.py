"""Decoding input images within a memory budget.

An input is decoded once, at submit (to check it), straight to the size the engines use
(`input_max_pixels`, the 2K tier's area by default); those pixels are stored beside the client's
file as a lossless PNG (`decoded_png`), which is what the worker reads. Decoding goes: JPEG through `Image.draft` (the decoder itself scales by 1/2, 1/4 or 1/8, so no
full-size copy exists), every other format by one full-size decode then `Image.reduce`, which
frees the full-size copy before anything else is made. So at most one full-size copy of one image
of a request is alive at a time, and `DecodeBudget` bounds what all requests of the process
decode at once (a 429 when it is spent, a 400 for an image that alone would exceed it).

The decoded image carries its original (EXIF-oriented) size in `info["wanimage.original_size"]`:
boxes and output sizes are in the original's pixels (`original_size`, used by core/job.py)."""

from __future__ import annotations

import io
import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from PIL import ExifTags, Image, UnidentifiedImageError

from wanimage.errors import InvalidParameter, Throttling
from wanimage.memory import libc, release_free_memory

log = logging.getLogger(__name__)

FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
MIN_SIDE, MAX_SIDE, MAX_RATIO = 240, 8000, 8
DEFAULT_MAX_PIXELS = 2048 * 2048
ORIGINAL_SIZE = "wanimage.original_size"
BUDGET_WAIT_SECONDS = 10.0  # a decode waits this long for budget before answering 429
TRIM_AFTER_BYTES = 32 * 1024 * 1024  # decodes this large hand freed memory back to the OS
STRIP_ROWS = 256  # rows composited at a time when an image with alpha is reduced
BYTES_PER_PIXEL = 4  # Pillow keeps RGB and RGBA pixels in 32 bits
_OPAQUE = {"L", "RGB", "I", "F"}  # modes Image.reduce takes without converting first
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass
class InputImage:
    position: int  # 1-based position among the request's images ("image 2")
    image: Image.Image  # decoded, RGB, at most `input_max_pixels`
    format: str  # "JPEG" | "PNG" | "BMP" | "WEBP"
    data: bytes  # the original encoded bytes (persisted for durable tasks)

    @property
    def width(self) -> int:
        return original_size(self.image)[0]

    @property
    def height(self) -> int:
        return original_size(self.image)[1]


def original_size(image: Image.Image) -> tuple[int, int]:
    """The size of the image as the client sent it (EXIF-oriented), before decode-time downscaling."""
    return tuple(image.info.get(ORIGINAL_SIZE, image.size))  # type: ignore[return-value]


DECODED_SUFFIX = ".decoded.png"  # beside a stored input: its decoded pixels, for the worker


def decoded_png(image: Image.Image) -> bytes:
    """The decoded (already downscaled) input as a lossless PNG carrying its original size, so
    the worker reads these pixels instead of decoding the client's file a second time."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(ORIGINAL_SIZE, "{},{}".format(*original_size(image)))
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1, pnginfo=info)
    return buf.getvalue()


def from_decoded_png(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
        rgb = img.convert("RGB")
        width, height = (int(v) for v in str(img.info.get(ORIGINAL_SIZE, "{},{}".format(*img.size))).split(","))
    rgb.info[ORIGINAL_SIZE] = (width, height)
    return rgb


def refuse(position: int, message: str) -> InvalidParameter:
    return InvalidParameter(f"image {position}: {message}", field="image")


def mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


class DecodeBudget:
    """The bytes that decoding inputs may hold at once in this process, shared by every request."""

    def __init__(self, total_bytes: int, wait_seconds: float = BUDGET_WAIT_SECONDS) -> None:
        self.total = total_bytes
        self.wait_seconds = wait_seconds
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, nbytes: int, position: int) -> Iterator[None]:
        if nbytes > self.total:
            raise refuse(position, f"decoding it takes {mb(nbytes)}, more than this server's decode budget of "
                                   f"{mb(self.total)} (WANIMAGE_DECODE_BUDGET_BYTES); send a smaller image")
        with self._cond:
            if not self._cond.wait_for(lambda: self.used + nbytes <= self.total, timeout=self.wait_seconds):
                raise Throttling(f"the server is decoding other images: its decode budget of {mb(self.total)} "
                                 "(WANIMAGE_DECODE_BUDGET_BYTES) is in use; retry in a few seconds", retry_after=2)
            self.used += nbytes
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()


def decode_image(data: bytes, position: int, *, max_bytes: int | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, budget: DecodeBudget | None = None) -> InputImage:
    """Check and decode encoded image bytes, downscaled on decode to at most `max_pixels`.
    Synchronous; the fetcher runs it in a thread."""
    if max_bytes is not None and len(data) > max_bytes:
        raise refuse(position, f"the image is larger than {mb(max_bytes)}; send a smaller file")
    if not data:
        raise refuse(position, "the image is empty")
    img = open_header(data, position)
    try:
        check_dimensions(img.size, position)
        sent_size = img.size  # before a JPEG draft scales it
        cost = _prepare_draft(img, max_pixels) * BYTES_PER_PIXEL
        with budget.hold(cost, position) if budget else nullcontext():
            rgb = _decode_small(img, position, max_pixels, sent_size)
    finally:
        img.close()
    release_after_decoding(cost)
    fmt = "JPEG" if img.format == "MPO" else img.format
    return InputImage(position=position, image=rgb, format=fmt, data=data)


def open_header(data: bytes, position: int) -> Image.Image:
    """Open lazily: reads the header only, so the size is known before any pixel is decoded."""
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
        raise refuse(position, f"the image declares far more pixels than allowed; each side must be between "
                               f"{MIN_SIDE} and {MAX_SIDE} px") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        pass
    claimed = _signature(data)
    if claimed:
        raise refuse(position, f"the {claimed} data is corrupt or truncated; send the file again")
    detected = _sniff_other_format(data)
    what = f"a {detected} image" if detected else "not a readable image"
    raise refuse(
        position,
        f"the data is {what}; send a JPEG, PNG, BMP or WEBP image "
        "(the format is read from the bytes, not from the URL or mime type)",
    )


def _signature(data: bytes) -> str | None:
    """The accepted format whose magic bytes `data` starts with, if any."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM") and len(data) >= 26:
        return "BMP"
    return None


def _sniff_other_format(data: bytes) -> str | None:
    """Name the format of an image we refuse, for the message only (nothing is decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as other:
            return other.format
    except Exception:
        return None


def check_dimensions(size: tuple[int, int], position: int) -> None:
    w, h = size
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise refuse(position, f"the image is {w}x{h} px; each side must be between {MIN_SIDE} and {MAX_SIDE} px, "
                               "resize it")
    ratio = max(w, h) / min(w, h)
    if ratio > MAX_RATIO:
        raise refuse(position, f"the image is {w}x{h} px, an aspect ratio of {ratio:.2f}:1; the longer side may be "
                               f"at most {MAX_RATIO} times the shorter, crop or pad it")


def _prepare_draft(img: Image.Image, max_pixels: int) -> int:
    """Let a JPEG decoder scale while decoding; return the pixels' worth of memory the decode will
    hold: one full-size copy (two for modes converted before reducing, e.g. a palette)."""
    w, h = img.size
    if img.format in ("JPEG", "MPO") and w * h > max_pixels:
        scale = math.sqrt(w * h / max_pixels)
        img.draft(img.mode, (math.ceil(w / scale), math.ceil(h / scale)))
    w, h = img.size  # the draft size for JPEG, the full size for the rest
    return w * h * (1 if img.mode in _OPAQUE or img.mode == "RGBA" else 2)


def _decode_small(img: Image.Image, position: int, max_pixels: int, sent_size: tuple[int, int]) -> Image.Image:
    """Decode, reduce to `max_pixels`, composite alpha on white, apply EXIF orientation: always a
    new RGB image recording the size as sent; each full-size copy is freed before the next."""
    try:
        img.load()
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        w, h = img.size
        factor = math.ceil(math.sqrt(w * h / max_pixels)) if w * h > max_pixels else 1
        if img.has_transparency_data:
            rgba = _replace(img, img.convert("RGBA")) if img.mode != "RGBA" else img
            rgb = _reduce_on_white(rgba, factor)
        else:
            work = _replace(img, img.convert("RGB")) if img.mode not in _OPAQUE else img
            small = work.reduce(factor) if factor > 1 else work
            rgb = small.convert("RGB")  # a copy even when already RGB
            work.close()
    except Image.DecompressionBombError:
        raise refuse(position, "the image declares too many pixels") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error, ...
        raise refuse(position, f"the image data is corrupt or truncated ({exc}); send the file again") from None
    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    rgb.info[ORIGINAL_SIZE] = (sent_size[1], sent_size[0]) if orientation in (5, 6, 7, 8) else sent_size
    return rgb


def _replace(old: Image.Image, new: Image.Image) -> Image.Image:
    old.close()  # frees the old pixels now, not when the caller's finally runs
    return new


def _reduce_on_white(rgba: Image.Image, factor: int) -> Image.Image:
    """RGBA -> RGB composited on white and reduced by `factor`, in strips of rows: Pillow's own
    RGBA reduce makes a second, premultiplied full-size copy first. Compositing then averaging
    equals averaging premultiplied pixels (both are linear), so no halo appears at alpha edges."""
    w, h = rgba.size
    out = Image.new("RGB", (math.ceil(w / factor), math.ceil(h / factor)))
    rows = factor * max(1, STRIP_ROWS // factor)  # a multiple of the factor: strips meet exactly
    for top in range(0, h, rows):
        strip = rgba.crop((0, top, w, min(h, top + rows)))
        flat = Image.alpha_composite(Image.new("RGBA", strip.size, (255, 255, 255, 255)), strip).convert("RGB")
        out.paste(flat.reduce(factor) if factor > 1 else flat, (0, top // factor))
    rgba.close()
    return out


# -------------------------------------------------------------------------------- memory

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)
# 16 MiB: Pillow's pixel blocks (16 MiB each for a large image) and every buffer of a decoded
# input above the 2K tier come from mmap and go back to the OS when freed, while the 3-12 MB
# buffers of encoding a 1K or 2K result are reused from the arenas. At 1 MiB (before 2026-12-05)
# each of those was a fresh mapping the kernel faulted in page by page: about 1,500 faults and
# 4 ms for one copy of a 1K image on this VM, 7 ms of every 1K result (bench/overhead.py).
MMAP_THRESHOLD_BYTES = 16 * 1024 * 1024
# Free memory at the top of an arena is kept up to this much (glibc's own rule once its threshold
# has risen: twice the mmap threshold; set by hand, the trim threshold would stay at 128 KiB and
# each freed buffer would be handed back and faulted in again). malloc_trim after large decodes
# still returns everything.
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES


def tune_allocator() -> bool:
    """Allocations of 16 MiB and more (Pillow's pixel blocks of large images) come straight from
    mmap and go back to the OS when freed. glibc's default threshold rises after each such free,
    so later large images land in per-thread arenas that keep their peak; a server that decoded a
    few large inputs then stayed gigabytes above idle. Idempotent; False off glibc."""
    lib = libc()
    if lib is None or not hasattr(lib, "mallopt"):
        return False
    return bool(lib.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        lib.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def release_after_decoding(pixel_bytes: int) -> None:
    """release_free_memory, only after decodes of at least TRIM_AFTER_BYTES of pixels: the trim
    walks the whole heap and hands every free page back, so the buffers of the next request are
    faulted in again (5 ms of a 1K text-to-image request when it ran after every request)."""
    if pixel_bytes >= TRIM_AFTER_BYTES:
        release_free_memory()


