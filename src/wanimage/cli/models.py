"""`wanimage models`: each API model id, its engine and what it supports."""

from __future__ import annotations

import argparse
import json

from .. import units
from .common import settings_from


def cmd_models(args: argparse.Namespace) -> int:
    from ..engines.factories import build_registry

    settings = settings_from(args)
    if getattr(args, "preset", None):
        settings = settings.model_copy(update={"preset": args.preset})
    registry = build_registry(settings)
    registry.preload(heavy=args.load)  # the built-in model is described from its files unless --load
    for ids, row in _grouped(registry.describe()):
        if len(ids) > 1:  # ids served by one engine alike: named once, then described once
            print(", ".join(ids[:-1]) + ",")
        if row["error"]:
            print(f"{ids[-1]:18s} unavailable: {row['error']}")
        else:
            print(f"{ids[-1]:18s} engine={row['engine']} modes={','.join(row['modes'])}")
        if "backend" in (row.get("details") or {}):  # a remote engine: ask its server now
            print(f"{'':18s}   backend: {_reachability(registry.get(row['model']).probe())}")
        summary = row.get("summary") or {}
        if summary.get("engine"):
            print(f"{'':18s}   {_state(summary)}")
        for c in summary.get("checkpoints", []):
            print(f"{'':18s}   {', '.join(c['roles'])}: {c['source']} ({_disk(c['on_disk'], c['disk_bytes'])})")
        for role in (row.get("details") or {}).get("roles", []):
            state = f"resident, {human(role['bytes'])}" if role["loaded"] else "not resident"
            print(f"{'':18s}   {role['role']}: {role['pipeline']} ({state})")
        if summary.get("engine") == "builtin":
            print(f"{'':18s}   real images: `wanimage presets`, then `wanimage pull sd-turbo` (docs/diffusers.md)")
    return 0


def _grouped(rows: list[dict]) -> list[tuple[list[str], dict]]:
    """Rows that differ only in their model id, as one: the built-in model serves all twelve."""
    groups: dict[str, tuple[list[str], dict]] = {}
    for row in rows:
        key = json.dumps({k: v for k, v in row.items() if k != "model"}, sort_keys=True, default=str)
        groups.setdefault(key, ([], row))[0].append(row["model"])
    return list(groups.values())


def human(n: int | None) -> str:
    return units.human(n or 0)


def _state(s: dict) -> str:
    """One line: what serves it, where, and what is resident."""
    if s["memory_bytes"] is None:  # a remote engine: its weights live on its backend
        resident = "weights on the backend"
    else:
        resident = f"resident, {human(s['memory_bytes'])}" if s["resident"] else "not resident (loads on first use)"
    preset = f"preset={s['preset']} " if s.get("preset") else ""
    dtype = f"; dtype={s['dtype']}" if s.get("dtype") else ""  # "auto" resolved: what it computes in
    return f"{preset}{s['label']}; device={s['device']}{dtype}; {resident}"


def _disk(on_disk: bool | None, size: int | None) -> str:
    if on_disk is None:
        return "Hub id: from_pretrained's cache"
    return f"on disk, {human(size)}" if on_disk else f"NOT on disk ({human(size)} there)"


def _reachability(d: dict) -> str:
    model = f" (model {d['backend_model']})" if d.get("backend_model") else ""
    if d["reachable"]:
        return f"{d['backend']}{model} reachable, answered in {d['latency_ms']:.0f} ms"
    return f"{d['backend']}{model} NOT reachable: {d['error']}"


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="list the models, what serves them, what is on disk and resident")
    models.add_argument("--preset", help="as `serve --preset`: the preset's models (default: WANIMAGE_PRESET)")
    models.add_argument("--data-dir", help="data directory (pulled weights in DATA_DIR/models)")
    models.add_argument("--load", action="store_true",
                        help="load every engine to report what is resident (default: the built-in model "
                             "is described from its files, which takes a second instead of several)")
    models.set_defaults(func=cmd_models)
