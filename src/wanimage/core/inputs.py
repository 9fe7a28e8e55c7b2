"""Input images: fetch or decode each `image` reference of a request and check it against the API's
rules (api-spec §1.3), so engines only ever see valid RGB images.

Accepted references: `http://` / `https://` URLs (fetched through `netguard`, so never from
loopback or private networks unless `allow_private_urls`), `data:image/{jpeg,jpg,png,bmp,webp};base64,`
URIs, bare base64, and `oss://KEY` uploads resolved by the injected `resolve_upload`. Anything
else (`file://`, `ftp://`, ...) is refused.

Rules, checked in this order so that a hostile file costs nothing: encoded size <= 20 MB
(`max_image_bytes`; for URLs while streaming), format JPEG / PNG / BMP / WEBP sniffed from the
bytes (the URL, the Content-Type and the data URI's mime are not trusted), each side in
[240, 8000] px and aspect ratio <= 8 read from the header before any pixel is decoded, the sum of
the request's input pixels within `max_request_pixels`, then one image at a time a decode
downscaled to `input_max_pixels` within the process's decode budget (core/decoding.py), so a
decompression bomb is refused without allocating and nine 8000x8000 inputs cost one at a time.

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
import re
from collections.abc import Callable

import httpx

from wanimage.config import Settings
from wanimage.core.decoding import (
    BYTES_PER_PIXEL,
    DecodeBudget,
    InputImage,
    decode_image,
    open_header,
    release_after_decoding,
    tune_allocator,
)
from wanimage.core.decoding import mb as _mb
from wanimage.core.decoding import refuse as _refuse
from wanimage.core.netguard import (
    AddressPolicy,
    BlockedAddressError,
    allow_all,
    guarded_transport,
    is_public_address,
)
from wanimage.errors import ApiError, InvalidParameter

__all__ = ["ImageFetcher", "InputImage", "decode_image"]

MAX_REDIRECTS = 5
ACCEPTED_FORMS = (
    "an http(s) URL, a data:image/{jpeg,jpg,png,bmp,webp};base64,... URI, "
    "bare base64 or an oss:// upload"
)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_DATA_URI = re.compile(r"^data:([^,;]*)((?:;[^,;]*)*),(.*)$", re.DOTALL)
_DATA_MIMES = {"image/jpeg", "image/jpg", "image/png", "image/bmp", "image/webp"}
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/\-_]*={0,2}$")
_WHITESPACE = re.compile(r"\s+")


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
        self._budget = DecodeBudget(settings.decode_budget_bytes)  # shared by every request
        tune_allocator()  # freed pixel memory goes back to the OS (core/decoding.py)
        if settings.allow_private_urls:
            self._policy: AddressPolicy = allow_all
        else:
            self._policy = address_allowed or is_public_address

    async def fetch_all(self, refs: list[str]) -> list[InputImage]:
        """Fetch concurrently, then check the request's pixel sum and decode one image at a time
        (a thread), keeping the order. On a fetch failure the others are cancelled and the
        lowest-numbered failure is raised."""
        tasks = [asyncio.create_task(self.load_bytes(ref, k)) for k, ref in enumerate(refs, start=1)]
        try:
            blobs = list(await asyncio.gather(*tasks))
        except BaseException as exc:
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            errors = [r for r in results if isinstance(r, ApiError)]
            if errors and isinstance(exc, Exception):
                raise errors[0] from None
            raise
        return await asyncio.to_thread(self.decode_all, blobs)

    async def fetch(self, ref: str, position: int) -> InputImage:
        data = await self.load_bytes(ref, position)
        return await asyncio.to_thread(self.decode, data, position)

    def decode(self, data: bytes, position: int) -> InputImage:
        return decode_image(data, position, max_bytes=self._settings.max_image_bytes,
                            max_pixels=self._settings.input_max_pixels, budget=self._budget)

    def decode_all(self, blobs: list[bytes]) -> list[InputImage]:
        """The pixel sum from the headers first (nothing decoded), then each image in turn."""
        total = 0
        for position, data in enumerate(blobs, start=1):
            if data and len(data) <= self._settings.max_image_bytes:
                with open_header(data, position) as img:
                    total += img.width * img.height
        limit = self._settings.max_request_pixels
        if total > limit:
            raise InvalidParameter(
                f"image: the request's images hold {total:,} pixels in all, more than this server takes "
                f"in one request ({limit:,}, WANIMAGE_MAX_REQUEST_PIXELS); send fewer or smaller images",
                field="image",
            )
        try:
            return [self.decode(data, position) for position, data in enumerate(blobs, start=1)]
        finally:
            release_after_decoding(total * BYTES_PER_PIXEL)  # many medium images add up

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
