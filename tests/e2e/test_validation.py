"""Every request rule through HTTP, in every dialect that can express it (api-spec.md §1.3-§1.7,
§2.4-§2.5, §3, §8): the wire is what matters, so these tests speak plain httpx.

Dialects:
- ``dashscope``: POST /api/v1/services/aigc/multimodal-generation/generation (JSON);
- ``openai``: POST /v1/images/generations (JSON; Wan fields top-level, images as data URIs);
- ``openai-edit``: POST /v1/images/edits (multipart; files, form strings, lists as JSON strings).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.conftest import png_bytes

pytestmark = pytest.mark.store_independent  # every rule here is checked before submit; failed tasks and the queue limit run on both

SYNC = "/api/v1/services/aigc/multimodal-generation/generation"
ASYNC = "/api/v1/services/aigc/image-generation/generation"
GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"

DS, OA, OE = "dashscope", "openai", "openai-edit"
ALL = (DS, OA, OE)
JSON_DIALECTS = (DS, OA)  # rules about text-to-image, which the multipart edit cannot express

SMALL = "768*768"  # the smallest explicit size: fast
PNG = png_bytes(320, 240)
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
PALETTE = [
    {"hex": "#C2D1E6", "ratio": "60.00%"},
    {"hex": "#636574", "ratio": "25.00%"},
    {"hex": "#CBD4E4", "ratio": "15.00%"},
]
OMIT: Any = object()
TIMEOUT = 60


# ------------------------------------------------------------------ sending


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def send(
    server,
    dialect: str,
    *,
    model: Any = "wan2.7-image",
    prompt: Any = "a red fox in the snow",
    images: int | list[bytes] = 0,
    **params: Any,
) -> httpx.Response:
    """One generation request. `images`: a count of small PNGs, or the PNG bytes themselves.
    `size` defaults to 768*768 (pass size=OMIT to leave it out)."""
    pngs = [PNG] * images if isinstance(images, int) else list(images)
    params.setdefault("size", SMALL)
    params = {k: v for k, v in params.items() if v is not OMIT}
    if dialect == DS:
        content: list[dict[str, Any]] = [] if prompt is OMIT else [{"text": prompt}]
        content += [{"image": _uri(p)} for p in pngs]
        body: dict[str, Any] = {"input": {"messages": [{"role": "user", "content": content}]}, "parameters": params}
        if model is not OMIT:
            body["model"] = model
        return httpx.post(server.base_url + SYNC, json=body, timeout=TIMEOUT)
    if dialect == OA:
        body = dict(params)
        if model is not OMIT:
            body["model"] = model
        if prompt is not OMIT:
            body["prompt"] = prompt
        if pngs:
            body["images"] = [_uri(p) for p in pngs]
        return httpx.post(server.base_url + GENERATIONS, json=body, timeout=TIMEOUT)
    assert dialect == OE
    data = {k: _form_value(v) for k, v in params.items()}
    if model is not OMIT:
        data["model"] = model
    if prompt is not OMIT:
        data["prompt"] = prompt
    files = [("image[]", (f"{k}.png", p, "image/png")) for k, p in enumerate(pngs)]
    return httpx.post(server.base_url + EDITS, data=data, files=files, timeout=TIMEOUT)


def _uri(png: bytes) -> str:
    return PNG_URI if png is PNG else "data:image/png;base64," + base64.b64encode(png).decode()


def post_dashscope(server, body: Any, path: str = SYNC, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(server.base_url + path, json=body, headers=headers, timeout=TIMEOUT)


def ds_body(content: Any = None, *, messages: Any = OMIT, **params: Any) -> dict[str, Any]:
    params.setdefault("size", SMALL)
    if messages is OMIT:
        messages = [{"role": "user", "content": [{"text": "a red fox"}] if content is None else content}]
    return {"model": "wan2.7-image", "input": {"messages": messages}, "parameters": params}


# ------------------------------------------------------------------ checking


def _common(resp: httpx.Response, status: int) -> Any:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers.get("x-request-id")
    return resp.json()


def error_type(status: int) -> str:
    return {401: "authentication_error", 429: "rate_limit_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )


def assert_error(resp: httpx.Response, dialect: str, status: int, code: str, field: str | None) -> str:
    """The dialect's error envelope; returns the message."""
    body = _common(resp, status)
    if dialect == DS:
        assert set(body) == {"request_id", "code", "message"}, body  # flat, no `output`, no `msg`
        assert body["code"] == code
        assert body["request_id"] and body["request_id"] == resp.headers["x-request-id"]
        message = body["message"]
    else:
        assert set(body) == {"error"}, body
        err = body["error"]
        assert err["code"] == code
        assert err["param"] == field
        assert err["type"] == error_type(status)
        message = err["message"]
    assert isinstance(message, str) and message
    if field is not None:
        assert field in message, f"the message should name {field!r}: {message}"
    return message


