"""The wire to one OpenAI-compatible images server: its two endpoints through the openai SDK
(the client every such server is tested against), answers decoded to PIL images, failures turned
into the task's errors, and a reachability probe for /health and `wanimage models`.

Calls run on one event loop thread per backend, so an engine thread can wait on a call and still
see a cancel: cancelling the call's future cancels its task, which closes the HTTP request (a
wanimage backend then cancels its own task; others stop sending). `url` answers are fetched only
from the backend's own host or the hosts its config names, without following redirects: the
address allow-list of this one backend; `b64_json` (the default) needs no fetch at all."""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from PIL import Image, UnidentifiedImageError

from ...errors import ApiError, InternalError, ModelUnavailable
from .config import RemoteConfig

log = logging.getLogger(__name__)
MAX_ANSWER_BYTES = 128 * 1024 * 1024
PROBE_TIMEOUT = 3.0
PartialFn = Callable[[int, Image.Image], None]  # (index of the partial image, the image)


class BackendDown(Exception):
    """The backend could not be reached or answered 5xx: worth another attempt."""


@dataclass
class Health:
    reachable: bool | None = None  # None: not checked yet
    checked_at: float | None = None  # time.time()
    error: str | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class Call:
    """One request to the backend. `images` non-empty means /images/edits."""

    prompt: str
    n: int
    size: tuple[int, int]
    seed: int
    images: tuple[Image.Image, ...] = ()
    mask: Image.Image | None = None
    negative_prompt: str | None = None  # sent only to backends that take one

    @property
    def endpoint(self) -> str:
        return "edits" if self.images else "generations"


def _png(image: Image.Image, name: str) -> tuple[str, bytes, str]:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return (name, buf.getvalue(), "image/png")


