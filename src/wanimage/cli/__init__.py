"""The `wanimage` command: one module per subcommand, each with `register(subparsers)` setting
`func(args) -> int`. Add a command by adding a module and naming it in COMMANDS."""

from __future__ import annotations

import argparse
import logging
import sys

from . import generate, models, presets, pull, serve, verify

COMMANDS = [serve, generate, models, presets, pull, verify]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wanimage", description="Self-hosted Wan 2.7 Image API server")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    try:  # the built-in model's data / train commands
        from ..model import commands as model_commands
    except ImportError:
        model_commands = None
    if model_commands is not None and hasattr(model_commands, "register"):
        model_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "debug":  # httpx logs every request at INFO: through `generate --server`'s
        logging.getLogger("httpx").setLevel(logging.WARNING)  # progress bar, and a remote engine's log
    try:
        return args.func(args)
    except ValidationError as exc:  # a setting from the environment or the command line: one line each
        if exc.title != "Settings":
            raise
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            print(f"error: setting {name} (WANIMAGE_{name.upper()}): {error['msg']} (got {error['input']!r})",
                  file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