def assert_ok(resp: httpx.Response, dialect: str) -> dict[str, Any]:
    body = _common(resp, 200)
    if dialect == DS:
        assert body["request_id"] == resp.headers["x-request-id"]
        assert body["output"]["finished"] is True
        items = [c for ch in body["output"]["choices"] for c in ch["message"]["content"]]
        images = [c for c in items if c["type"] == "image"]
        # besides images, only the thinking mode's revised prompt may appear (one text item)
        assert images and all(c["type"] in ("image", "text") for c in items)
        assert len(items) - len(images) <= 1
        assert body["usage"]["image_count"] == len(images)
    else:
        assert body["data"] and all(d.get("url") for d in body["data"])
        assert body["usage"]["image_count"] == len(body["data"])
    return body


def images_of(body: dict[str, Any], dialect: str) -> int:
    if dialect == DS:
        return body["usage"]["image_count"]
    return len(body["data"])


def size_of(body: dict[str, Any], dialect: str) -> str:
    return body["usage"]["size"] if dialect == DS else body["size"].replace("x", "*")


def invalid(resp: httpx.Response, dialect: str, field: str) -> str:
    return assert_error(resp, dialect, 400, "InvalidParameter", field)


# ------------------------------------------------------------------ model


@pytest.mark.parametrize("dialect", ALL)
def test_model_missing(server, dialect):
    resp = send(server, dialect, model=OMIT, images=1 if dialect == OE else 0)
    if dialect == DS:
        assert_error(resp, dialect, 400, "BadRequest.EmptyModel", "model")
    else:  # the OpenAI dialect defaults to wan2.7-image (as the gateways do)
        assert_ok(resp, dialect)


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("model", ["wan2.5-t2i-preview", "WAN2.7-IMAGE", "dall-e-3"])
def test_model_unknown(server, dialect, model):
    message = invalid(send(server, dialect, model=model, images=1 if dialect == OE else 0), dialect, "model")
    assert "wan2.7-image" in message


@pytest.mark.parametrize("dialect", JSON_DIALECTS)
def test_model_not_a_string(server, dialect):
    invalid(send(server, dialect, model=7), dialect, "model")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("model", ["wan2.7-image", "wan2.7-image-pro"])
def test_model_both_ids_work(server, dialect, model):
    assert_ok(send(server, dialect, model=model, images=1 if dialect == OE else 0), dialect)


# ------------------------------------------------------------------ input / messages / content (DashScope)


@pytest.mark.parametrize("body", [{"model": "wan2.7-image"}, {"model": "wan2.7-image", "input": {}}])
def test_input_missing(server, body):
    assert_error(post_dashscope(server, body), DS, 400, "BadRequest.EmptyInput", "input")


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}],
        "a red fox",
        {"role": "user", "content": [{"text": "a"}]},
    ],
    ids=["none", "two", "string", "object"],
)
def test_messages_exactly_one(server, messages):
    invalid(post_dashscope(server, ds_body(messages=messages)), DS, "messages")


@pytest.mark.parametrize("role", ["assistant", "system", "User", None])
def test_message_role_user(server, role):
    body = ds_body(messages=[{"role": role, "content": [{"text": "a red fox"}]}])
    invalid(post_dashscope(server, body), DS, "messages")


def test_message_without_role_is_user(server):
    assert_ok(post_dashscope(server, ds_body(messages=[{"content": [{"text": "a red fox"}]}])), DS)


def test_content_plain_string_is_the_prompt(server):
    resp = post_dashscope(server, ds_body(content="a red fox, as a plain string"))
    assert_ok(resp, DS)


