"""A tiny OpenAI-compatible images server on loopback, for the remote engine's tests: a real
HTTP server (FastAPI + uvicorn) that behaves like the simplest backends do. It answers ONE image
per call whatever `n` asks (as SGLang's server did), paints every pixel of it one colour derived
from the prompt and seed, records each request, and can be made slow or failing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.datastructures import UploadFile

from .server import free_port


def color_of(prompt: str, seed: int) -> tuple[int, int, int]:
    d = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
    return d[0], d[1], d[2]


def _png_b64(size: str, color: tuple[int, int, int]) -> str:
    w, h = (int(v) for v in size.lower().split("x"))
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@dataclass
class Recorded:
    endpoint: str
    prompt: str
    n: int
    size: str
    seed: int | None
    images: list[tuple[int, int]] = field(default_factory=list)  # sizes of the uploaded images
    mask: tuple[int, int] | None = None
    negative_prompt: str | None = None


class ImagesBackend:
    def __init__(self) -> None:
        self.calls: list[Recorded] = []
        self.delay = 0.0  # seconds before answering
        self.fail_status: int | None = None  # answer this status instead (e.g. 503)
        self.in_flight = 0
        self.disconnects = 0  # requests whose client hung up before the answer
        self.url_answers: str | None = None  # "relative": a /v1/images/ID/content url (SGLang's); "foreign"
        self._stored: dict[str, bytes] = {}
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.app = self._build()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ImagesBackend:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/images/{image_id}/content")
        async def content(image_id: str):
            return Response(self._stored[image_id], media_type="image/png")

        @app.get("/v1/models")
        async def models():
            return {"object": "list", "data": [{"id": "tiny", "object": "model"}]}

        @app.post("/v1/images/generations")
        async def generations(request: Request):
            body = await request.json()
            rec = Recorded("generations", body["prompt"], int(body.get("n") or 1), body.get("size", "1024x1024"),
                           body.get("seed"), negative_prompt=body.get("negative_prompt"))
            return await self._answer(rec, request)

        @app.post("/v1/images/edits")
        async def edits(request: Request):
            form = await request.form()
            images = [Image.open(io.BytesIO(await v.read())).size for k, v in form.multi_items()
                      if k in ("image", "image[]") and isinstance(v, UploadFile)]
            mask = form.get("mask")
            mask_size = Image.open(io.BytesIO(await mask.read())).size if isinstance(mask, UploadFile) else None
            seed = form.get("seed")
            rec = Recorded("edits", str(form["prompt"]), int(form.get("n") or 1), str(form.get("size", "1024x1024")),
                           int(seed) if seed is not None else None, images, mask_size)
            return await self._answer(rec, request)

        return app

    async def _answer(self, rec: Recorded, request: Request) -> JSONResponse:
        with self._lock:
            self.calls.append(rec)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            end = time.monotonic() + self.delay
            while time.monotonic() < end:  # a slow backend that notices when its client hangs up
                if await request.is_disconnected():
                    self.disconnects += 1
                    return JSONResponse({}, status_code=499)
                await asyncio.sleep(0.02)
            if self.fail_status:
                return JSONResponse({"error": {"message": "backend trouble", "type": "server_error"}},
                                    status_code=self.fail_status)
            b64 = _png_b64(rec.size, color_of(rec.prompt, rec.seed or 0))
            item = {"b64_json": b64}
            if self.url_answers:
                image_id = f"img{len(self._stored)}"
                self._stored[image_id] = base64.b64decode(b64)
                item = {"url": f"/v1/images/{image_id}/content" if self.url_answers == "relative"
                        else f"http://169.254.169.254/v1/images/{image_id}/content"}
            return JSONResponse({"created": int(time.time()), "data": [item]})
        finally:
            with self._lock:
                self.in_flight -= 1
