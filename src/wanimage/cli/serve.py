"""`wanimage serve` (the HTTP API with its workers) and `wanimage worker` (workers only)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from .common import is_loopback, settings_from


def cmd_serve(args: argparse.Namespace) -> int:
    from ..app import create_app
    from ..engines.factories import build_registry

    settings = settings_from(args)
    if args.preset:  # serve a preset's pulled weights (docs/diffusers.md)
        settings = settings.model_copy(update={"preset": args.preset})
    if not settings.keys() and not is_loopback(settings.host) and not settings.allow_insecure_bind:
        print(
            f"refusing to listen on {settings.host} without API keys: anyone on the network could use it.\n"
            "Set WANIMAGE_API_KEYS (or --api-keys / --api-keys-file), or pass --insecure.",
            file=sys.stderr,
        )
        return 2
    if args.ray:
        from ..runners.ray_serve import serve_on_ray

        serve_on_ray(settings, args.ray)
        return 0
    problem = data_dir_problem(settings.data_dir)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    registry = build_registry(settings)
    status = registry.preload()
    for model, error in status.items():
        print(f"  {model}: {'ready' if error is None else error}", file=sys.stderr)
    app = create_app(settings, registry)
    print(f"wanimage listening on http://{settings.host}:{settings.port}  (docs at /docs)", file=sys.stderr)
    if run_until_stopped(uvicorn_config(app, settings, log_level=args.log_level)):
        print("wanimage: stopped", file=sys.stderr)
        return 130
    return 0


def run_until_stopped(config) -> bool:
    """Serve until uvicorn stops; True when Ctrl-C (SIGINT) stopped it. uvicorn raises the signal
    again after its graceful shutdown, but from inside the event loop's last step, where asyncio's
    runner can finish before its own SIGINT handler turns it into KeyboardInterrupt: under load
    the CLI then exited 0 instead of 130 (seen once in a full test run). So the server remembers."""
    import uvicorn

    class Server(uvicorn.Server):
        interrupted = False

        def handle_exit(self, sig, frame) -> None:
            self.interrupted = self.interrupted or sig == signal.SIGINT
            super().handle_exit(sig, frame)

    server = Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # the signal raised again, where asyncio's runner turned it into this
        pass
    return server.interrupted


def uvicorn_config(app, settings, *, log_level: str = "info"):
    """The server `wanimage serve` runs: uvicorn with a header-read timeout (slow-header clients
    are dropped after WANIMAGE_HEADER_TIMEOUT_SECONDS) and a short graceful shutdown."""
    import uvicorn

    from .http_protocol import protocol_with_header_timeout

    return uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level,
                          http=protocol_with_header_timeout(settings.header_timeout_seconds),
                          timeout_graceful_shutdown=5)


def data_dir_problem(data_dir: Path) -> str | None:
    """One line naming the data directory when this process cannot create or write it (read-only,
    no permission, full), so start-up fails with that line instead of a traceback."""
    import tempfile

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir) as probe:
            probe.write(b"wanimage")
            probe.flush()
        return None
    except OSError as exc:
        return (f"wanimage: cannot write to the data directory {data_dir.resolve()} ({exc.strerror or exc}); "
                "make it writable, free space on it, or choose another with --data-dir or WANIMAGE_DATA_DIR")


def cmd_worker(args: argparse.Namespace) -> int:
    from ..engines.factories import build_registry
    from ..runners.worker_process import run_worker_process

    settings = settings_from(args)
    problem = data_dir_problem(settings.data_dir)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    asyncio.run(run_worker_process(settings, build_registry(settings)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="start the HTTP server")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--data-dir", type=Path, help="tasks database, images and secrets (default ./data)")
    serve.add_argument("--workers", type=int, help="generation workers in this process (default 1)")
    serve.add_argument("--api-keys", help="comma-separated API keys clients must send as Bearer tokens")
    serve.add_argument("--api-keys-file", type=Path, help="file with one API key per line")
    serve.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://... (default SQLite)")
    serve.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without API keys")
    serve.add_argument("--ray", metavar="ADDRESS",
                       help="deploy on a Ray cluster (auto, or ray://HEAD:10001): engines as Serve deployments")
    serve.add_argument("--preset", help="serve both model ids from a preset's pulled weights, e.g. sd-turbo "
                       "(`wanimage presets` lists them; default: WANIMAGE_PRESET, else the built-in model)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run generation workers without the HTTP API (same data dir / database)")
    worker.add_argument("--data-dir", type=Path, help="the data directory the API server uses")
    worker.add_argument("--workers", type=int, help="worker threads (default 1)")
    worker.add_argument("--database-url", help="the task database the API server uses")
    worker.set_defaults(func=cmd_worker)
