"""GenerationRequest: the one request type both dialects convert into, and every rule of the
Wan 2.7 Image API (api-spec.md §1.3-§1.7) that can be checked before the input images arrive.

The `size` rules live in core/sizes.py and are re-exported here; the parameters the SDKs send
for other Model Studio image models (thinking levels, prompt_extend, negative_prompt, max_images,
...) in core/parameters.py. Rules that need the decoded images (boxes inside their image, output
aspect from the last image) run once the images are fetched (`check_boxes_inside`,
`output_size`; boxes on other images than the last: core/job.py)."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any

from ..errors import EmptyModel, InvalidParameter
from ..types import Box, Mode, PaletteColor
from .model_rules import MODEL_IDS, ModelRules, ids_with, rules_for
from .parameters import (
    OutputOptions,
    ThinkingEffort,
    check_negative_prompt,
    check_output_options,
    check_prompt_extend,
    check_thinking_mode,
)
from .parameters import boolean as _bool
from .parameters import integer as _int
from .sizes import SizeSpec, check_size_allowed, default_size, parse_size
from .sizes import (
    output_size as output_size,  # re-exported: core/job.py and the tests import it here
)
from .text import flaw

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 5000
MAX_N_SEQUENTIAL = 12
MAX_BOXES_PER_IMAGE = 2
PALETTE_MIN, PALETTE_MAX = 3, 10
SEED_MAX = 2_147_483_647
RATIO_SUM_TOLERANCE = 1e-4  # numeric palette ratios (Java's ColorPalette.ratio is a Double)

# re.ASCII: without it \d also matches other scripts' digits ("６０.００%"), which int()
# happily converts; the wire forms are ASCII only. \Z, not $: $ also matches
# before a trailing newline, which let "#C2D1E6\n" through as a colour.
_HEX = re.compile(r"^#[0-9A-Fa-f]{6}\Z")
_RATIO = re.compile(r"^(\d{1,3})\.(\d{2})%\Z", re.ASCII)


def _hundredths(ratio: str) -> int:
    """ "60.25%" -> 6025: percentage strings add up exactly."""
    m = _RATIO.match(ratio)
    assert m is not None
    return int(m.group(1)) * 100 + int(m.group(2))


@dataclass(frozen=True)
class PaletteEntry:
    hex: str  # "#RRGGBB", upper-case
    ratio: str | float  # as sent: "NN.NN%" (the documented form) or a number in [0, 1] (Java's Double)

    @property
    def weight(self) -> float:
        """The colour's share, in [0, 1]."""
        return _hundredths(self.ratio) / 10000 if isinstance(self.ratio, str) else float(self.ratio)

    def to_color(self) -> PaletteColor:
        rgb = tuple(int(self.hex[i : i + 2], 16) for i in (1, 3, 5))
        return PaletteColor(rgb=rgb, weight=self.weight)  # type: ignore[arg-type]


@dataclass(frozen=True)
class GenerationRequest:
    """A request after every rule that does not need the input images. Immutable; serialisable."""

    model: str
    prompt: str
    images: tuple[str, ...]  # references: URL, data URI, base64, oss:// key (or input:// once stored)
    size: SizeSpec
    n: int
    enable_sequential: bool
    thinking_mode: bool
    bbox_list: tuple[tuple[Box, ...], ...] | None
    color_palette: tuple[PaletteEntry, ...] | None
    watermark: bool
    seed: int
    seed_given: bool
    thinking_effort: ThinkingEffort = "balanced"  # thinking_mode's level; true is "balanced"
    prompt_extend: bool | None = None  # None: not sent, thinking_mode decides
    negative_prompt: str | None = None

    @property
    def mode(self) -> Mode:
        return Mode.of(len(self.images), self.enable_sequential)

    @property
    def thinking_applies(self) -> bool:
        """The planner rewrites the prompt: pure text-to-image, and prompt_extend when sent (false
        draws the prompt as given, as InvokeAI expects), else thinking_mode."""
        wanted = self.thinking_mode if self.prompt_extend is None else self.prompt_extend
        return wanted and self.mode is Mode.TEXT_TO_IMAGE

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "prompt": self.prompt,
            "images": list(self.images),
            "size": str(self.size),
            "n": self.n,
            "enable_sequential": self.enable_sequential,
            # a level other than the default is echoed as sent, so a re-run asks the same
            "thinking_mode": self.thinking_effort if self.thinking_mode and self.thinking_effort != "balanced"
            else self.thinking_mode,
            "bbox_list": None
            if self.bbox_list is None
            else [[[b.x1, b.y1, b.x2, b.y2] for b in boxes] for boxes in self.bbox_list],
            "color_palette": None
            if self.color_palette is None
            else [{"hex": e.hex, "ratio": e.ratio} for e in self.color_palette],
            "watermark": self.watermark,
            "seed": self.seed,
            "seed_given": self.seed_given,
            "negative_prompt": self.negative_prompt,
            "prompt_extend": self.prompt_extend,
        }

    def with_images(self, images: list[str]) -> GenerationRequest:
        return replace(self, images=tuple(images))


