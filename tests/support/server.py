"""Run a real wanimage server on loopback with the deterministic test engine: in a thread for
most tests, or as its own process (`python -m tests.support.server`) for crash tests."""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from wanimage.app import create_app
from wanimage.config import Settings
from wanimage.engines.registry import EngineRegistry
from wanimage.types import MODELS

from .test_engine import DeterministicEngine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_for(engine) -> EngineRegistry:
    factory = lambda: engine  # noqa: E731 - one engine serves both ids
    return EngineRegistry({model: factory for model in MODELS})


@dataclass
class RunningServer:
    base_url: str
    settings: Settings
    engine: DeterministicEngine
    app: object
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def api_base(self) -> str:
        return self.base_url + "/api/v1"

    @property
    def service(self):
        return self.app.state.service

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)


def wait_healthy(base_url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base_url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server at {base_url} did not become healthy")


def start_server(
    data_dir: Path, engine: DeterministicEngine | None = None, registry: EngineRegistry | None = None, **overrides
) -> RunningServer:
    engine = engine or DeterministicEngine()
    port = free_port()
    settings = Settings(data_dir=data_dir, port=port, **overrides)
    app = create_app(settings, registry or registry_for(engine))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    wait_healthy(base_url)
    return RunningServer(base_url, settings, engine, app, server, thread)



@contextmanager
def dashscope_pointed_at(running: RunningServer) -> Iterator[RunningServer]:
    """The dashscope SDK's global base URL on `running` for the block; the server stops after."""
    import dashscope

    previous = dashscope.base_http_api_url
    dashscope.base_http_api_url = running.api_base
    try:
        yield running
    finally:
        dashscope.base_http_api_url = previous
        running.stop()

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--step-seconds", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url")
    parser.add_argument("--worker-only", action="store_true", help="run `wanimage worker` with the test engine")
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir, port=args.port, workers=args.workers, database_url=args.database_url)
    engine = DeterministicEngine(
        steps=args.steps, step_seconds=args.step_seconds, log_path=os.environ.get("WANIMAGE_TEST_ENGINE_LOG")
    )
    if args.worker_only:
        import asyncio

        from wanimage.runners.worker_process import run_worker_process

        asyncio.run(run_worker_process(settings, registry_for(engine)))
        return
    uvicorn.run(create_app(settings, registry_for(engine)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
