"""The remote engine: an OpenAI-compatible images server (SGLang Diffusion, vLLM-Omni, LocalAI,
stable-diffusion.cpp, another wanimage, ...) behind wanimage's API (docs/remote.md).

Model ids become remote by the WANIMAGE_REMOTE_* settings (both ids, one backend) or by a table
with `engine = "remote"` in the engine config file (per id). Models on the same base URL share one
backend: one connection pool, one max_concurrency bound, one health row."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ...types import MODELS
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


def factories_for(configs: dict[str, RemoteConfig]) -> dict[str, Callable[[], RemoteEngine]]:
    """model id -> factory. One Backend and one concurrency bound per base URL, built lazily."""
    unknown = set(configs) - set(MODELS)
    if unknown:
        raise RemoteConfigError(f"remote engine: unknown model ids {sorted(unknown)}; use {', '.join(MODELS)}")
    shared: dict[str, tuple[Backend, threading.BoundedSemaphore]] = {}
    lock = threading.Lock()

    def factory(model: str) -> Callable[[], RemoteEngine]:
        def build() -> RemoteEngine:
            cfg = configs[model]
            with lock:
                if cfg.base_url not in shared:
                    shared[cfg.base_url] = (Backend(cfg), threading.BoundedSemaphore(cfg.max_concurrency))
                backend, slots = shared[cfg.base_url]
            return RemoteEngine(model, cfg, backend, slots)

        return build

    return {model: factory(model) for model in configs}


def load_remote(config_path: Path) -> dict[str, Callable[[], RemoteEngine]]:
    tables = remote_tables(config_path)
    configs = {m: parse_remote(raw, f"{config_path}: models.{m}") for m, raw in tables.items()}
    return factories_for(configs)


__all__ = ["RemoteConfig", "RemoteConfigError", "RemoteEngine", "factories_for", "load_remote",
           "remote_tables", "settings_config"]
