"""The parameters the Model Studio SDKs send beside the Wan 2.7 ones (the Java SDK's
`ImageGenerationParam`, the Python SDK's keywords, InvokeAI's provider): each is honoured or
refused by name, and one accepted without effect is logged at INFO naming it (docs/api.md,
"Other parameters"). build_request (core/request.py) calls these; the booleans and integers of
every parameter are checked here too, so both modules word a wrong type the same way."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InvalidParameter
from .text import flaw

log = logging.getLogger(__name__)

# thinking_mode's string levels (the Python SDK's docstring lists them; both SDKs type the field
# as a string). What each does here is in docs/thinking.md.
ThinkingEffort = Literal["fast", "balanced", "quality"]
THINKING_LEVELS: tuple[ThinkingEffort, ...] = ("fast", "balanced", "quality")
# Model Studio documents negative_prompt (wan2.x, qwen-image) as at most 500 characters, the rest
# truncated: the same treatment as an over-long prompt.
MAX_NEGATIVE_PROMPT_CHARS = 500
MAX_IMAGES_LIMIT = 12  # the largest image set; max_images is an upper bound like n
OUTPUT_MODALITIES = ("image", "text")


def boolean(name: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    raise InvalidParameter(f"{name}: must be true or false, got {value!r}", field=name)


def integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise InvalidParameter(f"{name}: must be an integer, got {value!r}", field=name)
    return value


def check_thinking_mode(value: Any) -> tuple[bool, ThinkingEffort]:
    """-> (thinking on, its effort). A boolean or a level, in any case; true is "balanced", the
    default. The strings "true"/"false" are the edges' to convert (the DashScope dialect and forms
    take them, OpenAI JSON does not), as for every boolean."""
    word = value.lower() if isinstance(value, str) else None
    if word in THINKING_LEVELS:
        return True, word  # type: ignore[return-value]
    if value is None or isinstance(value, bool):
        return boolean("thinking_mode", value, True), "balanced"
    raise InvalidParameter(
        f"thinking_mode: must be true or false, or one of \"fast\", \"balanced\", \"quality\"; got {value!r}",
        field="thinking_mode",
    )


def check_negative_prompt(value: Any) -> str | None:
    """The text not to draw; checked like the prompt. An empty one asks for nothing."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"negative_prompt: must be a string, got {value!r}", field="negative_prompt")
    if problem := flaw(value):
        raise InvalidParameter(f"negative_prompt: the text contains {problem}", field="negative_prompt")
    if not value.strip():
        return None
    if len(value) > MAX_NEGATIVE_PROMPT_CHARS:
        log.info("negative_prompt of %d characters truncated to %d", len(value), MAX_NEGATIVE_PROMPT_CHARS)
        value = value[:MAX_NEGATIVE_PROMPT_CHARS]
    return value


@dataclass(frozen=True)
class OutputOptions:
    """What a client may ask about the shape of the answer (wan2.6-image's interleaved mode, the
    SDKs' streaming flags), each as sent (None: not sent); check_output_options checks them."""

    enable_interleave: Any = None
    max_images: Any = None
    modalities: Any = None
    incremental_output: Any = None
    stream: Any = None


def check_output_options(opts: OutputOptions, n: int) -> int:
    """Refuse what this server cannot answer, log what changes nothing; -> the image count (n
    lowered to max_images when that is smaller)."""
    if boolean("enable_interleave", opts.enable_interleave, False):
        raise InvalidParameter(
            "enable_interleave: interleaved text-and-image output is not supported by this server's "
            "image models; send false or leave it out (image sets: enable_sequential=true)",
            field="enable_interleave",
        )
    _check_modalities(opts.modalities)
    for name in ("enable_interleave", "incremental_output", "stream"):
        value = boolean(name, getattr(opts, name), False)
        if getattr(opts, name) is not None:
            log.info("parameter %s=%s accepted without effect: %s", name, str(value).lower(), _NO_EFFECT[name])
    return _apply_max_images(opts.max_images, n)


_NO_EFFECT = {
    "enable_interleave": "the answer holds images only",
    # A streamed answer's frames carry progress and then every image once, in the last frame:
    # that is both the incremental and the full form.
    "incremental_output": "streamed frames carry progress, then every image once in the last frame",
    # Streaming is asked for with the X-DashScope-SSE: enable header, as the SDKs send it.
    "stream": "streaming follows the X-DashScope-SSE header",
}


def _check_modalities(value: Any) -> None:
    if value is None:
        return
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(m, str) for m in items):
        raise InvalidParameter(f"modalities: must be a list of strings such as [\"image\"], got {value!r}",
                               field="modalities")
    unknown = [m for m in items if m not in OUTPUT_MODALITIES]
    if unknown or "image" not in items:
        raise InvalidParameter(
            f"modalities: {list(items)!r} is not an output this server makes; it answers images: "
            "send [\"image\"] (\"text\" may ride along) or leave it out",
            field="modalities",
        )
    log.info("parameter modalities=%s accepted: the answer holds images only", list(items))


def _apply_max_images(value: Any, n: int) -> int:
    """max_images is an upper bound on the images made, like n with enable_sequential: the count
    is the smaller of the two (an image set without n: max_images, n's default being 12)."""
    if value is None:
        return n
    bound = integer("max_images", value)
    if not 1 <= bound <= MAX_IMAGES_LIMIT:
        raise InvalidParameter(f"max_images: {bound} is out of range; use 1 to {MAX_IMAGES_LIMIT}",
                               field="max_images")
    if bound >= n:
        log.info("parameter max_images=%d accepted without effect: n=%d images at most", bound, n)
        return n
    log.info("max_images=%d lowers n from %d to %d", bound, n, bound)
    return bound


def check_prompt_extend(value: Any, thinking: bool, thinking_sent: bool, text_to_image: bool) -> bool | None:
    """prompt_extend, when sent, decides whether the planner rewrites the prompt (false: drawn as
    given, as InvokeAI's provider expects); not sent (None), thinking_mode decides. A value that
    changes nothing is logged."""
    if value is None:
        return None
    extend = boolean("prompt_extend", value, False)
    if not text_to_image:
        log.info("parameter prompt_extend=%s accepted without effect: prompts are rewritten for pure "
                 "text-to-image only", str(extend).lower())
    elif thinking_sent and thinking and not extend:
        log.info("prompt_extend=false: the prompt is drawn as given; thinking_mode=true has no effect")
    return extend
