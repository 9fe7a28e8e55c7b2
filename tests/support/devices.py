"""A real server whose diffusers engine spans WANIMAGE_DEVICES=cpu,cpu (tiny random-weight
pipelines), with the dashscope SDK pointed at it, for the tests of serving on several devices."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import RunningServer, dashscope_pointed_at, start_server
from wanimage.config import Settings
from wanimage.engines.diffusers.tiny import tiny_cpu_speedups
from wanimage.engines.factories import build_registry
from wanimage.engines.registry import EngineRegistry


@contextmanager
def diffusers_on_two_cpus(tmp_path: Path, database_url: str, config: str,
                          key: str) -> Iterator[tuple[EngineRegistry, RunningServer]]:
    """`config` is the engines.toml; the server stops (and its engines close) after the block."""
    (tmp_path / "engines.toml").write_text(config)
    engine = {"engine": "diffusers", "engine_config": tmp_path / "engines.toml", "devices": "cpu,cpu"}
    with tiny_cpu_speedups():
        registry = build_registry(Settings(**engine))
        running = start_server(tmp_path / "data", registry=registry, api_keys=key, database_url=database_url,
                               **engine)
        with dashscope_pointed_at(running):
            yield registry, running
