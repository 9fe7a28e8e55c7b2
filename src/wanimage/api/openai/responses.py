"""The OpenAI Images response bodies (api-spec.md §3.2, §8.1): `{created, data[], usage}` and the
stream events, built from core's `Task` view. Pure pydantic: no FastAPI, no service.

Fields are declared in the order they leave on the wire; `render()` leaves out every None, so
an optional key (`partial_image_index`, `revised_prompt` on events) is absent rather than null."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import pybase64
from pydantic import BaseModel, ConfigDict

from ...core.task import Task


class OpenAIResponse(BaseModel):
    """Every OpenAI-dialect response model."""

    model_config = ConfigDict(extra="forbid")

    def render(self) -> dict[str, Any]:
        """The body as JSON values, keys in field order, without the keys that are None."""
        return self.model_dump(mode="json", exclude_none=True)

    def render_json(self) -> bytes:
        """`render()` as the JSON bytes Starlette's JSONResponse would write (compact, UTF-8), by
        pydantic-core's serializer: a b64_json answer of a photo-like 1K image in 4 ms instead of
        11 (the 2.8 MB string is neither copied into a dict nor scanned by the json module)."""
        return type(self).__pydantic_serializer__.to_json(self, exclude_none=True)


class ImageData(OpenAIResponse):
    """One `data[]` item: `url` or `b64_json`, as `response_format` asked."""

    url: str | None = None  # signed URL of the PNG
    b64_json: str | None = None  # the PNG's bytes, bare base64 (no `data:` prefix)
    revised_prompt: str  # the prompt thinking mode rewrote; the prompt itself without it


class ImagesUsage(OpenAIResponse):
    """Tokens are not counted by this server."""

    image_count: int
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ImagesResponse(OpenAIResponse):
    """The non-streaming answer of /v1/images/generations and /v1/images/edits."""

    created: int  # Unix seconds
    data: list[ImageData]  # one per image, in order: clients use len(data), not n
    size: str  # "WxH"
    output_format: Literal["png"] = "png"
    usage: ImagesUsage

    @classmethod
    def of(cls, record: Task, created: int, response_format: Literal["url", "b64_json"],
           values: list[str]) -> ImagesResponse:
        """`values`: per image its URL or its base64, as `response_format` says."""
        result = record.result
        assert result is not None
        data = [ImageData.model_validate({response_format: v, "revised_prompt": result.revised_prompt})
                for v in values]
        return cls(created=created, data=data, size=result.size.replace("*", "x"),
                   usage=ImagesUsage(image_count=len(result.images)))

    @classmethod
    def b64_json(cls, record: Task, created: int, pngs: list[bytes]) -> bytes:
        """The b64_json answer's JSON bytes: `render_json()` of the answer with a marker in each
        `b64_json`, each marker then replaced by its PNG's base64. Base64 needs no JSON escaping,
        so the 2.8 MB strings of a photo-like 1K image are neither decoded to `str` nor scanned
        and copied by the serializer (about 2.5 ms of the 5 that made the body, measured). The
        markers hold a fresh random id, so no prompt text can forge one."""
        marker = f"b64-{uuid.uuid4().hex}-"
        rest = cls.of(record, created, "b64_json", [f"{marker}{i}" for i in range(len(pngs))]).render_json()
        pieces = []
        for index, png in enumerate(pngs):
            head, rest = rest.split(f'"{marker}{index}"'.encode(), 1)
            pieces += [head, b'"', pybase64.b64encode(png), b'"']
        return b"".join([*pieces, rest])


class TokenDetails(OpenAIResponse):
    image_tokens: int = 0
    text_tokens: int = 0


class StreamUsage(OpenAIResponse):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: TokenDetails = TokenDetails()


class StreamEvent(OpenAIResponse):
    """One Server-Sent Event of a streamed call: `partial_image` events while denoising, then one
    `completed` event per image."""

    type: str  # "<kind>.partial_image" | "<kind>.completed", kind image_generation or image_edit
    b64_json: str  # PNG, bare base64
    created_at: int  # Unix seconds
    size: str  # "WxH"
    quality: Literal["auto"] = "auto"
    background: Literal["opaque"] = "opaque"
    output_format: Literal["png"] = "png"
    partial_image_index: int | None = None  # partial events only: 0, 1, ...
    revised_prompt: str | None = None  # completed events only, as in `data[]` (an extension)
    usage: StreamUsage | None = None  # completed events only

    @classmethod
    def partial(cls, kind: str, b64: str, *, created: int, size: str, index: int) -> StreamEvent:
        return cls(type=f"{kind}.partial_image", b64_json=b64, created_at=created, size=size,
                   partial_image_index=index)

    @classmethod
    def completed(cls, kind: str, b64: str, *, created: int, size: str, revised_prompt: str) -> StreamEvent:
        return cls(type=f"{kind}.completed", b64_json=b64, created_at=created, size=size,
                   revised_prompt=revised_prompt, usage=StreamUsage())
