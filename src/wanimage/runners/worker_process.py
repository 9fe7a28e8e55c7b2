"""`wanimage worker`: the server's workers in a process of their own, without the HTTP API. They
share the task store and the data directory with the API processes, so a task submitted to any
of them is run by whichever worker claims it first."""

from __future__ import annotations

import asyncio
import logging
import signal

from ..config import Settings
from ..core.service import ImageService
from ..engines.registry import EngineRegistry

log = logging.getLogger(__name__)


async def run_worker_process(settings: Settings, engines: EngineRegistry) -> None:
    """`wanimage worker`: the same workers without the HTTP API, sharing the task store and data
    directory with the API processes. Runs until SIGTERM or SIGINT."""
    engines.preload()
    service = ImageService.from_settings(settings, engines)
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker process ready: %d workers on %s", len(service.workers), settings.resolved_database_url())
    await stop.wait()
    await service.stop()
