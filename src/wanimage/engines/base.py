"""The Engine protocol: what every image engine (built-in, diffusers, remote replica) implements.

An engine receives a fully validated GenerationJob and returns PIL images of exactly
job.width x job.height. It never parses HTTP. Progress and cancellation go through the
`progress` callback, which raises `Canceled` when the task was canceled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from PIL import Image


class Mode(StrEnum):
    TEXT_TO_IMAGE = "text-to-image"
    TEXT_TO_IMAGE_SET = "text-to-image-set"
    EDIT = "edit"
    IMAGE_TO_IMAGE_SET = "image-to-image-set"

    @classmethod
    def of(cls, n_images: int, sequential: bool) -> Mode:
        if n_images == 0:
            return cls.TEXT_TO_IMAGE_SET if sequential else cls.TEXT_TO_IMAGE
        return cls.IMAGE_TO_IMAGE_SET if sequential else cls.EDIT


ALL_MODES = frozenset(Mode)


class Canceled(Exception):
    """Raised by the progress callback inside an engine when its task was canceled."""


class EngineLost(Exception):
    """The engine process (e.g. a Ray replica) died under the task: the task is re-queued, not failed."""


@dataclass(frozen=True)
class Box:
    """A box in the pixel space of its input image: top-left (x1, y1), bottom-right (x2, y2)."""

    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class PaletteColor:
    rgb: tuple[int, int, int]
    weight: float  # 0..1, the weights of a palette sum to 1


@dataclass(frozen=True)
class LayoutItem:
    """One planned object: a label and a box in output pixel space (from thinking mode)."""

    label: str
    box: Box


@dataclass(frozen=True)
class Capabilities:
    modes: frozenset[Mode] = ALL_MODES
    max_pixels: int = 4096 * 4096
    max_input_images: int = 9
    max_set_size: int = 12
    bbox: bool = True
    palette: bool = True  # steers colour itself (a post-hoc transfer is applied on top anyway)
    layout: bool = False  # follows LayoutItem boxes from thinking mode
    previews: bool = False  # progress() receives partial images
    cancel_between_steps: bool = True


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
        return self.mode in (Mode.TEXT_TO_IMAGE_SET, Mode.IMAGE_TO_IMAGE_SET)


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
