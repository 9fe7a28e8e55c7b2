"""Which engine serves the two model ids, from the settings. Adding an engine touches this file
and the engine's own package only."""

from __future__ import annotations

from ..config import Settings
from ..core.request import MODELS
from .base import Engine
from .registry import EngineFactory, EngineRegistry

NOT_INSTALLED = (
    "no model is installed: the built-in model's weights (src/wanimage/weights/builtin.safetensors) "
    "are missing from this installation"
)


def _builtin(settings: Settings):
    def load() -> Engine:
        try:
            from .builtin import load_builtin_engine
        except ImportError as exc:
            raise ImportError(f"{NOT_INSTALLED} ({exc})") from exc
        return load_builtin_engine(device=settings.device)

    return load


def engine_factories(settings: Settings) -> dict[str, EngineFactory]:
    """Model id -> factory. Ids that share one factory object share one engine instance (and,
    on Ray, one deployment)."""
    if settings.engine != "builtin":
        raise SystemExit(f"unknown engine {settings.engine!r}; this version serves: builtin")
    factory = _builtin(settings)  # one engine instance serves both model ids
    return {model: factory for model in MODELS}


def build_registry(settings: Settings) -> EngineRegistry:
    return EngineRegistry(engine_factories(settings))
