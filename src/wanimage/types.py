"""The domain's small types, shared by core, engines, thinking and the API: what a request asks
for (mode, boxes, palette colours), what thinking mode plans (layout items), what an engine can do
(capabilities), and the two model ids. Nothing here imports from the rest of wanimage."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MODELS = ("wan2.7-image", "wan2.7-image-pro")
PRO_MODEL = "wan2.7-image-pro"


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

    @property
    def sequential(self) -> bool:
        return self in (Mode.TEXT_TO_IMAGE_SET, Mode.IMAGE_TO_IMAGE_SET)


ALL_MODES = frozenset(Mode)


class Canceled(Exception):
    """Raised by the progress callback inside an engine when its task was canceled."""


class EngineLost(Exception):
    """The engine process (e.g. a Ray replica) died under the task: the task is re-queued, not failed."""


@dataclass(frozen=True)
class Box:
    """A box in the pixel space of its image: top-left (x1, y1), bottom-right (x2, y2)."""

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