@pytest.mark.parametrize(
    "content",
    [[], {"text": "a"}, 5, None, ["a red fox"], [{"text": "a"}, "b"], [{"text": "a", "image": PNG_URI}], [{}]],
    ids=["empty", "object", "number", "null", "list-of-string", "mixed", "text-and-image", "empty-item"],
)
def test_content_shapes_refused(server, content):
    body = ds_body()
    body["input"]["messages"][0]["content"] = content
    invalid(post_dashscope(server, body), DS, "content")


def test_content_type_key_tolerated(server):
    assert_ok(post_dashscope(server, ds_body([{"type": "text", "text": "a red fox"}])), DS)


@pytest.mark.parametrize(
    "item", [{"text": "a red fox", "foo": 1}, {"video": "https://example.com/a.mp4"}, {"image_url": PNG_URI}]
)
def test_content_unknown_key(server, item):
    invalid(post_dashscope(server, ds_body([item])), DS, "content")


def test_content_two_text_items(server):
    message = invalid(post_dashscope(server, ds_body([{"text": "a red fox"}, {"text": "in the snow"}])), DS, "content")
    assert "2 text items" in message


def test_content_text_position_is_free(server):
    assert_ok(post_dashscope(server, ds_body([{"image": PNG_URI}, {"text": "make it blue"}])), DS)


# ------------------------------------------------------------------ images and prompt


@pytest.mark.parametrize("dialect", ALL)
def test_images_at_most_nine(server, dialect):
    assert_ok(send(server, dialect, images=9), dialect)
    message = invalid(send(server, dialect, images=10), dialect, "image")
    assert "10" in message


@pytest.mark.parametrize("dialect", ALL)
def test_image_side_at_least_240(server, dialect):
    assert_ok(send(server, dialect, images=[png_bytes(240, 240)]), dialect)
    invalid(send(server, dialect, images=[png_bytes(320, 239)]), dialect, "image")


@pytest.mark.parametrize("dialect", ALL)
def test_image_not_an_image(server, dialect):
    invalid(send(server, dialect, images=[b"this is not an image at all"]), dialect, "image")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("prompt", [OMIT, "", "   "], ids=["missing", "empty", "blank"])
def test_prompt_required(server, dialect, prompt):
    # Also with input images: an edit needs its instruction (DashScope: a content list holding
    # only the image; an empty content list is a `content` error instead).
    for images in (0, 1) if dialect == OA else (1,):
        invalid(send(server, dialect, prompt=prompt, images=images), dialect, "prompt")


@pytest.mark.parametrize("dialect", JSON_DIALECTS)
def test_prompt_not_a_string(server, dialect):
    if dialect == DS:
        resp = post_dashscope(server, ds_body([{"text": 5}]))
    else:
        resp = send(server, dialect, prompt=["a", "fox"])
    invalid(resp, dialect, "prompt")