# ---------------------------------------------------------------- building and checking


def build_request(
    *,
    model: Any,
    prompt: Any,
    images: list[Any] | tuple[Any, ...] = (),
    size: Any = None,
    n: Any = None,
    enable_sequential: Any = None,
    thinking_mode: Any = None,
    bbox_list: Any = None,
    color_palette: Any = None,
    watermark: Any = None,
    seed: Any = None,
    negative_prompt: Any = None,
    prompt_extend: Any = None,
    output: OutputOptions = OutputOptions(),
    served: tuple[str, ...] | list[str] = (),
) -> GenerationRequest:
    """Check every image-independent rule and return the normalised request.
    `None` means "not sent" for every parameter and takes the documented default. `output`: the
    answer's shape as the SDKs may ask it (core/parameters.py). `served`: the ids this server
    serves (empty: every id), named when the model is not one of them."""
    rules = rules_for(_check_model(model, served))
    model = rules.id
    _check_applies(rules, enable_sequential=enable_sequential, bbox_list=bbox_list, color_palette=color_palette,
                   thinking_mode=thinking_mode)
    sequential = _bool("enable_sequential", enable_sequential, False)
    images = _check_images(images, rules)
    size_spec = parse_size(size) if size is not None else default_size(rules, len(images))
    check_size_allowed(size_spec, rules, len(images), sequential)
    boxes = _check_bbox_list(bbox_list, len(images), sequential)
    palette = _check_palette(color_palette, sequential)
    seed_value = _check_seed(seed)
    prompt = _check_prompt(prompt, rules.max_prompt_chars)  # checks run in the order of the messages clients know
    n_value = check_output_options(output, _check_n(n, sequential, rules))
    # ids without thinking_mode rewrite the prompt with prompt_extend, which defaults to true there
    thinking, effort = check_thinking_mode(thinking_mode) if rules.thinking else (True, "balanced")
    return GenerationRequest(
        model=model,
        prompt=prompt,
        images=tuple(images),
        size=size_spec,
        n=n_value,
        enable_sequential=sequential,
        thinking_mode=thinking,
        bbox_list=boxes,
        color_palette=palette,
        watermark=_bool("watermark", watermark, False),
        seed=secrets.randbelow(SEED_MAX + 1) if seed_value is None else seed_value,
        seed_given=seed_value is not None,
        thinking_effort=effort,
        prompt_extend=check_prompt_extend(prompt_extend, thinking, thinking_mode is not None,
                                          not images and not sequential),
        negative_prompt=check_negative_prompt(negative_prompt),
    )


def _check_model(model: Any, served: tuple[str, ...] | list[str] = ()) -> str:
    if model is None or model == "":
        raise EmptyModel("model: the model parameter is required; use wan2.7-image or wan2.7-image-pro", field="model")
    if not isinstance(model, str) or model not in MODEL_IDS or (served and model not in served):
        where = "this server serves" if served else "use one of"
        raise InvalidParameter(
            f"model: Model not exist: {model!r}; {where} {', '.join(served or MODEL_IDS)}", field="model"
        )
    return model


_ONLY_ON = {"enable_sequential": "sets", "bbox_list": "boxes", "color_palette": "palette", "thinking_mode": "thinking"}


def _check_applies(rules: ModelRules, **sent: Any) -> None:
    """A Wan 2.7 parameter sent to an id that has no such thing is refused by name, never dropped
    (false / null, what a client sends by default, passes)."""
    for name, value in sent.items():
        if value is None or value is False or getattr(rules, _ONLY_ON[name]):
            continue
        hint = "; prompt_extend rewrites the prompt on this model" if name == "thinking_mode" else ""
        raise InvalidParameter(
            f"{name}: not available on {rules.id}; it applies to {', '.join(ids_with(_ONLY_ON[name]))}{hint}",
            field=name,
        )


