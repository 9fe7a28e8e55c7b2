"""The domain's small types, shared by core, engines, thinking and the API: what a request asks
for (mode, boxes, palette colours), what thinking mode plans (layout items), what an engine can do
(capabilities), and the model ids. Nothing here imports from the rest of wanimage."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

# Every Model Studio image id the messages endpoint accepts (what each takes: core/model_rules.py);
# which engine serves which is configuration (engines/factories.py).
WAN_MODELS = ("wan2.7-image", "wan2.7-image-pro", "wan2.6-t2i", "wan2.6-image")
QWEN_MODELS = ("qwen-image", "qwen-image-plus", "qwen-image-max", "qwen-image-edit", "qwen-image-edit-plus",
               "qwen-image-edit-max", "qwen-image-2.0", "qwen-image-2.0-pro")
MODELS = WAN_MODELS + QWEN_MODELS


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


class TaskStatus(StrEnum):
    """A task's state: identical strings in the enum, the task database and on the wire."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN)


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


def scale_boxes(boxes: tuple[Box, ...] | list[Box], src: tuple[int, int], dst: tuple[int, int]) -> list[Box]:
    """Boxes from an image of size `src` to the same picture at size `dst`: the one rounding rule
    (outward: floor the top-left, ceil the bottom-right, clamped to `dst`), so a scaled box still
    covers every pixel the client marked and keeps at least one pixel per side."""
    if tuple(src) == tuple(dst):
        return list(boxes)
    sx, sy = dst[0] / src[0], dst[1] / src[1]
    return [Box(max(0, math.floor(b.x1 * sx)), max(0, math.floor(b.y1 * sy)),
                min(dst[0], math.ceil(b.x2 * sx)), min(dst[1], math.ceil(b.y2 * sy))) for b in boxes]


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
    unboxed_edits: bool = True  # edits without bbox_list (False: a model that only inpaints inside boxes)
    family: str | None = None  # the model family behind the engine, named in its refusals
    palette: bool = True  # steers colour itself (a post-hoc transfer is applied on top anyway)
    layout: bool = False  # follows LayoutItem boxes from thinking mode
    previews: bool = False  # progress() receives partial images
    cancel_between_steps: bool = True
