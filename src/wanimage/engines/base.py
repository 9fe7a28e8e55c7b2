"""The Engine protocol: what every image engine (built-in, diffusers, remote replica) implements.

An engine receives a finished GenerationJob (engines/job.py: every rule checked at submit, the
prompt already split per image, boxes in output pixels) and returns PIL images of exactly
job.width x job.height, one per `job.prompts` entry. It never parses HTTP, never re-reads the
prompt's structure, and never refuses what submit accepted. Progress and cancellation go through the
`progress` callback, which raises `Canceled` when the task was canceled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

# Canceled and EngineLost belong to the engine contract; they live with the domain types so that
# the task queue can tell them apart without importing engines.
from ..types import Box, Canceled, Capabilities, EngineLost, LayoutItem, Mode, PaletteColor  # noqa: F401
from .job import GenerationJob  # noqa: F401  (the job is part of the engine contract)

PreviewFn = Callable[[], list[Image.Image]]


class ProgressFn(Protocol):
    def __call__(self, fraction: float, preview: PreviewFn | None = None) -> None:
        """Report progress in [0, 1]; `preview` lazily renders the partial images at this step.
        Raises Canceled when the task has been canceled: engines let it propagate."""


@runtime_checkable
class Engine(Protocol):
    """Everything the server calls on an engine. Engines subclass it to take the defaults of the
    optional members below; `generate` each one writes itself."""

    name: str
    capabilities: Capabilities

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]: ...

    # optional members: the defaults suit an engine that holds nothing but memory and says nothing more
    steps: int | None = None  # denoising steps, written into provenance; None when the engine has no fixed count

    def describe(self) -> dict:
        """What `wanimage models`, GET /v1/models and /health show beyond the name and the modes
        (resident weights, the backend and whether it answers); {} when there is nothing more."""
        return {}

    def close(self) -> None:
        """Release what the engine holds beyond memory (threads, event loops, processes); called
        once when the app shuts down."""


def no_progress(fraction: float, preview: PreviewFn | None = None) -> None:
    """A ProgressFn for callers that do not track progress (CLI without a bar, benchmarks)."""


@dataclass(frozen=True, eq=False)
class EngineFactory:
    """Builds one engine, and says before building it what the server plans around. Model ids
    given the same factory object share one engine (and, on Ray Serve, one deployment)."""

    build: Callable[[], Engine]
    gpus: int = 1  # GPUs one replica needs (Ray Serve reserves them): a context-parallel model's degree
    # the engine spreads itself over WANIMAGE_DEVICES (context parallelism): one engine, not one per device
    spans_devices: bool = False
    heavy: bool = False  # loading takes seconds: `wanimage models` describes it unloaded instead
    describe_unloaded: Callable[[], dict] | None = None  # the listing's row without loading the engine
    # the engine reads every prompt's words itself, Chinese ones with jieba (the built-in model): the
    # server loads jieba's dictionary at start-up, not at the first Chinese prompt. Elsewhere only
    # thinking mode and edit / set prompts in Chinese need it, and it costs 134 MB resident.
    reads_chinese_words: bool = False

    def __call__(self) -> Engine:
        return self.build()


def as_factories(factories: dict[str, EngineFactory | Callable[[], Engine]]) -> dict[str, EngineFactory]:
    """Model id -> EngineFactory. A bare callable (tests, benchmarks, Ray's connectors) becomes one
    with the defaults; ids that shared a callable share its EngineFactory, and so one engine."""
    typed: dict[int, EngineFactory] = {}
    for factory in factories.values():
        if id(factory) not in typed:
            typed[id(factory)] = factory if isinstance(factory, EngineFactory) else EngineFactory(factory)
    return {model: typed[id(factory)] for model, factory in factories.items()}
