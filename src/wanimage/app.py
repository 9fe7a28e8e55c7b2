"""create_app(settings): routers, exception handlers, middleware and lifespan wiring."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from . import __version__
from .api import files, system, verify
from .api.dashscope import router as dashscope_router
from .api.dashscope import uploads
from .api.errors import document_errors, install_error_handlers
from .api.middleware import KeyGate, RequestContextMiddleware
from .api.openai import router as openai_router
from .config import Settings
from .core.service import ImageService
from .engines.registry import EngineRegistry
from .metrics import Metrics
from .prompts import warm as warm_chinese
from .storage.local import load_or_create_secret
from .web.router import web_router

log = logging.getLogger(__name__)


def create_app(settings: Settings, engines: EngineRegistry, *, start_workers: bool = True) -> FastAPI:
    service = ImageService.from_settings(settings, engines)
    metrics = Metrics()
    service.on_phase = metrics.observe_phase
    service.on_images = metrics.count_images
    metrics.bind(
        queue_depth=service.queue_depth,
        running=service.running_count,
        images=lambda: service.images_made,
        workers=service.worker_count,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # jieba's dictionary takes about a second to load: in the background, so that neither the
        # start-up nor the first Chinese prompt waits for it (a prompt that comes sooner waits on its
        # lock), where an engine reads every prompt's words; elsewhere (a diffusers preset) only
        # thinking mode and edits in Chinese read them, and their first one loads it: 134 MB resident
        # a CPU preset's server does not hold for nothing (docs/diffusers.md, memory)
        if engines.reads_chinese_words:
            threading.Thread(target=warm_chinese, name="warm-chinese", daemon=True).start()
        for model, error in (await asyncio.to_thread(engines.preload)).items():
            if error:
                log.error("%s", error)
                log.error("requests for %s will answer ModelUnavailable until this is fixed", model)
        await service.start(workers=settings.workers if start_workers else 0)
        yield
        await service.stop()
        engines.close()

    # Swagger UI and ReDoc from the package's own files (fastapi-offline): /docs works offline
    app = FastAPIOffline(
        static_url="/docs/assets",
        favicon_url="/favicon.ico",
        title="wanimage",
        version=__version__,
        description="Self-hosted Wan 2.7 Image API: DashScope and OpenAI dialects.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = metrics
    app.state.api_keys = settings.keys()
    app.state.admin_keys = settings.admin_keys()
    app.state.upload_secret = hashlib.sha256(b"uploads\0" + load_or_create_secret(settings.data_dir / "secret.key")).digest()
    install_error_handlers(app)
    _document_real_statuses(app)
    app.add_middleware(KeyGate, keys=app.state.api_keys, metrics_allow=settings.metrics_allow,
                       metrics_token=settings.metrics_token.get_secret_value())
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    app.include_router(dashscope_router.router)
    app.include_router(uploads.router)
    app.include_router(openai_router.router)
    app.include_router(system.router)
    app.include_router(verify.router)  # POST /api/v1/verify, a wanimage extension
    if service.files.serves_files:  # an S3 store serves its own presigned URLs
        app.include_router(files.router)
    app.include_router(web_router())
    return app


def _document_real_statuses(app: FastAPI) -> None:
    """/openapi.json lists the statuses the server sends (api/errors.py), not FastAPI's 422."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