def _check_prompt(prompt: Any, max_chars: int = MAX_PROMPT_CHARS) -> str:
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise InvalidParameter(
            "prompt: a text prompt is required (a content item {\"text\": \"...\"}); "
            "describe the image to make or the edit to do",
            field="prompt",
        )
    if not isinstance(prompt, str):
        raise InvalidParameter("prompt: the text must be a string", field="prompt")
    if problem := flaw(prompt):  # the edges refuse it first; this covers `wanimage generate` too
        raise InvalidParameter(f"prompt: the text contains {problem}", field="prompt")
    if len(prompt) > max_chars:  # as the hosted service does: cut, not refused
        log.info("prompt of %d characters truncated to %d", len(prompt), max_chars)
        prompt = prompt[:max_chars]
    return prompt


def _check_images(images: Any, rules: ModelRules = rules_for("wan2.7-image")) -> list[str]:
    images = list(images or [])
    if len(images) > rules.max_images:
        if rules.max_images == 0:
            raise InvalidParameter(f"image: {rules.id} makes images from text only; send no input images, "
                                   "or use an editing model", field="image")
        raise InvalidParameter(
            f"image: {len(images)} input images sent; at most {rules.max_images} are allowed on {rules.id}",
            field="image"
        )
    if len(images) < rules.min_images:
        raise InvalidParameter(f"image: {rules.id} edits images: send 1 to {rules.max_images} input images "
                               "with the text", field="image")
    for k, ref in enumerate(images, start=1):
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidParameter(
                f"image {k}: must be a non-empty string (an http(s) URL, a data URI or base64)",
                field="image",
            )
    return [ref.strip() for ref in images]


def _check_n(n: Any, sequential: bool, rules: ModelRules = rules_for("wan2.7-image")) -> int:
    if n is None:
        return MAX_N_SEQUENTIAL if sequential else rules.n_default
    n = _int("n", n)
    high = MAX_N_SEQUENTIAL if sequential else rules.n_max
    if not 1 <= n <= high:
        if high == 1:
            raise InvalidParameter(f"n: {rules.id} makes one image per request; send n=1 (or leave it out)",
                                   field="n")
        mode = "with enable_sequential=true (an upper bound)" if sequential else (
            "without enable_sequential" if rules.sets else f"on {rules.id}")
        raise InvalidParameter(f"n: {n} is out of range; use 1 to {high} {mode}", field="n")
    return n


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    seed = _int("seed", seed)
    if not 0 <= seed <= SEED_MAX:
        raise InvalidParameter(f"seed: {seed} is out of range; use 0 to {SEED_MAX}", field="seed")
    return seed


# ---------------------------------------------------------------- bbox_list and color_palette


def _check_bbox_list(bbox_list: Any, n_images: int, sequential: bool) -> tuple[tuple[Box, ...], ...] | None:
    if bbox_list is None:
        return None
    if not isinstance(bbox_list, list | tuple):
        raise InvalidParameter("bbox_list: must be a list with one list of boxes per input image", field="bbox_list")
    if n_images == 0:
        raise InvalidParameter("bbox_list: needs input images; send the images the boxes refer to", field="bbox_list")
    if sequential:
        raise InvalidParameter(
            "bbox_list: cannot be combined with enable_sequential=true; send boxes for a single edit",
            field="bbox_list",
        )
    if len(bbox_list) != n_images:
        raise InvalidParameter(
            f"bbox_list: has {len(bbox_list)} entries for {n_images} input images; send one list per image "
            "([] for an image without boxes)",
            field="bbox_list",
        )
    result = []
    for k, boxes in enumerate(bbox_list, start=1):
        if not isinstance(boxes, list | tuple):
            raise InvalidParameter(f"bbox_list: entry for image {k} must be a list of boxes", field="bbox_list")
        if boxes and all(isinstance(v, int | float) and not isinstance(v, bool) for v in boxes):
            raise InvalidParameter(
                f"bbox_list: the entry for image {k} is one box {list(boxes)}, not a list of boxes; nest it one "
                f"level deeper: bbox_list = [[{list(boxes)}]] (per image, a list of [x1, y1, x2, y2] boxes)",
                field="bbox_list",
            )
        if len(boxes) > MAX_BOXES_PER_IMAGE:
            raise InvalidParameter(
                f"bbox_list: image {k} has {len(boxes)} boxes; at most {MAX_BOXES_PER_IMAGE} per image",
                field="bbox_list",
            )
        result.append(tuple(_check_box(box, k) for box in boxes))
    return tuple(result)


