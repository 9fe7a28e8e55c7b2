"""The remote engine: an OpenAI-compatible images server (SGLang Diffusion, vLLM-Omni, LocalAI,
stable-diffusion.cpp, another wanimage, ...) behind wanimage's API (docs/remote.md).

Model ids become remote by the WANIMAGE_REMOTE_* settings (both ids, one backend) or by a table
with `engine = "remote"` in the engine config file (per id). Models on the same base URL share one
backend: one connection pool, one max_concurrency bound, one health row."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from ...types import MODELS
from ..base import EngineFactory
from .client import Backend
from .config import RemoteConfig, RemoteConfigError, is_remote, parse_remote, read_tables
from .engine import RemoteEngine


def settings_config(url: str, model: str, api_key: str | None, timeout: float, concurrency: int,
                    health_interval: float) -> RemoteConfig:
    return parse_remote({"base_url": url, "model": model, **({"api_key": api_key} if api_key else {}),
                         "timeout_seconds": timeout, "max_concurrency": concurrency,
                         "health_interval_seconds": health_interval}, "WANIMAGE_REMOTE_URL")


def remote_tables(config_path: Path | None) -> dict[str, dict]:
    """model id -> raw table, for the tables of the engine config file that say engine = "remote"."""
    if config_path is None:
        return {}
    return {m: raw for m, raw in read_tables(config_path).items() if is_remote(raw)}


class _Backends:
    """Backends by base URL, built on first use and shared by the models of one load. A pickled
    copy (a Ray replica's) arrives empty and builds its own: sockets and threads do not travel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_url: dict[str, tuple[Backend, threading.BoundedSemaphore]] = {}

    def get(self, cfg: RemoteConfig) -> tuple[Backend, threading.BoundedSemaphore]:
        with self._lock:
            if cfg.base_url not in self._by_url:
                self._by_url[cfg.base_url] = (Backend(cfg), threading.BoundedSemaphore(cfg.max_concurrency))
            return self._by_url[cfg.base_url]

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


@dataclass(eq=False)
class RemoteFactory:
    """Builds the RemoteEngine of one model id; picklable, so Ray Serve can ship it to a replica."""

    model: str
    cfg: RemoteConfig
    backends: _Backends

    def __call__(self) -> RemoteEngine:
        backend, slots = self.backends.get(self.cfg)
        return RemoteEngine(self.model, self.cfg, backend, slots)


def factories_for(configs: dict[str, RemoteConfig]) -> dict[str, EngineFactory]:
    """model id -> factory. One Backend and one concurrency bound per base URL."""
    unknown = set(configs) - set(MODELS)
    if unknown:
        raise RemoteConfigError(f"remote engine: unknown model ids {sorted(unknown)}; use {', '.join(MODELS)}")
    backends = _Backends()
    return {model: EngineFactory(RemoteFactory(model, cfg, backends)) for model, cfg in configs.items()}


def load_remote(config_path: Path) -> dict[str, EngineFactory]:
    tables = remote_tables(config_path)
    configs = {m: parse_remote(raw, f"{config_path}: models.{m}") for m, raw in tables.items()}
    return factories_for(configs)


__all__ = ["RemoteConfig", "RemoteConfigError", "RemoteEngine", "RemoteFactory", "factories_for", "load_remote",
           "remote_tables", "settings_config"]
