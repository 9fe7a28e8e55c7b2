"""wanimage serve | generate | models (and data | train for the built-in model)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys
from pathlib import Path

from .config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key, value in {
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "data_dir": getattr(args, "data_dir", None),
            "workers": getattr(args, "workers", None),
            "api_keys": getattr(args, "api_keys", None),
            "api_keys_file": getattr(args, "api_keys_file", None),
            "database_url": getattr(args, "database_url", None),
            "allow_insecure_bind": getattr(args, "insecure", None) or None,
        }.items()
        if value is not None
    }
    return Settings(**overrides)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .engines.catalog import build_registry

    settings = _settings(args)
    if not settings.keys() and not _is_loopback(settings.host) and not settings.allow_insecure_bind:
        print(
            f"refusing to listen on {settings.host} without API keys: anyone on the network could use it.\n"
            "Set WANIMAGE_API_KEYS (or --api-keys / --api-keys-file), or pass --insecure.",
            file=sys.stderr,
        )
        return 2
    if args.ray:
        from .runners.ray_serve import serve_on_ray

        serve_on_ray(settings, args.ray)
        return 0
    registry = build_registry(settings)
    status = registry.preload()
    for model, error in status.items():
        print(f"  {model}: {'ready' if error is None else error}", file=sys.stderr)
    app = create_app(settings, registry)
    print(f"wanimage listening on http://{settings.host}:{settings.port}  (docs at /docs)", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .core.service import run_worker_process
    from .engines.catalog import build_registry

    settings = _settings(args)
    asyncio.run(run_worker_process(settings, build_registry(settings)))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .engines.catalog import build_registry

    registry = build_registry(_settings(args))
    registry.preload()
    for row in registry.describe():
        if row["error"]:
            print(f"{row['model']:18s} unavailable: {row['error']}")
        else:
            print(f"{row['model']:18s} engine={row['engine']} modes={','.join(row['modes'])}")
        for role in (row.get("details") or {}).get("roles", []):
            state = f"loaded, {role['bytes'] / 2**20:.0f} MiB" if role["loaded"] else "not loaded"
            print(f"{'':18s}   {role['role']}: {role['checkpoint']} ({role['pipeline']}, {state})")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate_to_dir

    try:
        paths = asyncio.run(generate_to_dir(args, _settings(args)))
    except Exception as exc:  # ApiError and friends: one clear line, no trace
        message = getattr(exc, "message", None) or str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wanimage", description="Self-hosted Wan 2.7 Image API server")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True)

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
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run generation workers without the HTTP API (same data dir / database)")
    worker.add_argument("--data-dir", type=Path, help="the data directory the API server uses")
    worker.add_argument("--workers", type=int, help="worker threads (default 1)")
    worker.add_argument("--database-url", help="the task database the API server uses")
    worker.set_defaults(func=cmd_worker)

    gen = sub.add_parser("generate", help="generate images in-process, without a server")
    gen.add_argument("prompt")
    gen.add_argument("--model", default="wan2.7-image")
    gen.add_argument("--image", action="append", default=[], help="input image: path, URL or data URI (repeat)")
    gen.add_argument("--bbox", action="append", default=[],
                     help="box for an input image as K:x1,y1,x2,y2 (K = 1-based image number; repeat)")
    gen.add_argument("-n", "--n", type=int)
    gen.add_argument("--size", help="1K, 2K, 4K or W*H")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--sequential", action="store_true", help="make a coherent image set")
    gen.add_argument("--no-thinking", action="store_true")
    gen.add_argument("--watermark", action="store_true")
    gen.add_argument("--palette", help='JSON list of {"hex": "#RRGGBB", "ratio": "NN.NN%%"}')
    gen.add_argument("-o", "--output", type=Path, default=Path("."), help="output directory")
    gen.set_defaults(func=cmd_generate)

    models = sub.add_parser("models", help="list the models and what they support")
    models.set_defaults(func=cmd_models)

    try:
        from .model import commands as model_commands
    except ImportError:
        model_commands = None
    if model_commands is not None and hasattr(model_commands, "register"):
        model_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
