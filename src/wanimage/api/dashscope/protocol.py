"""The DashScope wire format (api-spec.md §1, §8): request bodies -> GenerationRequest (the
response bodies are in responses.py). Pure: no FastAPI, no service.

The request models type every field as api-spec.md §1.3 does, in its order. Who checks what, in
this order (the order of the messages a client has always received):
0. every string, key or value, is text the server can carry (no lone surrogate, no NUL):
   `check_text` (core/text.py), naming the field as `field_of` does;
1. the JSON type of each top-level field (`model` a string, `input` and `parameters` objects):
   pydantic, with its own messages (`_TopLevel`);
2. the shape of `input` (exactly one user message, its content items): `_check_input`, here;
3. every value (model id, prompt, images, each parameter): `build_request`, by `to_request()`.
Fields of the third kind are `SkipValidation[...]`: typed for readers and the OpenAPI document,
kept as sent, so that a wrong type gets build_request's message naming the field."""

from __future__ import annotations

import logging
import re
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SkipValidation,
    model_validator,
)

from ...core.parameters import OutputOptions
from ...core.request import GenerationRequest, build_request
from ...core.text import Path, check_text
from ...errors import EmptyInput, InvalidParameter

log = logging.getLogger(__name__)

# The Wan 2.7 parameters, in the order of the spec: what `parameters` hands to build_request.
PARAMETERS = (
    "size",
    "n",
    "enable_sequential",
    "thinking_mode",
    "bbox_list",
    "color_palette",
    "watermark",
    "seed",
    "negative_prompt",
    "prompt_extend",
)
# What other Model Studio image models and the SDKs send about the answer's shape: honoured or
# refused by name (core/parameters.py).
OUTPUT_PARAMETERS = ("enable_interleave", "max_images", "modalities", "incremental_output", "stream")
CONTENT_KEYS = {"text", "image", "type"}


# ------------------------------------------------------------------ request models


class DashScopeBaseModel(BaseModel):
    """Every DashScope request model. Unknown fields are accepted (the SDK forwards any extra
    keyword into `parameters`) and their names logged, once per object."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _log_unknown_fields(self) -> Self:
        if self.model_extra:
            log.info("dashscope %s: unknown fields ignored: %s", type(self).__name__, ", ".join(sorted(self.model_extra)))
        return self


class ContentItem(DashScopeBaseModel):
    """One `content` item: {"text": ...} or {"image": ...}; a `type` key is tolerated."""

    text: SkipValidation[str | None] = None
    image: SkipValidation[str | None] = None  # http(s) URL, data URI, bare base64 or oss://key
    type: SkipValidation[Literal["text", "image"] | None] = None


class Message(DashScopeBaseModel):
    role: Literal["user"] = "user"
    content: str | list[ContentItem]  # a plain string is the prompt


class Input(DashScopeBaseModel):
    messages: list[Message] = Field(min_length=1, max_length=1)  # single-turn: exactly one

    def prompt_and_images(self) -> tuple[Any, list[Any]]:
        """The text item (None without one) and the images, in content order. A key that was sent
        counts even when its value is null: build_request says what is wrong with the value."""
        content = self.messages[0].content
        if isinstance(content, str):
            return content, []
        texts = [item.text for item in content if "text" in item.model_fields_set]
        images = [item.image for item in content if "text" not in item.model_fields_set]
        return (texts[0] if texts else None), images


class Parameters(DashScopeBaseModel):
    """`parameters` (api-spec §1.3): the Wan 2.7 parameters, then those of the SDKs' other image
    models (docs/api.md, "Other parameters"), then the SDK's own."""

    size: SkipValidation[str | None] = None  # "1K" | "2K" | "4K", or "W*H"
    n: SkipValidation[int | str | None] = None  # also a decimal string: "2"
    enable_sequential: SkipValidation[bool | str | None] = None  # also "true" / "false", any case
    # the Java SDK sends a String ("true"); the Python SDK documents "fast" | "balanced" | "quality"
    thinking_mode: SkipValidation[bool | str | None] = None
    bbox_list: SkipValidation[list[list[list[int]]] | None] = None  # per image: [[x1, y1, x2, y2], ...]
    # [{"hex": "#RRGGBB", "ratio": "NN.NN%"}], or ratios as numbers in [0, 1] (Java's ColorPalette)
    color_palette: SkipValidation[list[dict[str, str | float]] | None] = None
    watermark: SkipValidation[bool | str | None] = None
    seed: SkipValidation[int | str | None] = None
    negative_prompt: SkipValidation[str | None] = None  # what not to draw, for engines that take one
    prompt_extend: SkipValidation[bool | str | None] = None  # false: the prompt drawn as given
    enable_interleave: SkipValidation[bool | str | None] = None  # true is refused: images only
    max_images: SkipValidation[int | str | None] = None  # an upper bound on the images, like n
    modalities: SkipValidation[list[str] | None] = None  # must include "image"
    incremental_output: SkipValidation[bool | str | None] = None
    stream: SkipValidation[bool | str | None] = None  # the X-DashScope-SSE header decides
    is_async: SkipValidation[bool | None] = None  # the SDK's async_call sends it

    def wan(self) -> dict[str, Any]:
        """The parameters as build_request takes them (None: not sent)."""
        sent = {name: wire_value(name, getattr(self, name)) for name in PARAMETERS}
        output = {name: wire_value(name, getattr(self, name)) for name in OUTPUT_PARAMETERS}
        return {**sent, "output": OutputOptions(**output)}


BOOLEANS = ("enable_sequential", "thinking_mode", "watermark", "prompt_extend", "enable_interleave",
            "incremental_output", "stream")
INTEGERS = ("n", "seed", "max_images")
_DECIMAL = re.compile(r"[+-]?\d{1,19}\Z", re.ASCII)


