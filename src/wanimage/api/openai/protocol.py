"""The OpenAI Images dialect (api-spec.md §3, §8): JSON and multipart bodies -> GenerationRequest
(the response bodies are in responses.py). Pure: no FastAPI, no service.

The request models type every field as the OpenAI Images API does, in its order, then the Wan 2.7
fields the gateways add (api-spec.md §3.1). The values are kept as sent (`SkipValidation`): the
three that only this dialect decides (`response_format`, `stream`, `partial_images`) are checked
when the body is built, everything else by `build_request` in `to_request()`, so a wrong type gets
the message naming the field that a wrong value gets."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, SkipValidation, model_validator

from ...core.parameters import THINKING_LEVELS
from ...core.request import GenerationRequest, build_request
from ...core.text import check_text
from ...errors import InvalidParameter

log = logging.getLogger(__name__)

DEFAULT_MODEL = "wan2.7-image"
WAN_FIELDS = ("enable_sequential", "thinking_mode", "watermark", "seed", "bbox_list", "color_palette",
              "negative_prompt", "prompt_extend")
# OpenAI fields with no Wan meaning: accepted and logged.
NO_EFFECT = ("background", "input_fidelity", "moderation", "output_compression", "output_format", "quality",
             "style", "user")
RESPONSE_FORMATS = ("url", "b64_json")
IMAGE_FIELDS = ("image", "image[]", "images", "images[]")  # multipart keys that carry input images
Size = Literal["auto", "1K", "2K", "4K"] | str  # or "WxH" / "W*H"


@dataclass(frozen=True)
class Options:
    """What the dialect itself decides (not part of the generation request)."""

    response_format: Literal["url", "b64_json"] = "url"
    stream: bool = False
    partial_images: int = 0


class OpenAIBaseModel(BaseModel):
    """Every OpenAI-dialect request model. Unknown fields are accepted (gateways' clients send
    their own) and their names logged, once per object."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _check_text(cls, data: Any) -> Any:
        check_text(data)  # before anything: no lone surrogate or NUL reaches a message, log or task
        return data

    @model_validator(mode="after")
    def _log_unknown_fields(self) -> Self:
        if self.model_extra:
            log.info("openai %s: unknown fields ignored: %s", type(self).__name__, ", ".join(sorted(self.model_extra)))
        return self

    def _log_no_effect(self) -> None:
        for name in NO_EFFECT:
            if getattr(self, name, None) is not None:
                log.info("openai field %r has no effect on Wan 2.7", name)


class _ImagesBody(OpenAIBaseModel):
    """What both image endpoints share: response_format, stream and partial_images are refused
    first, when the body is built; the subclasses declare the fields in their endpoint's order."""

    @model_validator(mode="after")
    def _check_options(self) -> Self:
        _options(self)  # a bad response_format, stream or partial_images is refused first
        return self

    def options(self) -> Options:
        return _options(self)


class GenerationsBody(_ImagesBody):
    """POST /v1/images/generations (JSON). Wan fields ride along (`extra_body` in the SDK)."""

    prompt: SkipValidation[str | None] = None
    background: SkipValidation[Literal["transparent", "opaque", "auto"] | None] = None
    model: SkipValidation[str | None] = None  # default wan2.7-image
    moderation: SkipValidation[Literal["low", "auto"] | None] = None
    n: SkipValidation[int | None] = None
    output_compression: SkipValidation[int | None] = None
    output_format: SkipValidation[Literal["png", "jpeg", "webp"] | None] = None
    partial_images: SkipValidation[int | None] = None  # 0-3, with stream
    quality: SkipValidation[str | None] = None
    response_format: SkipValidation[Literal["url", "b64_json"] | None] = None
    size: SkipValidation[Size | None] = None
    stream: SkipValidation[bool | None] = None
    style: SkipValidation[Literal["vivid", "natural"] | None] = None
    user: SkipValidation[str | None] = None
    # Wan 2.7 (api-spec §3.1); `images` wins over `image`
    image: SkipValidation[str | list[str] | None] = None  # URL, data URI or bare base64
    images: SkipValidation[list[str] | None] = None
    enable_sequential: SkipValidation[bool | None] = None
    thinking_mode: SkipValidation[bool | str | None] = None  # also "fast" | "balanced" | "quality"
    watermark: SkipValidation[bool | None] = None
    seed: SkipValidation[int | None] = None
    bbox_list: SkipValidation[list[list[list[int]]] | None] = None
    color_palette: SkipValidation[list[dict[str, str]] | None] = None
    negative_prompt: SkipValidation[str | None] = None
    prompt_extend: SkipValidation[bool | None] = None

    def to_request(self, served: tuple[str, ...] = ()) -> GenerationRequest:
        self._log_no_effect()
        images = self.images if self.images is not None else self.image
        return _build(self, _as_list(images), coerce=False, served=served)


