"""Several devices in one process (WANIMAGE_DEVICES=cuda:0,cuda:1): one engine per device, each
with its own pipelines, behind one model id. Each job takes a free device's engine and gives it
back when done, so N workers keep N devices busy (core/service.py starts one worker per device).
A model too big for one card is not spread here: see device_map in docs/diffusers.md."""

from __future__ import annotations

import queue
from collections.abc import Callable

from PIL import Image

from .base import Engine, EngineFactory, GenerationJob, ProgressFn


class DeviceSpread(Engine):
    """Engines of one model, one per device; `generate` runs on whichever is free."""

    def __init__(self, engines: list[Engine], devices: list[str]) -> None:
        self.engines, self.devices = engines, devices
        self.name = engines[0].name
        self.capabilities = engines[0].capabilities
        self.steps = engines[0].steps
        self._free: queue.SimpleQueue[Engine] = queue.SimpleQueue()
        for engine in engines:
            self._free.put(engine)

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]:
        engine = self._free.get()  # blocks while every device runs a job
        try:
            return engine.generate(job, progress)
        finally:
            self._free.put(engine)

    def describe(self) -> dict:
        """The first engine's description, with every device and the memory of all of them."""
        details = self.engines[0].describe()
        rows = [e.describe() for e in self.engines]
        if "bytes" in details:
            details["bytes"] = sum(r.get("bytes", 0) for r in rows)
        return {**details, "device": ",".join(self.devices), "devices": list(self.devices)}

    def close(self) -> None:
        for engine in self.engines:
            engine.close()

    def __getattr__(self, name: str):  # anything else (preset, family, ...) as the first engine says
        return getattr(self.engines[0], name)


def on_devices(devices: list[str], build: Callable[[str], dict[str, EngineFactory]]) -> dict[str, EngineFactory]:
    """Model id -> factory, from `build(device)` (model id -> factory for that device) called once
    per device. Ids sharing a factory on one device share one DeviceSpread. A factory that spans the
    devices itself (a context-parallel model, `spans_devices`) stays one engine."""
    if len(devices) < 2:
        return build(devices[0])
    per_device = [build(d) for d in devices]
    spreads: dict[int, EngineFactory] = {}
    out = {}
    for model, factory in per_device[0].items():
        if factory.spans_devices:
            out[model] = factory
            continue
        if id(factory) not in spreads:
            factories = [table[model] for table in per_device]
            spreads[id(factory)] = EngineFactory(lambda fs=factories: DeviceSpread([f() for f in fs], devices),
                                                 gpus=factory.gpus)
        out[model] = spreads[id(factory)]
    return out
