"""Input images: fetch or decode each `image` reference of a request and check it against the API's
rules (api-spec §1.3), so engines only ever see valid RGB images.

Accepted references: `http://` / `https://` URLs (fetched through `netguard`, so never from
loopback or private networks unless `allow_private_urls`), `data:image/{jpeg,jpg,png,bmp,webp};base64,`
URIs, bare base64, and `oss://KEY` uploads resolved by the injected `resolve_upload`. Anything
else (`file://`, `ftp://`, ...) is refused.

Rules, checked in this order so that a hostile file costs nothing: encoded size <= 20 MB
(`max_image_bytes`; for URLs while streaming), format JPEG / PNG / BMP / WEBP sniffed from the
bytes (the URL, the Content-Type and the data URI's mime are not trusted), each side in
[240, 8000] px and aspect ratio <= 8 read from the header before any pixel is decoded, then a
full decode, so a decompression bomb is refused without allocating.

Decisions where the API is silent or strict:
- Alpha: the API says PNG alpha is "not supported"; we accept it and composite the image on white,
  then convert to RGB (what a user who drew on a transparent canvas expects to see).
- EXIF orientation is applied (the image is used the way viewers display it).
- Animated WEBP / PNG: the first frame is used.
- Base64: whitespace and line breaks are ignored, missing `=` padding is tolerated and the
  URL-safe alphabet (`-`, `_`) is accepted; any other character is refused.
Every refusal is `InvalidParameter(field="image")` whose message starts with "image {k}: ".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from wanimage.config import Settings
from wanimage.core.netguard import (
    AddressPolicy,
    BlockedAddressError,
    allow_all,
    guarded_transport,
    is_public_address,
)
from wanimage.errors import ApiError, InvalidParameter

FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
MIN_SIDE, MAX_SIDE, MAX_RATIO = 240, 8000, 8
MAX_REDIRECTS = 5
ACCEPTED_FORMS = (
    "an http(s) URL, a data:image/{jpeg,png,bmp,webp};base64,... URI, "
    "bare base64 or an oss:// upload"
)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_DATA_URI = re.compile(r"^data:([^,;]*)((?:;[^,;]*)*),(.*)$", re.DOTALL)
_DATA_MIMES = {"image/jpeg", "image/jpg", "image/png", "image/bmp", "image/webp"}
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/\-_]*={0,2}$")
_WHITESPACE = re.compile(r"\s+")


@dataclass
class InputImage:
    position: int  # 1-based position among the request's images ("image 2")
    image: Image.Image  # fully decoded, RGB
    format: str  # "JPEG" | "PNG" | "BMP" | "WEBP"
    data: bytes  # the original encoded bytes (persisted for durable tasks)

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


def _refuse(position: int, message: str) -> InvalidParameter:
    return InvalidParameter(f"image {position}: {message}", field="image")


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


# ---------------------------------------------------------------------------------------------
# Decoding


def decode_image(data: bytes, position: int, *, max_bytes: int | None = None) -> InputImage:
    """Check and decode encoded image bytes. Synchronous; the fetcher runs it in a thread."""
    if max_bytes is not None and len(data) > max_bytes:
        raise _refuse(position, f"the image is larger than {_mb(max_bytes)}; send a smaller file")
    if not data:
        raise _refuse(position, "the image is empty")
    img = _open_header(data, position)
    try:
        _check_dimensions(img.size, position)
        rgb = _to_rgb(img, position)
    finally:
        img.close()
    fmt = "JPEG" if img.format == "MPO" else img.format
    return InputImage(position=position, image=rgb, format=fmt, data=data)


def _open_header(data: bytes, position: int) -> Image.Image:
    """Open lazily: reads the header only, so the size is known before any pixel is decoded."""
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
        raise _refuse(
            position,
            f"the image declares far more pixels than allowed; each side must be between "
            f"{MIN_SIDE} and {MAX_SIDE} px",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        pass
    claimed = _signature(data)
    if claimed:
        raise _refuse(position, f"the {claimed} data is corrupt or truncated; send the file again")
    detected = _sniff_other_format(data)
    what = f"a {detected} image" if detected else "not a readable image"
    raise _refuse(
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


def _check_dimensions(size: tuple[int, int], position: int) -> None:
    w, h = size
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise _refuse(
            position,
            f"the image is {w}x{h} px; each side must be between {MIN_SIDE} and {MAX_SIDE} px, "
            "resize it",
        )
    ratio = max(w, h) / min(w, h)
    if ratio > MAX_RATIO:
        raise _refuse(
            position,
            f"the image is {w}x{h} px, an aspect ratio of {ratio:.2f}:1; the longer side may be "
            f"at most {MAX_RATIO} times the shorter, crop or pad it",
        )


def _to_rgb(img: Image.Image, position: int) -> Image.Image:
    """Full decode, EXIF orientation, alpha composited on white; always a new RGB image (the
    opened one is closed by the caller)."""
    try:
        img.load()
        if img.getexif().get(ExifTags.Base.Orientation, 1) != 1:
            img = ImageOps.exif_transpose(img)
    except Image.DecompressionBombError:
        raise _refuse(position, "the image declares too many pixels") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error, ...
        raise _refuse(
            position, f"the image data is corrupt or truncated ({exc}); send the file again"
        ) from None
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")  # a copy even when already RGB


# ---------------------------------------------------------------------------------------------
# Base64


def _decode_base64(payload: str, position: int, max_bytes: int) -> bytes:
    text = _WHITESPACE.sub("", payload)
    if not text:
        raise _refuse(position, f"the base64 data is empty; send {ACCEPTED_FORMS}")
    if not _BASE64_CHARS.match(text):
        raise _refuse(
            position,
            f"the reference is not valid base64 nor a supported form; send {ACCEPTED_FORMS}",
        )
    # Refuse an oversized payload before decoding it (every 4 characters carry 3 bytes).
    if (len(text) * 3) // 4 - 2 > max_bytes:
        raise _refuse(position, f"the image is larger than {_mb(max_bytes)}; send a smaller file")
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        raise _refuse(position, "the base64 data is truncated (its length is impossible)")
    try:
        return base64.urlsafe_b64decode(
            text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
        )
    except (binascii.Error, ValueError):
        raise _refuse(position, "the base64 data is malformed") from None


def _decode_data_uri(ref: str, position: int, max_bytes: int) -> bytes:
    m = _DATA_URI.match(ref)
    if not m:
        raise _refuse(position, "the data URI is malformed; use data:image/png;base64,<data>")
    mime, params, payload = m.group(1).strip().lower(), m.group(2).lower(), m.group(3)
    if mime not in _DATA_MIMES:
        raise _refuse(
            position,
            f"data URI type {mime or '(none)'!r} is not supported; use image/jpeg, image/png, "
            "image/bmp or image/webp",
        )
    if "base64" not in [p.strip() for p in params.split(";")]:
        raise _refuse(position, "the data URI must be base64-encoded (data:image/png;base64,...)")
    return _decode_base64(payload, position, max_bytes)


# ---------------------------------------------------------------------------------------------
# Fetching


class ImageFetcher:
    """Turns the request's image references into checked `InputImage`s.

    `resolve_upload(key)` returns the bytes of an `oss://key` upload or None; `address_allowed`
    replaces the default public-address policy (tests); `allow_private_urls` allows every address.
    """

    def __init__(
        self,
        settings: Settings,
        resolve_upload: Callable[[str], bytes | None] | None = None,
        address_allowed: AddressPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._resolve_upload = resolve_upload
        if settings.allow_private_urls:
            self._policy: AddressPolicy = allow_all
        else:
            self._policy = address_allowed or is_public_address

    async def fetch_all(self, refs: list[str]) -> list[InputImage]:
        """Fetch concurrently, keep the order. On a failure the others are cancelled and the
        lowest-numbered failure is raised."""
        tasks = [asyncio.create_task(self.fetch(ref, k)) for k, ref in enumerate(refs, start=1)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException as exc:
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            errors = [r for r in results if isinstance(r, ApiError)]
            if errors and isinstance(exc, Exception):
                raise errors[0] from None
            raise

    async def fetch(self, ref: str, position: int) -> InputImage:
        data = await self.load_bytes(ref, position)
        return await asyncio.to_thread(
            decode_image, data, position, max_bytes=self._settings.max_image_bytes
        )

    async def load_bytes(self, ref: str, position: int) -> bytes:
        """The encoded bytes behind a reference, size-capped but not yet checked as an image."""
        if not isinstance(ref, str):
            raise _refuse(position, f"the image must be a string: {ACCEPTED_FORMS}")
        ref = ref.strip()
        cap = self._settings.max_image_bytes
        m = _SCHEME.match(ref)
        if m is None:
            return _decode_base64(ref, position, cap)
        scheme = m.group(1).lower()
        if scheme in ("http", "https"):
            return await self._fetch_url(ref, position)
        if scheme == "data":
            return _decode_data_uri(ref, position, cap)
        if scheme == "oss":
            return self._load_upload(ref, position)
        raise _refuse(position, f"{scheme}:// references are not supported; send {ACCEPTED_FORMS}")

    def _load_upload(self, ref: str, position: int) -> bytes:
        key = ref[len("oss://") :] if ref.lower().startswith("oss://") else ""
        if not key:
            raise _refuse(position, "the oss:// reference has no key; upload the image again")
        data = self._resolve_upload(key) if self._resolve_upload is not None else None
        if data is None:
            raise _refuse(position, f"upload {ref} not found; upload it again")
        return data

    # -- URLs --------------------------------------------------------------------------------

    async def _fetch_url(self, url: str, position: int) -> bytes:
        timeout = self._settings.fetch_timeout_seconds
        hint = "or send the image as base64"
        try:
            async with asyncio.timeout(timeout):
                async with httpx.AsyncClient(
                    transport=guarded_transport(self._policy),
                    timeout=httpx.Timeout(timeout),
                    follow_redirects=False,
                    trust_env=False,
                    headers={"User-Agent": "wanimage", "Accept-Encoding": "identity"},
                ) as client:
                    return await self._get(client, url, position)
        except BlockedAddressError as exc:
            raise _refuse(
                position,
                f"URL resolves to a private or loopback address ({exc.address}), which this "
                f"server does not fetch; use a public URL {hint}",
            ) from None
        except (TimeoutError, httpx.TimeoutException):
            raise _refuse(
                position,
                f"fetching the URL timed out after {timeout:g} s; use a faster host {hint}",
            ) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise _refuse(position, f"the URL is invalid ({exc}); check it {hint}") from None
        except httpx.ConnectError as exc:
            raise _refuse(
                position, f"could not connect to the URL's host ({exc}); check the URL {hint}"
            ) from None
        except (httpx.HTTPError, OSError) as exc:
            raise _refuse(
                position,
                f"fetching the URL failed ({type(exc).__name__}: {exc}); check the URL {hint}",
            ) from None

    async def _get(self, client: httpx.AsyncClient, url: str, position: int) -> bytes:
        """GET with redirects followed here (each hop connects through the guard)."""
        current = httpx.URL(url)
        for _hop in range(MAX_REDIRECTS + 1):
            if not current.host:
                raise _refuse(position, f"the URL {current} has no host")
            async with client.stream("GET", current) as response:
                if response.is_redirect:
                    target = response.url.join(response.headers["location"])
                    if target.scheme not in ("http", "https"):
                        raise _refuse(
                            position,
                            f"the URL redirects to an unsupported scheme {target.scheme!r}; "
                            "use an http(s) URL that serves the image directly",
                        )
                    current = target
                    continue
                if not response.is_success:
                    raise _refuse(
                        position,
                        f"fetching the URL returned HTTP {response.status_code}; check that the "
                        "URL is public and correct, or send the image as base64",
                    )
                return await self._read_capped(response, position)
        raise _refuse(
            position,
            f"the URL redirected more than {MAX_REDIRECTS} times; use the image's final URL",
        )

    async def _read_capped(self, response: httpx.Response, position: int) -> bytes:
        cap = self._settings.max_image_bytes
        too_large = _refuse(position, f"the image is larger than {_mb(cap)}; send a smaller file")
        declared = response.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            raise too_large
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > cap:
                raise too_large  # leaving the stream closes the connection mid-body
        return bytes(body)
