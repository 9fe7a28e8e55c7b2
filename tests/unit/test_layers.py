"""The import direction of shared/DESIGN.md, read from the source: api -> core -> {tasks, engines,
thinking, storage} -> types; engines -> model; nothing imports api but the app; api and web reach
everything through the service (core); llm_chat.py (one chat call) sits beside types.py, shared by
thinking and the engines. Every import counts, also those inside functions, so a layer cannot be crossed quietly."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "wanimage"

# layer -> parts of wanimage it must never import
FORBIDDEN = {
    "types": {"api", "core", "tasks", "engines", "thinking", "storage", "model", "prompts", "runners", "app"},
    "prompts": {"api", "core", "tasks", "engines", "thinking", "storage", "model", "runners", "app"},
    "tasks": {"api", "core", "engines", "thinking", "storage", "model", "runners", "app"},
    "engines": {"api", "core", "tasks", "thinking", "storage", "runners", "app"},
    "thinking": {"api", "core", "tasks", "engines", "storage", "model", "runners", "app"},
    "storage": {"api", "core", "tasks", "engines", "thinking", "model", "runners", "app"},
    "model": {"api", "core", "tasks", "engines", "thinking", "storage", "runners", "app", "config"},
    "core": {"api", "runners", "app"},
    # a leaf every layer may use (the C library's memory calls)
    "memory": {"api", "core", "tasks", "engines", "thinking", "storage", "model", "prompts", "runners", "app"},
    "llm_chat": {"api", "core", "tasks", "engines", "thinking", "storage", "model", "prompts", "runners", "app"},
    "units": {"api", "core", "tasks", "engines", "thinking", "storage", "model", "prompts", "runners", "app"},
    # route handlers call the service, never a store, an engine or the queue
    "api": {"tasks", "storage", "engines", "thinking", "model", "runners", "app"},
    "web": {"api", "tasks", "storage", "engines", "thinking", "model", "runners", "app"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Absolute names of every wanimage module `path` imports."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
    return {n for n in names if n == "wanimage" or n.startswith("wanimage.")}


def layer(name: str) -> str:
    return name.split(".")[1] if name.count(".") else ""


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path):
    own = layer(module_name(path))
    crossed = sorted(n for n in imported(path) if layer(n) in FORBIDDEN.get(own, set()))
    assert not crossed, f"{module_name(path)} ({own}) must not import {crossed}"


def test_only_the_app_imports_the_api():
    importers = sorted(module_name(p) for p in SOURCES
                       if layer(module_name(p)) != "api" and any(layer(n) == "api" for n in imported(p)))
    assert importers == ["wanimage.app"]


def test_the_checker_sees_relative_and_local_imports(tmp_path):
    found = imported(PACKAGE / "runners" / "ray_serve.py")
    assert {"wanimage.core.progress", "wanimage.engines.factories", "wanimage.tasks.store"} <= found