def _check_box(box: Any, k: int) -> Box:
    if (
        not isinstance(box, list | tuple)
        or len(box) != 4
        or any(isinstance(v, bool) or not isinstance(v, int) for v in box)
    ):
        raise InvalidParameter(
            f"bbox_list: a box of image {k} must be 4 integers [x1, y1, x2, y2], got {box!r}", field="bbox_list"
        )
    x1, y1, x2, y2 = box
    if min(box) < 0 or not (x1 < x2 and y1 < y2):
        raise InvalidParameter(
            f"bbox_list: box {list(box)} of image {k} needs 0 <= x1 < x2 and 0 <= y1 < y2 "
            "(top-left then bottom-right, in pixels)",
            field="bbox_list",
        )
    return Box(x1, y1, x2, y2)


def check_boxes_inside(boxes: tuple[tuple[Box, ...], ...] | None, sizes: list[tuple[int, int]]) -> None:
    """Each box must lie inside its image (x2 <= width, y2 <= height)."""
    for k, (image_boxes, (w, h)) in enumerate(zip(boxes or (), sizes, strict=False), start=1):
        for b in image_boxes:
            if b.x2 > w or b.y2 > h:
                raise InvalidParameter(
                    f"bbox_list: box [{b.x1}, {b.y1}, {b.x2}, {b.y2}] lies outside image {k}, which is "
                    f"{w}x{h} pixels; use coordinates of the original image",
                    field="bbox_list",
                )


def _check_palette(palette: Any, sequential: bool) -> tuple[PaletteEntry, ...] | None:
    if palette is None:
        return None
    if sequential:
        raise InvalidParameter(
            "color_palette: cannot be combined with enable_sequential=true", field="color_palette"
        )
    if not isinstance(palette, list | tuple) or not PALETTE_MIN <= len(palette) <= PALETTE_MAX:
        count = len(palette) if isinstance(palette, list | tuple) else "no"
        raise InvalidParameter(
            f"color_palette: {count} entries sent; send {PALETTE_MIN} to {PALETTE_MAX} "
            '{"hex": "#RRGGBB", "ratio": "NN.NN%"} objects',
            field="color_palette",
        )
    entries = [_check_palette_entry(i, item) for i, item in enumerate(palette, start=1)]
    _check_ratio_forms(entries)
    _check_ratio_sum(entries)
    return tuple(entries)


def _check_palette_entry(i: int, item: Any) -> PaletteEntry:
    if not isinstance(item, dict) or set(item) - {"hex", "ratio"} or not {"hex", "ratio"} <= set(item):
        raise InvalidParameter(
            f'color_palette: entry {i} must be an object {{"hex": "#RRGGBB", "ratio": "NN.NN%"}}',
            field="color_palette",
        )
    hex_, ratio = item["hex"], item["ratio"]
    if not isinstance(hex_, str) or not _HEX.match(hex_):
        raise InvalidParameter(
            f"color_palette: entry {i} hex {hex_!r} must be # followed by 6 hex digits, e.g. #C2D1E6",
            field="color_palette",
        )
    is_percent = isinstance(ratio, str) and _RATIO.match(ratio)
    is_number = isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 <= ratio <= 1
    if not (is_percent or is_number):
        raise InvalidParameter(
            f"color_palette: entry {i} ratio {ratio!r} must be a percentage with two decimals, e.g. \"25.00%\", "
            "or a number in [0, 1], e.g. 0.25",
            field="color_palette",
        )
    return PaletteEntry(hex=hex_.upper(), ratio=ratio if is_percent else float(ratio))


def _check_ratio_forms(entries: list[PaletteEntry]) -> None:
    """One form per palette: a sum of "NN.NN%" strings is exact, a sum of numbers is not."""
    first_is_percent = isinstance(entries[0].ratio, str)
    for i, entry in enumerate(entries, start=1):
        if isinstance(entry.ratio, str) != first_is_percent:
            first = '"NN.NN%" strings' if first_is_percent else "numbers in [0, 1]"
            raise InvalidParameter(
                f"color_palette: entry {i} ratio {entry.ratio!r} mixes forms with entry 1; "
                f"send every ratio in one form (entry 1 uses {first})",
                field="color_palette",
            )


def _check_ratio_sum(entries: list[PaletteEntry]) -> None:
    if isinstance(entries[0].ratio, str):
        total = sum(_hundredths(e.ratio) for e in entries)  # type: ignore[arg-type]
        if total != 10000:
            raise InvalidParameter(
                f"color_palette: ratios add up to {total // 100}.{total % 100:02d}%; "
                "they must add up to exactly 100.00%",
                field="color_palette",
            )
        return
    total_f = sum(e.weight for e in entries)
    if abs(total_f - 1) > RATIO_SUM_TOLERANCE:
        raise InvalidParameter(
            f"color_palette: ratios add up to {total_f:.4f}; they must add up to 1 (within {RATIO_SUM_TOLERANCE})",
            field="color_palette",
        )
