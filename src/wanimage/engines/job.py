"""GenerationJob: one request, resolved once at submit, as every engine receives it.

Core builds it after the input images are fetched and every rule is checked (core/job.py); the
task queue carries it as an opaque payload (its JSON); the worker loads it by type, without
checking a rule again, adds the decoded input images and, in thinking mode, the planned prompt
and layout; engines read it and never split, parse or refuse what it says."""

from __future__ import annotations

from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from ..prompts import EditIntent
from ..types import Box, LayoutItem, Mode, PaletteColor

JOB_VERSION = 1


class GenerationJob(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    version: Literal[1] = JOB_VERSION
    model: str
    mode: Mode
    prompt: str  # as the client sent it (after truncation): provenance and the answer quote it
    width: int  # the checked output size
    height: int
    n: int  # exact count, or the upper bound of an image set
    seed: int
    # One prompt per image to make (so len(prompts) images are made): the prompt n times, or an
    # image set's parts ("image 1: ... image 2: ...") with the shared context; thinking mode's
    # revised prompt once it ran.
    prompts: tuple[str, ...]
    edits: tuple[EditIntent, ...] = ()  # edit modes: what each image's prompt asks of the last input
    inputs: tuple[str, ...] = ()  # where the input images are stored (input://KEY), in order
    # Boxes on the last input image (the one edited), in output pixels: a box edit.
    edit_boxes: tuple[Box, ...] = ()
    # Boxes on every other input image, in the pixels of that image as decoded: the object to take
    # from it ("put the cat of image 1 into the box of image 2"). One entry per image but the last.
    source_boxes: tuple[tuple[Box, ...], ...] = ()
    palette: tuple[PaletteColor, ...] | None = None
    watermark: bool = False
    thinking: bool = False  # thinking mode applies: the planner runs before the engine
    # thinking_mode's level: "fast" plans with the built-in planner only (docs/thinking.md)
    thinking_effort: Literal["fast", "balanced", "quality"] = "balanced"
    # What not to draw, for engines whose pipelines take it (the others log that they ignore it).
    negative_prompt: str | None = None
    layout: tuple[LayoutItem, ...] | None = None  # thinking mode's boxes, in output pixels
    revised_prompt: str | None = None  # thinking mode's rewrite; None until (unless) it ran
    planner: str | None = None  # which planner wrote it ("builtin" | "llm")
    # The decoded RGB input images, in order: added by whoever runs the job, never serialised.
    images: tuple[Image.Image, ...] = Field(default=(), exclude=True)

    @property
    def sequential(self) -> bool:
        return self.mode.sequential

    def with_images(self, images: list[Image.Image]) -> GenerationJob:
        return self.model_copy(update={"images": tuple(images)})

    def planned(self, revised_prompt: str, layout: list[LayoutItem] | None, planner: str) -> GenerationJob:
        """Thinking mode's plan: every image draws the revised prompt (text-to-image only)."""
        return self.model_copy(update={"prompts": (revised_prompt,) * len(self.prompts),
                                       "revised_prompt": revised_prompt, "planner": planner,
                                       "layout": tuple(layout) if layout else None})

    def to_payload(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_payload(cls, payload: str | bytes | dict) -> GenerationJob:
        """Load a stored job by type: its shapes are checked, never its rules (they were, at submit)."""
        if isinstance(payload, dict):
            return cls.model_validate(payload)
        return cls.model_validate_json(payload)
