"""Model id -> engine. Engines load lazily on first use and stay resident.

A model whose engine cannot be loaded (e.g. the built-in weights are not installed) stays listed
with the reason, and every request for it answers ModelUnavailable with that reason."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ModelUnavailable
from ..types import Capabilities
from .base import Engine, EngineFactory, as_factories
from .summary import summarize

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    factory: EngineFactory
    engine: Engine | None = None
    error: str | None = None


class EngineRegistry:
    def __init__(self, factories: dict[str, EngineFactory | Callable[[], Engine]]) -> None:
        self._entries = {model: _Entry(factory) for model, factory in as_factories(factories).items()}
        self._lock = threading.Lock()
        self._shared: dict[int, Engine] = {}  # one instance per factory object

    @property
    def models(self) -> list[str]:
        return list(self._entries)

    @property
    def reads_chinese_words(self) -> bool:
        """Whether an engine served here segments Chinese prompts itself (EngineFactory)."""
        return any(entry.factory.reads_chinese_words for entry in self._entries.values())

    def get(self, model: str) -> Engine:
        entry = self._entries.get(model)
        if entry is None:
            raise ModelUnavailable(f"model: no engine is configured for {model!r} on this server", field="model")
        with self._lock:
            if entry.engine is None and entry.error is None:
                self._load(entry)
        if entry.engine is None:
            raise ModelUnavailable(f"model: {model} is not available: {entry.error}", field="model")
        return entry.engine

    def _load(self, entry: _Entry) -> None:
        key = id(entry.factory)
        if key in self._shared:
            entry.engine = self._shared[key]
            return
        try:
            entry.engine = self._shared[key] = entry.factory()
        except (FileNotFoundError, ImportError, OSError) as exc:
            entry.error = str(exc)
            log.error("engine could not be loaded: %s", exc)

    def preload(self, *, heavy: bool = True) -> dict[str, str | None]:
        """Load every engine now; returns model -> error (None when loaded). `heavy=False` leaves
        out factories that say loading is slow and can describe their engine without it."""
        out = {}
        for model, entry in self._entries.items():
            if not heavy and entry.factory.heavy and entry.factory.describe_unloaded is not None:
                continue
            try:
                self.get(model)
                out[model] = None
            except ModelUnavailable as exc:
                out[model] = exc.message
        return out

    def close(self) -> None:
        """Release what loaded engines hold beyond memory (a remote engine's probe thread and
        event loop, a context-parallel model's ranks); called when the app shuts down."""
        closed: set[int] = set()
        for entry in self._entries.values():
            engine = entry.engine
            if engine is not None and id(engine) not in closed:
                closed.add(id(engine))
                engine.close()

    def capabilities(self, model: str) -> Capabilities:
        return self.get(model).capabilities

    def describe(self) -> list[dict]:
        rows = []
        for model, entry in self._entries.items():
            engine = entry.engine
            if engine is None and entry.error is None and entry.factory.describe_unloaded is not None:
                rows.append({"model": model, "loaded": False, "error": None, "details": None,
                             **entry.factory.describe_unloaded()})
                continue
            rows.append(
                {
                    "model": model,
                    "engine": engine.name if engine is not None else None,
                    "loaded": engine is not None,
                    "error": entry.error,
                    "modes": sorted(m.value for m in engine.capabilities.modes) if engine else None,
                    # engines that hold large weights say what is resident (diffusers: per role)
                    "details": (engine.describe() or None) if engine is not None else None,
                    # engine, preset, checkpoints, on disk, resident, device, memory (summary.py)
                    "summary": summarize(engine, entry.error),
                }
            )
        return rows
