"""The Engine protocol: what every image engine (built-in, diffusers, remote replica) implements.

An engine receives a finished GenerationJob (engines/job.py: every rule checked at submit, the
prompt already split per image, boxes in output pixels) and returns PIL images of exactly
job.width x job.height, one per `job.prompts` entry. It never parses HTTP, never re-reads the
prompt's structure, and never refuses what submit accepted. Progress and cancellation go through the
`progress` callback, which raises `Canceled` when the task was canceled."""

from __future__ import annotations

from collections.abc import Callable
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
    name: str
    capabilities: Capabilities

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]: ...


def no_progress(fraction: float, preview: PreviewFn | None = None) -> None:
    """A ProgressFn for callers that do not track progress (CLI without a bar, benchmarks)."""