def wire_value(name: str, value: Any) -> Any:
    """The string forms other clients send, as the JSON types they stand for: the Java SDK's
    `thinkingMode` is a String ("true"), loosely typed callers send "false" and "2". Anything
    else is handed on as sent, for build_request to refuse with its message naming the field."""
    if not isinstance(value, str):
        return value
    if name in BOOLEANS and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if name in INTEGERS and _DECIMAL.match(value):
        return int(value)
    return value


class _TopLevel(BaseModel):
    """The JSON types of the top-level fields, checked before anything else (step 1)."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    input: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None


class GenerationBody(DashScopeBaseModel):
    """POST /services/aigc/multimodal-generation/generation and .../image-generation/generation."""

    model: str | None = None  # wan2.7-image | wan2.7-image-pro
    input: Input | None = None
    parameters: Parameters | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _check_in_order(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        check_text(data, field_of)  # 0.
        if isinstance(data, dict):
            _TopLevel.model_validate(data)  # 1.
            _check_input(data.get("input"))  # 2.
        return handler(data)  # the shape is right now: the typed models always validate

    def to_request(self, served: tuple[str, ...] = ()) -> GenerationRequest:
        assert self.input is not None  # _check_input refuses a body without one
        prompt, images = self.input.prompt_and_images()
        params = self.parameters.wan() if self.parameters else {}
        return build_request(model=self.model, prompt=prompt, images=images, served=served, **params)


class SynthesisInput(DashScopeBaseModel):
    """`input` of the ImageSynthesis path: what dashscope 1.x `ImageSynthesis` and the Java SDK's
    `ImageSynthesisParam` send. `ref_img` then `images` are the reference images, in that order."""

    prompt: SkipValidation[str | None] = None
    negative_prompt: SkipValidation[str | None] = None  # as parameters.negative_prompt, which wins
    ref_img: SkipValidation[str | None] = None  # one reference image
    images: SkipValidation[list[str] | None] = None  # reference images, as `content` image items

    def reference_images(self) -> list[Any]:
        if self.images is not None and not isinstance(self.images, list):
            raise InvalidParameter("images: must be a list of image URLs or data URIs", field="images")
        refs = [] if self.ref_img is None else [self.ref_img]
        return refs + list(self.images or [])


# Inputs of other image models (sketch, inpainting) that Wan 2.7 cannot honour: refused, since
# ignoring them would answer a text-to-image to a caller who sent an image.
UNSUPPORTED_SYNTHESIS_INPUTS = ("sketch_image_url", "base_image_url", "mask_image_url")


class SynthesisBody(DashScopeBaseModel):
    """POST /services/aigc/text2image/image-synthesis (legacy; `input.prompt`). Reference images
    (`input.ref_img`, `input.images`) follow every rule of the main path."""

    model: str | None = None
    input: SynthesisInput | None = None
    parameters: Parameters | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _check_in_order(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        check_text(data, field_of)
        if isinstance(data, dict):
            _TopLevel.model_validate(data)
            if not data.get("input"):
                raise EmptyInput("input: the input object with a prompt is required", field="input")
            for name in UNSUPPORTED_SYNTHESIS_INPUTS:
                if data["input"].get(name):
                    raise InvalidParameter(
                        f"{name}: is not supported by Wan 2.7; send reference images in input.images "
                        "and describe the edit in the prompt",
                        field=name,
                    )
        return handler(data)

    def to_request(self, served: tuple[str, ...] = ()) -> GenerationRequest:
        assert self.input is not None
        params = self.parameters.wan() if self.parameters else {}
        if params.get("negative_prompt") is None:
            params["negative_prompt"] = self.input.negative_prompt
        return build_request(
            model=self.model, prompt=self.input.prompt, images=self.input.reference_images(), served=served,
            **params)


def field_of(path: Path) -> str:
    """The field a value of the body belongs to, as build_request names it: the message's text is
    the `prompt`, its images `image`, a parameter (known or not) its own name."""
    keys = [p for p in path if isinstance(p, str)]
    if keys[:3] == ["input", "messages", "content"]:
        return "prompt" if keys[3:] in ([], ["text"]) else keys[3]
    if keys[:1] in (["input"], ["parameters"]) and len(keys) > 1:
        return keys[1]
    return keys[0] if keys else "body"


def _check_input(input_: dict[str, Any] | None) -> None:
    """The shape of `input` (step 2), before any value is looked at."""
    if not input_:
        raise EmptyInput("input: the input object with messages is required", field="input")
    messages = input_.get("messages")
    if not isinstance(messages, list) or len(messages) != 1:
        count = len(messages) if isinstance(messages, list) else "no"
        raise InvalidParameter(
            f"messages: {count} messages sent; send exactly one message with role \"user\"", field="messages"
        )
    message = messages[0]
    if not isinstance(message, dict) or message.get("role", "user") != "user":
        raise InvalidParameter('messages: the message must have role "user"', field="messages")
    content = message.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise InvalidParameter(
            'content: must be a non-empty list of {"text": ...} and {"image": ...} items', field="content"
        )
    for i, item in enumerate(content, start=1):
        if not isinstance(item, dict) or not (set(item) & {"text", "image"}) or set(item) - CONTENT_KEYS:
            raise InvalidParameter(
                f'content: item {i} must be {{"text": "..."}} or {{"image": "..."}}, got {_preview(item)}',
                field="content",
            )
        if "text" in item and "image" in item:
            raise InvalidParameter(f"content: item {i} has both text and image; split it in two", field="content")
    texts = sum("text" in item for item in content)
    if texts > 1:
        raise InvalidParameter(
            f"content: {texts} text items sent; put the whole prompt in one text item", field="content"
        )


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
