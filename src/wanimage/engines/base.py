"""The Engine protocol: what every image engine (built-in, diffusers, remote replica) implements.

An engine receives a fully validated GenerationJob and returns PIL images of exactly
job.width x job.height. It never parses HTTP. Progress and cancellation go through the
`progress` callback, which raises `Canceled` when the task was canceled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image

# Canceled and EngineLost belong to the engine contract; they live with the domain types so that
# the task queue can tell them apart without importing engines.
from ..types import Box, Canceled, Capabilities, EngineLost, LayoutItem, Mode, PaletteColor  # noqa: F401


@dataclass
class GenerationJob:
    model: str
    mode: Mode
    prompt: str
    width: int
    height: int
    n: int  # exact count, or the upper bound for image sets
    seed: int
    images: list[Image.Image] = field(default_factory=list)  # decoded RGB inputs, in order
    boxes: list[list[Box]] = field(default_factory=list)  # per input image; [] when none
    palette: list[PaletteColor] | None = None
    layout: list[LayoutItem] | None = None
    original_prompt: str = ""

    @property
    def sequential(self) -> bool:
        return self.mode.sequential


PreviewFn = Callable[[], list[Image.Image]]


class ProgressFn(Protocol):
    def __call__(self, fraction: float, preview: PreviewFn | None = None) -> None:
        """Report progress in [0, 1]; `preview` lazily renders the partial images at this step.
        Raises Canceled when the task has been canceled: engines let it propagate."""


@runtime_checkable
class Engine(Protocol):
    name: str
    capabilities: Capabilities

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]: ...


def no_progress(fraction: float, preview: PreviewFn | None = None) -> None:
    """A ProgressFn for callers that do not track progress (CLI without a bar, benchmarks)."""