def _decode(data: bytes, label: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InternalError(f"the backend {label} answered something that is not an image ({exc})",
                            code="InternalError.Algo") from None
    return image.convert("RGB")


class Backend:
    """One backend: its SDK client, its event loop thread, its health."""

    def __init__(self, cfg: RemoteConfig, *, probe_forever: bool = True) -> None:
        self.cfg = cfg
        self.health = Health()
        self._loop = asyncio.new_event_loop()
        self._client = None  # AsyncOpenAI, built on the loop at first use
        self._stop = threading.Event()
        threading.Thread(target=self._loop.run_forever, name=f"remote-{cfg.host}", daemon=True).start()
        if probe_forever:
            threading.Thread(target=self._probe_forever, name=f"remote-probe-{cfg.host}", daemon=True).start()

    # ------------------------------------------------------------------ calls

    def submit(self, call: Call, on_partial: PartialFn | None) -> concurrent.futures.Future:
        """Start a call on the backend's loop; the future gives the images or raises."""
        return self.run(self._call(call, on_partial))

    def run(self, coro: Coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def client(self):
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(base_url=self.cfg.base_url, api_key=self.cfg.api_key or "none",
                                       timeout=self.cfg.timeout_seconds, max_retries=0)
        return self._client

    async def _call(self, call: Call, on_partial: PartialFn | None) -> list[Image.Image]:
        import openai

        started = time.monotonic()
        try:
            images = await self._request(call, on_partial)
        except openai.APITimeoutError:
            self._mark(False, "timed out")
            raise self.timeout_error() from None
        except openai.APIConnectionError as exc:
            self._mark(False, f"unreachable ({exc.__cause__ or exc})")
            raise BackendDown(f"unreachable: {exc.__cause__ or exc}") from None
        except openai.APIStatusError as exc:
            detail = f"HTTP {exc.status_code}: {_message(exc)}"
            if exc.status_code >= 500:
                self._mark(True, detail)
                raise BackendDown(detail) from None
            raise InternalError(f"the backend {self.cfg.label} refused the {call.endpoint} call ({detail}); "
                                "check the remote engine's config (docs/remote.md)", code="InternalError.Algo") from None
        except openai.APIError as exc:  # e.g. an `error` event in a stream
            raise BackendDown(f"error: {exc}") from None
        self._mark(True, None, (time.monotonic() - started) * 1000)
        return images

    def timeout_error(self) -> ApiError:
        return InternalError(f"the backend {self.cfg.label} did not answer within {self.cfg.timeout_seconds:g} s",
                             code="InternalError.Timeout")

    def unavailable(self, model: str, detail: str, attempts: int) -> ModelUnavailable:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return ModelUnavailable(f"model: {model} is served by the backend {self.cfg.label}, which is unavailable"
                                f"{tries}: {detail}", field="model")

    async def _request(self, call: Call, on_partial: PartialFn | None) -> list[Image.Image]:
        cfg, images = self.cfg, self.client().images
        prompt, extra = call.prompt, dict(cfg.extra_body)
        if call.negative_prompt:
            extra["negative_prompt"] = call.negative_prompt
        if cfg.seed == "body":
            extra["seed"] = call.seed
        elif cfg.seed == "sd_cpp":  # stable-diffusion.cpp's server reads parameters from the prompt
            prompt = f"{prompt}<sd_cpp_extra_args>{json.dumps({'seed': call.seed})}</sd_cpp_extra_args>"
        kwargs: dict[str, Any] = {"prompt": prompt, "n": call.n, "size": f"{call.size[0]}x{call.size[1]}",
                                  "extra_body": extra}
        if cfg.model:
            kwargs["model"] = cfg.model
        stream = cfg.stream and on_partial is not None
        if stream:
            kwargs.update(stream=True, partial_images=cfg.partial_images)
        else:
            kwargs["response_format"] = cfg.response_format
        if call.images:
            files = [_png(im, f"image{i + 1}.png") for i, im in enumerate(call.images)]
            kwargs["image"] = files if len(files) > 1 else files[0]
            if call.mask is not None:
                kwargs["mask"] = _png(call.mask, "mask.png")
            answer = await images.edit(**kwargs)
        else:
            answer = await images.generate(**kwargs)
        if stream:
            return await self._read_stream(answer, on_partial)
        return [await self._image_of(item) for item in (answer.data or [])]

    async def _read_stream(self, events, on_partial: PartialFn) -> list[Image.Image]:
        out = []
        async for event in events:
            kind = getattr(event, "type", "") or ""
            b64 = getattr(event, "b64_json", None)
            if not b64:
                continue
            image = _decode(_b64(b64, self.cfg.label), self.cfg.label)
            if kind.endswith("partial_image"):
                on_partial(int(getattr(event, "partial_image_index", 0) or 0), image)
            elif kind.endswith("completed"):
                out.append(image)
        return out

    async def _image_of(self, item) -> Image.Image:
        if getattr(item, "b64_json", None):
            return _decode(_b64(item.b64_json, self.cfg.label), self.cfg.label)
        if getattr(item, "url", None):
            return _decode(await self._fetch(item.url), self.cfg.label)
        raise InternalError(f"the backend {self.cfg.label} answered an image with neither b64_json nor url",
                            code="InternalError.Algo")

    async def _fetch(self, url: str) -> bytes:
        """A `url` answer, from the backend's own host (or one its config names) only; relative
        URLs (SGLang answers /v1/images/ID/content) are resolved against base_url."""
        absolute = urljoin(self.cfg.base_url + "/", url)
        parts = urlsplit(absolute)
        allowed = {self.cfg.host, *self.cfg.url_hosts}
        if parts.scheme not in ("http", "https") or parts.hostname not in allowed:
            raise InternalError(f"the backend {self.cfg.label} answered a url on {parts.hostname!r}, which is not "
                                "its own host: add it to url_hosts or set response_format = \"b64_json\"",
                                code="InternalError.Algo")
        headers = {"Authorization": f"Bearer {self.cfg.api_key}"} if self.cfg.api_key else {}
        async with httpx.AsyncClient(timeout=self.cfg.timeout_seconds, follow_redirects=False,
                                     trust_env=False) as http:
            try:
                async with http.stream("GET", absolute, headers=headers) as rsp:
                    if rsp.status_code != 200:
                        raise BackendDown(f"fetching its image answered HTTP {rsp.status_code}")
                    body = bytearray()
                    async for chunk in rsp.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_ANSWER_BYTES:
                            raise InternalError(f"the backend {self.cfg.label} answered an image over "
                                                f"{MAX_ANSWER_BYTES >> 20} MiB", code="InternalError.Algo")
                    return bytes(body)
            except httpx.TimeoutException:
                raise self.timeout_error() from None
            except httpx.HTTPError as exc:
                raise BackendDown(f"fetching its image failed: {exc}") from None

    # ------------------------------------------------------------------ health

    def _mark(self, reachable: bool, error: str | None, latency_ms: float | None = None) -> None:
        self.health = Health(reachable, time.time(), error, latency_ms if reachable else None)

    def probe(self) -> Health:
        """GET {base_url}/models now: any HTTP answer means the server is up (SGLang serves its
        model list elsewhere and answers 404 here); a refused or silent connection means down."""
        headers = {"Authorization": f"Bearer {self.cfg.api_key}"} if self.cfg.api_key else {}
        started = time.monotonic()
        timeouts = {"connect": PROBE_TIMEOUT, "read": PROBE_TIMEOUT, "write": PROBE_TIMEOUT, "pool": PROBE_TIMEOUT}
        try:  # httpcore, not httpx: a probe every few seconds must not write an INFO line each time
            rsp = httpcore.request("GET", self.cfg.base_url + "/models", headers=headers,
                                   extensions={"timeout": timeouts})
        except httpcore.TimeoutException:
            self._mark(False, f"no answer within {PROBE_TIMEOUT:g} s")
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            self._mark(False, f"unreachable ({type(exc).__name__}: {exc})")
        else:
            error = f"HTTP {rsp.status}" if rsp.status >= 500 else None
            self._mark(rsp.status < 500, error, (time.monotonic() - started) * 1000)
        return self.health

    def _probe_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.probe()
            except Exception:  # a probe must never take the server down
                log.exception("probing %s failed", self.cfg.label)
            self._stop.wait(self.cfg.health_interval_seconds)

    def close(self) -> None:
        self._stop.set()
        self._loop.call_soon_threadsafe(self._loop.stop)


def _b64(data: str, label: str) -> bytes:
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raise InternalError(f"the backend {label} answered b64_json that is not base64",
                            code="InternalError.Algo") from None


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:300]
        return str(err)[:300]
    return str(exc)[:300]
