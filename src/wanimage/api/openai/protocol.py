"""The OpenAI Images dialect (api-spec.md §3, §8): JSON and multipart bodies -> GenerationRequest,
task records -> `{created, data[], usage}` and stream events. Pure: no FastAPI, no service."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ...core.request import GenerationRequest, build_request
from ...errors import InvalidParameter
from ...tasks.records import TaskRecord

log = logging.getLogger(__name__)

DEFAULT_MODEL = "wan2.7-image"
WAN_FIELDS = ("enable_sequential", "thinking_mode", "watermark", "seed", "bbox_list", "color_palette")
# OpenAI fields with no Wan meaning: accepted and logged.
IGNORED = ("quality", "style", "background", "output_format", "output_compression", "moderation", "user",
           "negative_prompt", "prompt_extend", "input_fidelity")
RESPONSE_FORMATS = ("url", "b64_json")


class GenerationsBody(BaseModel):
    """POST /v1/images/generations (JSON). Wan fields ride along (`extra_body` in the SDK)."""

    model_config = ConfigDict(extra="allow")
    prompt: Any = None
    model: Any = None
    n: Any = None
    size: Any = None
    response_format: Any = None
    stream: Any = None
    partial_images: Any = None
    image: Any = None
    images: Any = None
    enable_sequential: Any = None
    thinking_mode: Any = None
    watermark: Any = None
    seed: Any = None
    bbox_list: Any = None
    color_palette: Any = None


class Options(BaseModel):
    """What the dialect itself decides (not part of the generation request)."""

    response_format: Literal["url", "b64_json"] = "url"
    stream: bool = False
    partial_images: int = 0


# ------------------------------------------------------------------ coercion of form values


def _form_bool(name: str, value: Any) -> Any:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise InvalidParameter(f"{name}: must be true or false, got {value!r}", field=name)
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


def _options(fields: dict[str, Any]) -> Options:
    fmt = fields.get("response_format") or "url"
    if fmt not in RESPONSE_FORMATS:
        raise InvalidParameter(f"response_format: {fmt!r} is not supported; use url or b64_json", field="response_format")
    stream = _form_bool("stream", fields.get("stream")) or False
    partial = _form_int("partial_images", fields.get("partial_images")) or 0
    if not isinstance(stream, bool):
        raise InvalidParameter("stream: must be true or false", field="stream")
    if isinstance(partial, bool) or not isinstance(partial, int) or not 0 <= partial <= 3:
        raise InvalidParameter("partial_images: use an integer from 0 to 3", field="partial_images")
    return Options(response_format=fmt, stream=stream, partial_images=partial)


def _images(fields: dict[str, Any]) -> list[Any]:
    """`images` wins over `image`; each may be a string or a list."""
    value = fields.get("images") if fields.get("images") is not None else fields.get("image")
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _log_ignored(fields: dict[str, Any], known: set[str]) -> None:
    for key in fields:
        if key not in known:
            log.info("openai field %r %s", key, "has no effect on Wan 2.7" if key in IGNORED else "is unknown; ignored")


def _build(fields: dict[str, Any], images: list[Any], coerce: bool) -> GenerationRequest:
    wan = {k: fields.get(k) for k in WAN_FIELDS}
    n, size = fields.get("n"), _size(fields.get("size"))
    if coerce:  # multipart: everything arrives as a string
        for key in ("enable_sequential", "thinking_mode", "watermark"):
            wan[key] = _form_bool(key, wan[key])
        wan["seed"], n = _form_int("seed", wan["seed"]), _form_int("n", n)
        wan["bbox_list"] = _form_json("bbox_list", wan["bbox_list"])
        wan["color_palette"] = _form_json("color_palette", wan["color_palette"])
    return build_request(
        model=fields.get("model") or DEFAULT_MODEL,
        prompt=fields.get("prompt"),
        images=images,
        n=n,
        size=size,
        **wan,
    )


def generations_request(body: GenerationsBody) -> tuple[GenerationRequest, Options]:
    fields = body.model_dump(exclude_none=False) | (body.model_extra or {})
    fields = {k: v for k, v in fields.items() if v is not None}
    _log_ignored(fields, set(GenerationsBody.model_fields))
    options = _options(fields)
    return _build(fields, _images(fields), coerce=False), options


def edits_request(form: dict[str, Any], files: list[str]) -> tuple[GenerationRequest, Options]:
    """Multipart edits: `files` are the uploaded images as data URIs, in order; URL/base64
    strings in `image`/`images` form fields are appended after them."""
    # Name the field that actually arrived flattened (a flattened color_palette used to be
    # reported as param "bbox_list").
    flattened = next((name for name in ("bbox_list", "color_palette") if any(k.startswith(name + "[") for k in form)), None)
    if flattened:
        raise InvalidParameter(
            f"{flattened}: nested lists cannot travel as multipart fields (they arrive flattened); "
            "send bbox_list and color_palette as JSON strings, e.g. extra_body={\"bbox_list\": "
            "json.dumps([[[10, 10, 200, 200]]])}",
            field=flattened,
        )
    if "mask" in form:
        raise InvalidParameter("mask: masks are not supported by Wan 2.7; mark regions with bbox_list", field="mask")
    known = set(GenerationsBody.model_fields) | {"image[]", "images[]"}
    _log_ignored(form, known)
    options = _options(form)
    extra = [v for k in ("image", "image[]", "images", "images[]") for v in _as_list(form.get(k))]
    return _build(form, files + extra, coerce=True), options


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ responses


def images_response(record: TaskRecord, options: Options, created: int, image_data: list[dict[str, str]]) -> dict[str, Any]:
    """`image_data`: per image {"url": ...} or {"b64_json": ...}, rendered by the router."""
    result = record.result
    assert result is not None
    width, height = result.size.split("*")
    return {
        "created": created,
        "data": [{**item, "revised_prompt": result.revised_prompt} for item in image_data],
        "size": f"{width}x{height}",
        "output_format": "png",
        "usage": {"image_count": len(result.images), "input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
    }


def stream_event(kind: str, event: str, *, b64: str, created: int, size: str, index: int | None = None) -> dict[str, Any]:
    """`kind` is image_generation or image_edit; `event` partial_image or completed."""
    body: dict[str, Any] = {
        "type": f"{kind}.{event}",
        "b64_json": b64,
        "created_at": created,
        "size": size,
        "quality": "auto",
        "background": "opaque",
        "output_format": "png",
    }
    if index is not None:
        body["partial_image_index"] = index
    if event == "completed":
        body["usage"] = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
                         "input_tokens_details": {"image_tokens": 0, "text_tokens": 0}}
    return body
