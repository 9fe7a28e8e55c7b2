"""diffusers engines: open checkpoints on GPUs, one module per family (docs/diffusers.md).

Importing this package is cheap: its names below load their modules on first use (torch with
them, diffusers when a pipeline first loads), so `wanimage presets` and `wanimage pull` read
presets.py and models_dir.py without either. The modules import downward only: families ->
config -> parallel -> acceleration -> loader -> engine -> ranks -> build (the factories)."""

from __future__ import annotations

import importlib

__all__ = ["FAMILIES", "Family", "engines_from_configs", "load_engines"]

_WHERE = {"FAMILIES": ".families", "Family": ".base", "engines_from_configs": ".build", "load_engines": ".build"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