class EditsBody(_ImagesBody):
    """POST /v1/images/edits (multipart: every value a string, or a list of strings for a repeated
    field). Build it with `from_form`; `mask` is refused there (Wan 2.7 has no masks)."""

    image: list[str] = []  # the uploaded files as data URIs, then URL/base64 strings of the image fields
    prompt: SkipValidation[str | None] = None
    background: SkipValidation[str | None] = None
    input_fidelity: SkipValidation[str | None] = None
    model: SkipValidation[str | None] = None
    n: SkipValidation[int | None] = None
    output_compression: SkipValidation[int | None] = None
    output_format: SkipValidation[str | None] = None
    partial_images: SkipValidation[int | None] = None
    quality: SkipValidation[str | None] = None
    response_format: SkipValidation[Literal["url", "b64_json"] | None] = None
    size: SkipValidation[Size | None] = None
    stream: SkipValidation[bool | None] = None
    user: SkipValidation[str | None] = None
    # Wan 2.7; bbox_list and color_palette as JSON strings (nested lists do not survive multipart)
    enable_sequential: SkipValidation[bool | None] = None
    thinking_mode: SkipValidation[bool | str | None] = None
    watermark: SkipValidation[bool | None] = None
    seed: SkipValidation[int | None] = None
    bbox_list: SkipValidation[str | None] = None
    color_palette: SkipValidation[str | None] = None
    negative_prompt: SkipValidation[str | None] = None
    prompt_extend: SkipValidation[bool | None] = None

    @classmethod
    def from_form(cls, fields: dict[str, list[str]], files: list[str]) -> EditsBody:
        """`fields`: the form's string values per key, in order; `files`: the uploaded images as
        data URIs, in order (a `mask` file arrives as a `mask` field)."""
        form = {k: (v if k.endswith("[]") or len(v) > 1 else v[0]) for k, v in fields.items()}
        if not files and not form.get("image") and not form.get("images"):
            raise InvalidParameter("image: send at least one image file to edit", field="image")
        # Name the field that actually arrived flattened (a flattened color_palette used to be
        # reported as param "bbox_list").
        flattened = next((n for n in ("bbox_list", "color_palette") if any(k.startswith(n + "[") for k in form)), None)
        if flattened:
            raise InvalidParameter(
                f"{flattened}: nested lists cannot travel as multipart fields (they arrive flattened); "
                "send bbox_list and color_palette as JSON strings, e.g. extra_body={\"bbox_list\": "
                "json.dumps([[[10, 10, 200, 200]]])}",
                field=flattened,
            )
        if "mask" in form:
            raise InvalidParameter("mask: masks are not supported by Wan 2.7; mark regions with bbox_list", field="mask")
        images = files + [v for k in IMAGE_FIELDS for v in _as_list(form.get(k))]
        rest = {k: v for k, v in form.items() if k not in IMAGE_FIELDS}
        return cls.model_validate({**rest, "image": images})

    def to_request(self, served: tuple[str, ...] = ()) -> GenerationRequest:
        self._log_no_effect()
        return _build(self, self.image, coerce=True, served=served)


# ------------------------------------------------------------------ checks and coercion


def _form_bool(name: str, value: Any) -> Any:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise InvalidParameter(f"{name}: must be true or false, got {value!r}", field=name)
    return value


def _json_bool(value: Any) -> Any:
    """A JSON boolean; the strings "true" / "false" are tolerated, "yes", "1" and the rest are not."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _form_int(name: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise InvalidParameter(f"{name}: must be an integer, got {value!r}", field=name) from None
    return value


def _form_json(name: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise InvalidParameter(
                f"{name}: send it as a JSON string, e.g. {name}='[[[10, 10, 200, 200]]]'", field=name
            ) from None
    return value


def _size(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return value


def _options(body: GenerationsBody | EditsBody) -> Options:
    """response_format, stream and partial_images, checked in that order."""
    fmt = body.response_format or "url"
    if fmt not in RESPONSE_FORMATS:
        raise InvalidParameter(f"response_format: {fmt!r} is not supported; use url or b64_json", field="response_format")
    form = isinstance(body, EditsBody)  # multipart sends strings; a JSON body sends real booleans
    stream = (_form_bool("stream", body.stream) if form else _json_bool(body.stream)) or False
    partial = (_form_int("partial_images", body.partial_images) if form else body.partial_images) or 0
    if not isinstance(stream, bool):
        raise InvalidParameter(f"stream: must be true or false (a JSON boolean), got {stream!r}", field="stream")
    if isinstance(partial, bool) or not isinstance(partial, int) or not 0 <= partial <= 3:
        raise InvalidParameter("partial_images: use an integer from 0 to 3", field="partial_images")
    return Options(response_format=fmt, stream=stream, partial_images=partial)


def _build(body: GenerationsBody | EditsBody, images: list[Any], coerce: bool,
           served: tuple[str, ...] = ()) -> GenerationRequest:
    wan = {k: getattr(body, k) for k in WAN_FIELDS}
    n, size = body.n, _size(body.size)
    if coerce:  # multipart: everything arrives as a string
        for key in ("enable_sequential", "watermark", "prompt_extend"):
            wan[key] = _form_bool(key, wan[key])
        if str(wan["thinking_mode"]).lower() not in THINKING_LEVELS:  # a level goes on as sent
            wan["thinking_mode"] = _form_bool("thinking_mode", wan["thinking_mode"])
        wan["seed"], n = _form_int("seed", wan["seed"]), _form_int("n", n)
        wan["bbox_list"] = _form_json("bbox_list", wan["bbox_list"])
        wan["color_palette"] = _form_json("color_palette", wan["color_palette"])
    return build_request(model=body.model or DEFAULT_MODEL, prompt=body.prompt, images=images, n=n, size=size,
                         served=served, **wan)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