def test_prompt_the_server_cannot_carry_refused_before_a_task(server):
    # A lone surrogate is valid JSON ("\\ud800") but no UTF-8 (the PNG's text chunk, the task
    # store) can hold it; NUL neither (PostgreSQL text). json.dumps escapes them (ensure_ascii);
    # httpx's json= would refuse to encode the surrogate on the client side.
    def post_json(path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(server.base_url + path, content=json.dumps(body), timeout=TIMEOUT,
                          headers={"content-type": "application/json"})

    def tasks() -> int:
        return server.service.store.list(page_no=1, page_size=1)[1]

    before = tasks()
    ds = ds_body([{"text": "a cat \ud800"}])
    for path in (SYNC, ASYNC):
        message = invalid(post_json(path, ds), DS, "prompt")
        assert message.startswith("prompt:") and "lone UTF-16 surrogate (\\ud800) at character 6" in message
    message = invalid(post_json(GENERATIONS, {"prompt": "a cat \ud800", "size": "768x768"}), OA, "prompt")
    assert message.startswith("prompt:") and "lone UTF-16 surrogate (\\ud800) at character 6" in message
    # a form cannot carry a surrogate (its bytes are decoded as UTF-8 or Latin-1), but NUL it can
    resp = httpx.post(server.base_url + EDITS, data={"prompt": "a cat \x00"}, files=[("image", ("a.png", PNG))],
                      timeout=TIMEOUT)
    assert "NUL character (\\u0000) at character 6" in invalid(resp, OE, "prompt")
    assert tasks() == before


@pytest.mark.parametrize("dialect", ALL)
def test_prompt_over_5000_characters_truncated_not_refused(server, dialect):
    assert_ok(send(server, dialect, prompt="狐" * 6000, images=1 if dialect == OE else 0), dialect)


# ------------------------------------------------------------------ n


@pytest.mark.parametrize("dialect", ALL)
def test_n_without_sequential_1_to_4(server, dialect):
    images = 1 if dialect == OE else 0
    assert images_of(assert_ok(send(server, dialect, images=images, n=4), dialect), dialect) == 4
    for n in (0, 5):
        message = invalid(send(server, dialect, images=images, n=n), dialect, "n")
        assert "1 to 4" in message


@pytest.mark.parametrize("dialect", ALL)
def test_n_with_sequential_1_to_12(server, dialect):
    images = 1 if dialect == OE else 0
    body = assert_ok(send(server, dialect, images=images, n=12, enable_sequential=True), dialect)
    assert 1 <= images_of(body, dialect) <= 12  # an upper bound: the model may return fewer
    for n in (0, 13):
        message = invalid(send(server, dialect, images=images, n=n, enable_sequential=True), dialect, "n")
        assert "1 to 12" in message


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("n", ["two", 2.5, [2]], ids=["word", "fraction", "list"])
def test_n_must_be_an_integer(server, dialect, n):
    if dialect == OE and isinstance(n, list):
        n = "[2]"
    invalid(send(server, dialect, images=1 if dialect == OE else 0, n=n), dialect, "n")


# ------------------------------------------------------------------ size


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize(("size", "expected"), [("768x768", "768*768"), ("768X768", "768*768"), ("1k", None)])
def test_size_forms_accepted(server, dialect, size, expected):
    body = assert_ok(send(server, dialect, size=size, images=1 if dialect == OE else 0), dialect)
    if expected:
        assert size_of(body, dialect) == expected


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("size", ["3K", "2K*1024", "1024", "big", "1024-768", 1024])
def test_size_malformed(server, dialect, size):
    invalid(send(server, dialect, size=size, images=1 if dialect == OE else 0), dialect, "size")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("size", ["767*768", "768*767", "2049*2048", "2048*2049", "2401*300", "300*2401"])
def test_size_out_of_bounds(server, dialect, size):
    invalid(send(server, dialect, size=size, images=1 if dialect == OE else 0), dialect, "size")


@pytest.mark.parametrize("dialect", ALL)
def test_size_ratio_8_accepted(server, dialect):
    body = assert_ok(send(server, dialect, size="2400*300", images=1 if dialect == OE else 0), dialect)
    assert size_of(body, dialect) == "2400*300"


@pytest.mark.parametrize("dialect", ALL)
def test_size_pro_above_2048_only_for_pure_text_to_image(server, dialect):
    pro = "wan2.7-image-pro"
    if dialect != OE:
        assert_ok(send(server, dialect, model=pro, size="2049*2048"), dialect)
        invalid(send(server, dialect, model=pro, size="2049*2048", enable_sequential=True, n=1), dialect, "size")
    invalid(send(server, dialect, model=pro, size="2049*2048", images=1), dialect, "size")


@pytest.mark.parametrize("dialect", ALL)
def test_size_tier_follows_last_image(server, dialect):
    body = assert_ok(send(server, dialect, size="1K", images=[png_bytes(240, 240), png_bytes(320, 240)]), dialect)
    assert size_of(body, dialect) == "1184*880"  # 4:3 at about 1024*1024, multiples of 16


# ------------------------------------------------------------------ 4K


@pytest.mark.parametrize("dialect", JSON_DIALECTS)
def test_4k_pro_text_to_image_only(server, dialect):
    pro = "wan2.7-image-pro"
    body = assert_ok(send(server, dialect, model=pro, size="4K"), dialect)
    assert size_of(body, dialect) == "4096*4096"
    for kwargs in (
        {"model": "wan2.7-image", "size": "4K"},
        {"model": pro, "size": "4k", "enable_sequential": True, "n": 1},
        {"model": pro, "size": "4K", "images": 1},
    ):
        message = invalid(send(server, dialect, **kwargs), dialect, "size")
        assert "4K" in message


def test_4k_refused_for_edits_multipart(server):
    message = invalid(send(server, OE, model="wan2.7-image-pro", size="4K", images=1), OE, "size")
    assert "4K" in message


# ------------------------------------------------------------------ bbox_list


@pytest.mark.parametrize("dialect", ALL)
def test_bbox_list_accepted(server, dialect):
    boxes = [[], [[0, 0, 320, 240], [10, 10, 100, 100]]]
    assert_ok(send(server, dialect, images=2, bbox_list=boxes), dialect)


@pytest.mark.parametrize("dialect", JSON_DIALECTS)
def test_bbox_list_needs_images(server, dialect):
    invalid(send(server, dialect, bbox_list=[[[0, 0, 10, 10]]]), dialect, "bbox_list")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("entries", [1, 3])
def test_bbox_list_one_entry_per_image(server, dialect, entries):
    message = invalid(send(server, dialect, images=2, bbox_list=[[] for _ in range(entries)]), dialect, "bbox_list")
    assert "2 input images" in message


@pytest.mark.parametrize("dialect", ALL)
def test_bbox_list_at_most_two_boxes_per_image(server, dialect):
    boxes = [[[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]]
    invalid(send(server, dialect, images=1, bbox_list=boxes), dialect, "bbox_list")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("box", [[0, 0, 10], [0, 0, 10, 10, 10], [0, 0, 10.5, 10], [0, 0, "10", 10]])
def test_bbox_box_is_four_integers(server, dialect, box):
    invalid(send(server, dialect, images=1, bbox_list=[[box]]), dialect, "bbox_list")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("box", [[10, 0, 10, 10], [20, 0, 10, 10], [0, 10, 10, 10], [0, 20, 10, 10], [-1, 0, 10, 10]])
def test_bbox_corners_ordered(server, dialect, box):
    invalid(send(server, dialect, images=1, bbox_list=[[box]]), dialect, "bbox_list")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("box", [[0, 0, 321, 240], [0, 0, 320, 241], [300, 200, 400, 300]])
def test_bbox_inside_the_image(server, dialect, box):
    message = invalid(send(server, dialect, images=1, bbox_list=[[box]]), dialect, "bbox_list")
    assert "320x240" in message


@pytest.mark.parametrize("dialect", ALL)
def test_bbox_with_sequential_refused(server, dialect):
    resp = send(server, dialect, images=1, bbox_list=[[[0, 0, 10, 10]]], enable_sequential=True, n=2)
    assert "enable_sequential" in invalid(resp, dialect, "bbox_list")


# ------------------------------------------------------------------ color_palette


@pytest.mark.parametrize("dialect", ALL)
def test_color_palette_accepted(server, dialect):
    assert_ok(send(server, dialect, images=1 if dialect == OE else 0, color_palette=PALETTE), dialect)


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("count", [2, 11])
def test_color_palette_3_to_10_entries(server, dialect, count):
    palette = [{"hex": "#AABBCC", "ratio": "10.00%"}] * (count - 1) + [
        {"hex": "#AABBCC", "ratio": f"{100 - 10 * (count - 1)}.00%"}
    ]
    if count == 11:
        palette = [{"hex": "#AABBCC", "ratio": "9.00%"}] * 10 + [{"hex": "#AABBCC", "ratio": "10.00%"}]
    message = invalid(send(server, dialect, images=1 if dialect == OE else 0, color_palette=palette), dialect,
                      "color_palette")
    assert "3 to 10" in message


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("hex_", ["C2D1E6", "#C2D1E", "#GGGGGG", "blue"])
def test_color_palette_hex_form(server, dialect, hex_):
    palette = [{"hex": hex_, "ratio": "60.00%"}] + PALETTE[1:]
    invalid(send(server, dialect, images=1 if dialect == OE else 0, color_palette=palette), dialect, "color_palette")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("ratio", ["60%", "60.0%", "60.00", 60, "0.6"])
def test_color_palette_ratio_form(server, dialect, ratio):
    palette = [{"hex": "#C2D1E6", "ratio": ratio}] + PALETTE[1:]
    invalid(send(server, dialect, images=1 if dialect == OE else 0, color_palette=palette), dialect, "color_palette")


@pytest.mark.parametrize("dialect", ALL)
def test_color_palette_sums_to_exactly_100(server, dialect):
    images = 1 if dialect == OE else 0
    exact = [{"hex": "#AABBCC", "ratio": r} for r in ("33.33%", "33.33%", "33.34%")]
    assert_ok(send(server, dialect, images=images, color_palette=exact), dialect)
    short = [{"hex": "#AABBCC", "ratio": r} for r in ("33.33%", "33.33%", "33.33%")]
    message = invalid(send(server, dialect, images=images, color_palette=short), dialect, "color_palette")
    assert "99.99%" in message


@pytest.mark.parametrize("dialect", ALL)
def test_color_palette_with_sequential_refused(server, dialect):
    resp = send(server, dialect, images=1 if dialect == OE else 0, color_palette=PALETTE, enable_sequential=True, n=2)
    assert "enable_sequential" in invalid(resp, dialect, "color_palette")


# ------------------------------------------------------------------ seed and booleans


@pytest.mark.parametrize("dialect", ALL)
def test_seed_range(server, dialect):
    images = 1 if dialect == OE else 0
    for seed in (0, 2147483647):
        assert_ok(send(server, dialect, images=images, seed=seed), dialect)
    for seed in (-1, 2147483648):
        assert "2147483647" in invalid(send(server, dialect, images=images, seed=seed), dialect, "seed")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("name", ["enable_sequential", "thinking_mode", "watermark"])
def test_booleans_must_be_booleans(server, dialect, name):
    # DashScope (the Java SDK sends strings) and multipart take "true"/"false" as the booleans; OpenAI JSON does not
    value = "true" if dialect == OA else "maybe"
    invalid(send(server, dialect, images=1 if dialect == OE else 0, **{name: value}), dialect, name)


@pytest.mark.parametrize("dialect", ALL)
def test_booleans_accepted(server, dialect):
    resp = send(server, dialect, images=1 if dialect == OE else 0, watermark=True, thinking_mode=False,
                enable_sequential=False)
    assert_ok(resp, dialect)


# ------------------------------------------------------------------ tolerated and ignored


@pytest.mark.parametrize("dialect", ALL)
def test_unknown_parameters_tolerated(server, dialect):
    assert_ok(send(server, dialect, images=1 if dialect == OE else 0, is_async=True, foo="bar"), dialect)


@pytest.mark.parametrize("dialect", ALL)
def test_negative_prompt_and_prompt_extend_accepted(server, dialect):
    resp = send(server, dialect, images=1 if dialect == OE else 0, negative_prompt="blurry", prompt_extend=True)
    assert_ok(resp, dialect)


@pytest.mark.parametrize("dialect", ALL)
def test_thinking_mode_with_images_ignored(server, dialect):
    assert_ok(send(server, dialect, images=1, thinking_mode=True), dialect)


@pytest.mark.parametrize("dialect", ALL)
def test_thinking_mode_with_sequential_ignored(server, dialect):
    assert_ok(send(server, dialect, images=1 if dialect == OE else 0, thinking_mode=True,
                   enable_sequential=True, n=2), dialect)


# ------------------------------------------------------------------ endpoints and bodies


def test_async_endpoint_needs_the_async_header(server):
    body = ds_body()
    resp = post_dashscope(server, body, path=ASYNC)
    assert_error(resp, DS, 403, "AccessDenied", None)
    assert "X-DashScope-Async" in resp.json()["message"]
    resp = post_dashscope(server, body, path=ASYNC, headers={"X-DashScope-Async": "disable"})
    assert_error(resp, DS, 403, "AccessDenied", None)
    resp = post_dashscope(server, body, path=ASYNC, headers={"X-DashScope-Async": "enable"})
    out = _common(resp, 200)["output"]
    assert out["task_status"] == "PENDING" and out["task_id"]


def test_async_endpoint_validates_like_sync(server):
    body = ds_body(n=5)
    resp = post_dashscope(server, body, path=ASYNC, headers={"X-DashScope-Async": "enable"})
    invalid(resp, DS, "n")


@pytest.mark.parametrize("dialect", JSON_DIALECTS)
@pytest.mark.parametrize("raw", [b"{bad json", b'{"model": "wan2.7-image",', b"\xff\xfe"])
def test_malformed_json(server, dialect, raw):
    path = SYNC if dialect == DS else GENERATIONS
    resp = httpx.post(server.base_url + path, content=raw, headers={"content-type": "application/json"})
    assert_error(resp, dialect, 400, "InvalidParameter", "body")


@pytest.mark.parametrize("dialect", JSON_DIALECTS)
def test_body_not_an_object(server, dialect):
    path = SYNC if dialect == DS else GENERATIONS
    resp = httpx.post(server.base_url + path, json=["a", "list"])
    body = _common(resp, 400)
    assert (body["code"] if dialect == DS else body["error"]["code"]) == "InvalidParameter"


@pytest.mark.parametrize(
    ("path", "dialect"),
    [("/api/v1/services/aigc/no-such-service/generation", DS), ("/nope", DS), ("/v1/images/variations", OA)],
)
def test_unknown_path(server, path, dialect):
    resp = httpx.post(server.base_url + path, json={})
    message = assert_error(resp, dialect, 404, "InvalidURL", None)
    assert path in message and "did you mean" not in message


@pytest.mark.parametrize(
    ("path", "meant"),
    [("/services/aigc/multimodal-generation/generation", "/api/v1/services/aigc/multimodal-generation/generation"),
     ("/api/services/aigc/multimodal-generation/generation", "/api/v1/services/aigc/multimodal-generation/generation"),
     ("/api/v1/images/generations", "/v1/images/generations"),
     ("/images/generations", "/v1/images/generations")],
    ids=["no-prefix", "no-version", "openai-under-dashscope", "openai-no-prefix"],
)
def test_a_path_under_the_wrong_prefix_names_the_endpoint_meant(server, path, meant):
    """A base URL without /api/v1 (or with it, for the OpenAI SDK) is the commonest set-up slip."""
    resp = httpx.post(server.base_url + path, json={})
    assert resp.status_code == 404
    assert f"did you mean POST {meant}?" in resp.text and "base URL ends in /api/v1" in resp.text


def test_multipart_flattened_bbox_list(server):
    # What the openai SDK makes of extra_body={"bbox_list": [[[1, 2, 3, 4]]]} in a multipart edit.
    data = {"prompt": "a red fox", "size": SMALL, "bbox_list[][][]": ["1", "2", "3", "4"]}
    resp = httpx.post(server.base_url + EDITS, data=data, files=[("image", ("a.png", PNG, "image/png"))])
    message = invalid(resp, OE, "bbox_list")
    assert "JSON" in message


def test_multipart_flattened_color_palette(server):
    data = {"prompt": "a red fox", "size": SMALL, "color_palette[][hex]": ["#AABBCC"] * 3,
            "color_palette[][ratio]": ["50.00%", "25.00%", "25.00%"]}
    resp = httpx.post(server.base_url + EDITS, data=data, files=[("image", ("a.png", PNG, "image/png"))])
    invalid(resp, OE, "color_palette")


def test_multipart_lists_as_json_strings(server):
    data = {"prompt": "a red fox", "size": SMALL, "bbox_list": json.dumps([[[10, 10, 200, 200]]]),
            "color_palette": json.dumps(PALETTE), "n": "2", "seed": "7", "watermark": "false"}
    resp = httpx.post(server.base_url + EDITS, data=data, files=[("image", ("a.png", PNG, "image/png"))])
    assert len(assert_ok(resp, OE)["data"]) == 2


def test_multipart_bbox_list_not_json(server):
    data = {"prompt": "a red fox", "size": SMALL, "bbox_list": "[[[10, 10, 200"}
    resp = httpx.post(server.base_url + EDITS, data=data, files=[("image", ("a.png", PNG, "image/png"))])
    invalid(resp, OE, "bbox_list")


def test_multipart_edit_needs_an_image(server):
    resp = httpx.post(server.base_url + EDITS, data={"prompt": "a red fox", "size": SMALL}, files=[("x", ("", b""))])
    invalid(resp, OE, "image")


# ------------------------------------------------------------------ body size limit


@pytest.fixture
def small_body_server(make_server):
    return make_server(max_body_bytes=100_000)


def _big_requests(server, chunked: bool):
    """(dialect, response) for a body over 100 kB in each dialect."""
    big = png_bytes(1200, 1200, (1, 2, 3)) + b"\0" * 150_000
    big_uri = "data:image/png;base64," + base64.b64encode(big).decode()

    def body(payload: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(payload).encode()
        if not chunked:
            return {"content": raw}
        return {"content": iter([raw[i : i + 16_384] for i in range(0, len(raw), 16_384)])}

    headers = {"content-type": "application/json"}
    ds_payload = ds_body([{"text": "a red fox"}, {"image": big_uri}])
    yield DS, httpx.post(server.base_url + SYNC, headers=headers, timeout=TIMEOUT, **body(ds_payload))
    oa_payload = {"prompt": "a red fox", "images": [big_uri], "size": SMALL}
    yield OA, httpx.post(server.base_url + GENERATIONS, headers=headers, timeout=TIMEOUT, **body(oa_payload))
    if chunked:
        boundary = b"wanimageboundary"
        parts = [
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na red fox\r\n',
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + big + b"\r\n",
            b"--" + boundary + b"--\r\n",
        ]
        yield OE, httpx.post(
            server.base_url + EDITS,
            content=iter(parts),
            headers={"content-type": "multipart/form-data; boundary=" + boundary.decode()},
            timeout=TIMEOUT,
        )
    else:
        yield OE, httpx.post(server.base_url + EDITS, data={"prompt": "a red fox"},
                             files=[("image", ("a.png", big, "image/png"))], timeout=TIMEOUT)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit(small_body_server, chunked):
    seen = set()
    for dialect, resp in _big_requests(small_body_server, chunked):
        seen.add(dialect)
        field = None if dialect == DS else "body"
        message = assert_error(resp, dialect, 413, "BadRequest.TooLarge", field)
        assert "WANIMAGE_MAX_BODY_BYTES" in message
    assert seen == set(ALL)
    # Under the limit the same server answers normally.
    assert_ok(send(small_body_server, DS), DS)


# ------------------------------------------------------------------ failed generation


@pytest.mark.every_store
@pytest.mark.parametrize("dialect", ALL)
def test_failed_generation(server, dialect):
    resp = send(server, dialect, prompt="please EXPLODE now", images=1 if dialect == OE else 0)
    assert resp.status_code >= 500
    body = _common(resp, resp.status_code)
    assert resp.headers["x-should-retry"] == "false"
    if dialect == DS:
        assert set(body) == {"request_id", "code", "message"}
        assert body["code"].startswith("InternalError")
        assert body["message"] and body["request_id"] == resp.headers["x-request-id"]
    else:
        assert body["error"]["code"].startswith("InternalError")
        assert body["error"]["type"] == "server_error"
        assert body["error"]["message"]
    assert "Traceback" not in resp.text


# ------------------------------------------------------------------ queue full


@pytest.mark.every_store
def test_queue_full_throttles(make_server):
    idle = make_server(max_queue=1, workers=0)
    health = httpx.get(idle.base_url + "/health").json()
    assert health["workers"] == 0  # nothing drains the queue
    assert len(idle.service.workers) == 0
    headers = {"X-DashScope-Async": "enable"}
    first = post_dashscope(idle, ds_body(), path=ASYNC, headers=headers)
    assert _common(first, 200)["output"]["task_status"] == "PENDING"
    second = post_dashscope(idle, ds_body(), path=ASYNC, headers=headers)
    assert_error(second, DS, 429, "Throttling", None)
    assert int(second.headers["retry-after"]) > 0
    # The OpenAI dialect submits to the same queue.
    third = send(idle, OA)
    assert_error(third, OA, 429, "Throttling", None)
    assert int(third.headers["retry-after"]) > 0
    # Still PENDING: the refused requests did not queue anything.
    task = httpx.get(idle.api_base + "/tasks/" + first.json()["output"]["task_id"]).json()
    assert task["output"]["task_status"] == "PENDING"
    assert httpx.get(idle.base_url + "/health").json()["queue_depth"] == 1


# ------------------------------------------------------------------ unexpected errors


def test_unexpected_error_keeps_the_envelope(make_server):
    srv = make_server()

    def broken(*args: Any, **kwargs: Any):
        raise RuntimeError("a bug, by test design")

    srv.service.get = broken  # GET /tasks/{id} now hits an unexpected exception
    srv.service.submit = broken
    with httpx.Client(base_url=srv.base_url, timeout=TIMEOUT) as client:
        for _ in range(2):  # the keep-alive connection survives the first 500
            resp = client.get("/api/v1/tasks/some-task")
            assert_error(resp, DS, 500, "InternalError", None)
            assert resp.headers["x-should-retry"] == "false"
            assert "a bug" not in resp.text and "Traceback" not in resp.text
        resp = client.post(GENERATIONS, json={"prompt": "a red fox", "size": SMALL})
        assert_error(resp, OA, 500, "InternalError", None)
        assert client.get("/health").status_code == 200
