"""`wanimage models`: each API model id, its engine and what it supports."""

from __future__ import annotations

import argparse

from .common import settings_from


def cmd_models(args: argparse.Namespace) -> int:
    from ..engines.catalog import build_registry

    registry = build_registry(settings_from(args))
    registry.preload()
    for row in registry.describe():
        if row["error"]:
            print(f"{row['model']:18s} unavailable: {row['error']}")
        else:
            print(f"{row['model']:18s} engine={row['engine']} modes={','.join(row['modes'])}")
        if "backend" in (row.get("details") or {}):  # a remote engine: ask its server now
            print(f"{'':18s}   backend: {_reachability(registry.get(row['model']).probe())}")
        for role in (row.get("details") or {}).get("roles", []):
            state = f"loaded, {role['bytes'] / 2**20:.0f} MiB" if role["loaded"] else "not loaded"
            print(f"{'':18s}   {role['role']}: {role['checkpoint']} ({role['pipeline']}, {state})")
    return 0


def _reachability(d: dict) -> str:
    model = f" (model {d['backend_model']})" if d.get("backend_model") else ""
    if d["reachable"]:
        return f"{d['backend']}{model} reachable, answered in {d['latency_ms']:.0f} ms"
    return f"{d['backend']}{model} NOT reachable: {d['error']}"


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="list the models and what they support")
    models.set_defaults(func=cmd_models)
