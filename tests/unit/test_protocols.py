"""The dialects' request models (api/dashscope/protocol.py, api/openai/protocol.py): unknown fields
accepted and logged once per object, fields in the order of the spec they mirror, `to_request()`,
and every refusal with the message and field the HTTP tests pin (tests/e2e/test_validation.py).
Then their response models (responses.py): a few bodies pinned byte for byte."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from pydantic import ValidationError

from wanimage.api.dashscope import protocol as ds
from wanimage.api.dashscope import responses as ds_out
from wanimage.api.openai import protocol as oa
from wanimage.api.openai import responses as oa_out
from wanimage.core.request import SizeSpec
from wanimage.core.task import GenerationResult, Origin, Task
from wanimage.errors import ApiError, EmptyInput, InvalidParameter
from wanimage.types import TaskStatus

URI = "data:image/png;base64,iVBORw0KGgo="


def ds_body(content=None, **params):
    content = [{"text": "a red fox"}] if content is None else content
    return {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": content}]}, "parameters": params}


def unknown_field_logs(caplog, dialect: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{dialect} ") and "unknown" in r.getMessage()]


# ------------------------------------------------------------------ DashScope


def test_dashscope_to_request():
    body = ds.GenerationBody.model_validate(
        ds_body([{"image": URI}, {"type": "text", "text": "make it blue"}, {"image": "https://e.com/b.png"}],
                size="1K", n=2, seed=7, watermark=True)
    )
    req = body.to_request()
    assert (req.model, req.prompt, req.images) == ("wan2.7-image", "make it blue", (URI, "https://e.com/b.png"))
    assert (req.size, req.n, req.seed, req.seed_given, req.watermark) == (SizeSpec("1K", None, None), 2, 7, True, True)
    assert isinstance(body.input, ds.Input) and isinstance(body.parameters, ds.Parameters)


def test_dashscope_plain_string_content_is_the_prompt():
    req = ds.GenerationBody.model_validate(ds_body("a fox, as a string")).to_request()
    assert req.prompt == "a fox, as a string" and req.images == ()


def test_dashscope_unknown_fields_accepted_and_logged_once_per_object(caplog):
    caplog.set_level(logging.INFO, logger="wanimage.api")
    data = ds_body(n=1, foo=1, bar=2)
    data["stream"] = True
    data["input"]["messages"][0]["name"] = "someone"
    body = ds.GenerationBody.model_validate(data)
    assert body.model_extra == {"stream": True}
    assert body.parameters is not None and body.parameters.model_extra == {"foo": 1, "bar": 2}
    logs = unknown_field_logs(caplog, "dashscope")
    assert sorted(logs) == sorted([
        "dashscope GenerationBody: unknown fields ignored: stream",
        "dashscope Message: unknown fields ignored: name",
        "dashscope Parameters: unknown fields ignored: bar, foo",
    ])
    body.to_request()
    assert len(unknown_field_logs(caplog, "dashscope")) == 3  # converting logs nothing more


def test_dashscope_sdk_fields_are_known(caplog):
    caplog.set_level(logging.INFO, logger="wanimage.api")
    body = ds.GenerationBody.model_validate(ds_body(is_async=True, negative_prompt="blurry", prompt_extend=True))
    assert not unknown_field_logs(caplog, "dashscope")  # is_async: the SDK's; the other two: honoured
    req = body.to_request()
    assert (req.negative_prompt, req.prompt_extend) == ("blurry", True)


# Every parameter the Java SDK's ImageGenerationParam or the Python SDK sends, in its wire forms
# (strings where the Java SDK types it so): what reaches the request.
@pytest.mark.parametrize(("params", "expected"), [
    ({"thinking_mode": "fast"}, {"thinking_mode": True, "thinking_effort": "fast"}),
    ({"thinking_mode": "Quality"}, {"thinking_mode": True, "thinking_effort": "quality"}),
    ({"thinking_mode": "FALSE"}, {"thinking_mode": False, "thinking_effort": "balanced"}),
    ({"prompt_extend": "false"}, {"prompt_extend": False, "thinking_applies": False}),
    ({"prompt_extend": False, "thinking_mode": "balanced"}, {"prompt_extend": False, "thinking_applies": False}),
    ({"negative_prompt": "blurry, text"}, {"negative_prompt": "blurry, text"}),
    ({"max_images": "3", "enable_sequential": "true"}, {"n": 3}),
    ({"enable_interleave": "false", "incremental_output": "true", "stream": "false", "modalities": ["image"]},
     {"n": 1}),
], ids=["fast", "quality-any-case", "false-string", "extend-string", "extend-wins", "negative", "max-images",
        "no-effect"])
def test_dashscope_sdk_parameters_reach_the_request(params, expected):
    req = ds.GenerationBody.model_validate(ds_body(**params)).to_request()
    assert {k: getattr(req, k) for k in expected} == expected


@pytest.mark.parametrize(("params", "field"), [
    ({"enable_interleave": "true"}, "enable_interleave"),
    ({"modalities": ["text"]}, "modalities"),
    ({"max_images": "0"}, "max_images"),
    ({"incremental_output": "yes"}, "incremental_output"),
    ({"stream": 1}, "stream"),
    ({"thinking_mode": "deep"}, "thinking_mode"),
    ({"prompt_extend": "no"}, "prompt_extend"),
])
def test_dashscope_sdk_parameters_refused_by_name(params, field):
    with pytest.raises(InvalidParameter) as info:
        ds.GenerationBody.model_validate(ds_body(**params)).to_request()
    assert info.value.field == field and info.value.message.startswith(field + ":")


def test_image_synthesis_negative_prompt_is_carried_and_parameters_win():
    body = {"model": "wan2.7-image", "input": {"prompt": "a fox", "negative_prompt": "blurry"}}
    assert ds.SynthesisBody.model_validate(body).to_request().negative_prompt == "blurry"
    body["parameters"] = {"negative_prompt": "text"}
    assert ds.SynthesisBody.model_validate(body).to_request().negative_prompt == "text"


def test_dashscope_parameters_in_spec_order():
    assert tuple(ds.Parameters.model_fields)[: len(ds.PARAMETERS)] == ds.PARAMETERS
    assert tuple(ds.GenerationBody.model_fields) == ("model", "input", "parameters")


@pytest.mark.parametrize(
    ("data", "error", "field", "words"),
    [
        ({"model": "wan2.7-image"}, EmptyInput, "input", "input object with messages"),
        (ds_body() | {"input": {}}, EmptyInput, "input", "input object with messages"),
        ({"model": "wan2.7-image", "input": {"messages": []}}, InvalidParameter, "messages", "0 messages"),
        ({"model": "wan2.7-image", "input": {"messages": [{"role": "system", "content": "x"}]}},
         InvalidParameter, "messages", 'role "user"'),
        (ds_body([]), InvalidParameter, "content", "non-empty list"),
        (ds_body([{"text": "a", "foo": 1}]), InvalidParameter, "content", "item 1"),
        (ds_body([{"text": "a", "image": URI}]), InvalidParameter, "content", "both text and image"),
        (ds_body([{"text": "a"}, {"text": "b"}]), InvalidParameter, "content", "2 text items"),
    ],
)
def test_dashscope_shape_refused_when_the_body_is_built(data, error, field, words):
    with pytest.raises(error) as info:
        ds.GenerationBody.model_validate(data)
    assert info.value.field == field and words in info.value.message


@pytest.mark.parametrize(
    ("params", "content", "field", "message"),
    [
        ({"n": "two"}, None, "n", "n: must be an integer, got 'two'"),
        ({"size": 1024}, None, "size", "size: must be a string such as \"2K\" or \"1280*720\", got 1024"),
        ({"watermark": "yes"}, None, "watermark", "watermark: must be true or false, got 'yes'"),
        ({"seed": [1]}, None, "seed", "seed: must be an integer, got [1]"),
        ({}, [{"text": 5}], "prompt", "prompt: the text must be a string"),
        ({}, [{"text": "a"}, {"image": None}], "image", "image 1: must be a non-empty string"),
    ],
)
def test_dashscope_wrong_types_get_build_requests_message(params, content, field, message):
    body = ds.GenerationBody.model_validate(ds_body(content, **params))  # the value is kept as sent
    with pytest.raises(InvalidParameter) as info:
        body.to_request()
    assert info.value.field == field and info.value.message.startswith(message)


def test_dashscope_top_level_types_come_first():
    # A wrong JSON type of model / input / parameters is pydantic's to report, before the shape.
    for data, loc in [
        ({"model": 7, "input": {}}, ("model",)),
        ({"model": "wan2.7-image", "input": 5}, ("input",)),
        ({"model": "wan2.7-image", "input": {"messages": []}, "parameters": 5}, ("parameters",)),
    ]:
        with pytest.raises(ValidationError) as info:
            ds.GenerationBody.model_validate(data)
        assert info.value.errors()[0]["loc"] == loc


def test_dashscope_synthesis(caplog):
    caplog.set_level(logging.INFO, logger="wanimage.api")
    body = ds.SynthesisBody.model_validate(
        {"model": "wan2.7-image-pro", "input": {"prompt": "a fox", "images": [URI]}, "parameters": {"size": "2K"}}
    )
    req = body.to_request()
    # input.images are the reference images (the Java SDK sends them there): an edit, not a text-to-image
    assert (req.model, req.prompt, req.images, str(req.size)) == ("wan2.7-image-pro", "a fox", (URI,), "2K")
    assert unknown_field_logs(caplog, "dashscope") == []
    with_ref = ds.SynthesisBody.model_validate(
        {"model": "wan2.7-image", "input": {"prompt": "a fox", "ref_img": "https://a/1.png", "images": [URI]}}
    )
    assert with_ref.to_request().images == ("https://a/1.png", URI)  # ref_img first
    with pytest.raises(EmptyInput):
        ds.SynthesisBody.model_validate({"model": "wan2.7-image", "input": {}})


# ------------------------------------------------------------------ OpenAI generations


def test_openai_generations_to_request_and_options():
    body = oa.GenerationsBody.model_validate(
        {"prompt": "a fox", "size": "auto", "n": 2, "image": "https://e.com/a.png", "images": [URI],
         "response_format": "b64_json", "stream": "true", "partial_images": 2, "seed": 0}
    )
    req = body.to_request()
    assert (req.model, req.prompt, req.images, req.n) == ("wan2.7-image", "a fox", (URI,), 2)  # images wins
    assert (str(req.size), req.seed, req.seed_given) == ("2K", 0, True)  # "auto": the default size
    assert body.options() == oa.Options(response_format="b64_json", stream=True, partial_images=2)


def test_openai_fields_in_spec_order():
    fields = tuple(oa.GenerationsBody.model_fields)
    assert fields[:14] == ("prompt", "background", "model", "moderation", "n", "output_compression", "output_format",
                           "partial_images", "quality", "response_format", "size", "stream", "style", "user")
    assert tuple(oa.EditsBody.model_fields)[:2] == ("image", "prompt")


def test_openai_unknown_fields_accepted_and_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="wanimage.api")
    body = oa.GenerationsBody.model_validate({"prompt": "a fox", "foo": 1, "bar": "blurry", "quality": "hd"})
    assert body.model_extra == {"foo": 1, "bar": "blurry"}
    assert unknown_field_logs(caplog, "openai") == ["openai GenerationsBody: unknown fields ignored: bar, foo"]
    body.to_request()
    assert "openai field 'quality' has no effect on Wan 2.7" in caplog.text
    assert len(unknown_field_logs(caplog, "openai")) == 1


def test_openai_extra_body_carries_thinking_levels_prompt_extend_and_negative_prompt():
    req = oa.GenerationsBody.model_validate({"prompt": "a fox", "thinking_mode": "fast", "prompt_extend": False,
                                             "negative_prompt": "blurry"}).to_request()
    assert (req.thinking_effort, req.prompt_extend, req.negative_prompt) == ("fast", False, "blurry")
    form = {"prompt": ["make it blue"], "thinking_mode": ["quality"], "prompt_extend": ["true"],
            "negative_prompt": ["text"]}
    edit = oa.EditsBody.from_form(form, [URI]).to_request()
    assert (edit.thinking_effort, edit.prompt_extend, edit.negative_prompt) == ("quality", True, "text")
    with pytest.raises(InvalidParameter) as info:
        oa.EditsBody.from_form({**form, "thinking_mode": ["deep"]}, [URI]).to_request()
    assert info.value.field == "thinking_mode"


def test_openai_options_refused_first():
    # response_format is checked when the body is built, before the bad n reaches build_request.
    with pytest.raises(InvalidParameter) as info:
        oa.GenerationsBody.model_validate({"prompt": "a fox", "response_format": "gif", "n": "two"})
    assert info.value.field == "response_format"
    for fields, field in [({"stream": 1}, "stream"), ({"partial_images": 4}, "partial_images")]:
        with pytest.raises(InvalidParameter) as info:
            oa.GenerationsBody.model_validate({"prompt": "a fox", **fields})
        assert info.value.field == field


@pytest.mark.parametrize(("fields", "field"), [({"n": 2.5}, "n"), ({"model": "dall-e-3"}, "model"),
                                               ({"prompt": ["a", "b"]}, "prompt"), ({"watermark": "true"}, "watermark")])
def test_openai_wrong_types_get_build_requests_message(fields, field):
    body = oa.GenerationsBody.model_validate({"prompt": "a fox", **fields})
    with pytest.raises(InvalidParameter) as info:
        body.to_request()
    assert info.value.field == field and info.value.message.startswith(field)


# ------------------------------------------------------------------ OpenAI edits (multipart)


def test_openai_edits_from_form_coerces_strings():
    form = {"prompt": ["make it blue"], "n": ["2"], "seed": ["7"], "watermark": ["false"], "stream": ["true"],
            "bbox_list": ["[[[10, 10, 200, 200]], []]"], "image[]": ["https://e.com/b.png"]}
    body = oa.EditsBody.from_form(form, files=[URI])
    req = body.to_request()
    assert req.images == (URI, "https://e.com/b.png")  # the files first, then the image fields
    assert (req.n, req.seed, req.watermark) == (2, 7, False)
    assert req.bbox_list is not None and [len(b) for b in req.bbox_list] == [1, 0]
    assert body.options().stream is True


@pytest.mark.parametrize(
    ("form", "files", "field"),
    [
        ({"prompt": ["a"]}, [], "image"),
        ({"prompt": ["a"], "bbox_list[][][]": ["1", "2", "3", "4"]}, [URI], "bbox_list"),
        ({"prompt": ["a"], "color_palette[][hex]": ["#AABBCC"]}, [URI], "color_palette"),
        ({"prompt": ["a"], "mask": ["file"]}, [URI], "mask"),
        ({"prompt": ["a"], "response_format": ["gif"]}, [URI], "response_format"),
    ],
)
def test_openai_edits_refused_when_the_body_is_built(form, files, field):
    with pytest.raises(ApiError) as info:
        oa.EditsBody.from_form(form, files)
    assert info.value.field == field and info.value.message.startswith(field)


@pytest.mark.parametrize(("name", "value"), [("watermark", "maybe"), ("n", "two"), ("bbox_list", "[[[1, 2"),
                                             ("prompt", ["a", "b"])])
def test_openai_edits_bad_values_at_to_request(name, value):
    body = oa.EditsBody.from_form({"prompt": ["a"], name: value if isinstance(value, list) else [value]}, [URI])
    with pytest.raises(InvalidParameter) as info:
        body.to_request()
    assert info.value.field == name


# ------------------------------------------------------------------ text the server cannot carry

SURROGATE, NUL = "a cat \ud800", "a cat \x00"
BAD_TEXT = pytest.mark.parametrize(("text", "words"), [
    (SURROGATE, "contains a lone UTF-16 surrogate (\\ud800) at character 6; send valid Unicode text"),
    (NUL, "contains a NUL character (\\u0000) at character 6; remove it"),
], ids=["surrogate", "nul"])


def refusal(build) -> InvalidParameter:
    """The error `build()` raises, whose message must survive UTF-8, a log line and a PNG chunk."""
    with pytest.raises(InvalidParameter) as info:
        build()
    message = info.value.message
    message.encode("utf-8")
    assert message.isprintable(), message
    return info.value


@BAD_TEXT
def test_dashscope_prompt_text_refused(text, words):
    for content in ([{"text": text}], text):  # a text item, or the plain-string content
        error = refusal(lambda c=content: ds.GenerationBody.model_validate(ds_body(c)))
        assert error.field == "prompt" and error.message.startswith("prompt: the text at input.messages[0].content")
        assert error.message.endswith(words)
    error = refusal(lambda: ds.SynthesisBody.model_validate({"model": "wan2.7-image", "input": {"prompt": text}}))
    assert (error.field, error.message) == ("prompt", f"prompt: the text at input.prompt {words}")


@pytest.mark.parametrize(("where", "field"), [
    (lambda b, t: b.update(model=t), "model"),
    (lambda b, t: b["parameters"].update(size=t), "size"),
    (lambda b, t: b["parameters"].update(negative_prompt=t), "negative_prompt"),
    (lambda b, t: b["parameters"].update(color_palette=[{"hex": t, "ratio": "100.00%"}]), "color_palette"),
    (lambda b, t: b["parameters"].update(style=t), "style"),  # unknown: logged, so checked too
    (lambda b, t: b.update(stream=[t]), "stream"),
    (lambda b, t: b["input"]["messages"][0]["content"].append({"image": t}), "image"),
    (lambda b, t: b["parameters"].update({t: 1}), "parameters"),  # a key: named by its object
], ids=["model", "size", "negative_prompt", "palette", "unknown", "top-level-unknown", "image", "key"])
def test_dashscope_every_string_checked_first(where, field, caplog):
    caplog.set_level(logging.INFO, logger="wanimage.api")
    for text in (SURROGATE, NUL):
        body = ds_body(size="not a size")  # the text is refused before any other rule
        where(body, text)
        assert refusal(lambda b=body: ds.GenerationBody.model_validate(b)).field == field
    assert not unknown_field_logs(caplog, "dashscope")  # refused before anything was logged


@BAD_TEXT
def test_openai_prompt_text_refused(text, words):
    error = refusal(lambda: oa.GenerationsBody.model_validate({"prompt": text}))
    assert (error.field, error.message) == ("prompt", f"prompt: the text {words}")
    error = refusal(lambda: oa.EditsBody.from_form({"prompt": [text]}, files=[URI]))
    assert (error.field, error.message) == ("prompt", f"prompt: the text {words}")


@pytest.mark.parametrize(("fields", "field"), [
    ({"model": "wan2.7\x00"}, "model"), ({"image": ["https://e.com/\ud800.png"]}, "image"),
    ({"color_palette": [{"hex": "#\ud800"}]}, "color_palette"), ({"negative_prompt": "x\x00"}, "negative_prompt"),
    ({"user": "\udfff"}, "user"), ({"x\ud800": 1}, "body"), ({"n": "two\x00"}, "n"),
])
def test_openai_every_string_checked_first(fields, field):
    # response_format "gif" is refused first otherwise: the text comes before every other rule
    error = refusal(lambda: oa.GenerationsBody.model_validate({"prompt": "a fox", "response_format": "gif", **fields}))
    assert error.field == field
    form = {k: v if isinstance(v, list) else [v] for k, v in fields.items() if isinstance(v, str | list)}
    if form and all(isinstance(v, str) for vs in form.values() for v in vs):  # what a form can carry
        assert refusal(lambda: oa.EditsBody.from_form({"prompt": ["a"], **form}, files=[URI])).field == field


def test_valid_unicode_is_carried():
    text = "a cat \U0001f408 under \u00e9toiles, \u732b, \u200d\ufeff\ufffd"  # astral, accents, CJK, odd but valid
    assert ds.GenerationBody.model_validate(ds_body([{"text": text}])).to_request().prompt == text
    assert oa.GenerationsBody.model_validate({"prompt": text}).to_request().prompt == text


def test_text_check_walks_any_depth_and_previews_keys_short():
    deep: list = ["\x00"]
    for _ in range(100_000):  # far past the recursion limit: the walk is iterative
        deep = [deep]
    error = refusal(lambda: oa.GenerationsBody.model_validate({"prompt": "a", "extra": deep}))
    assert error.field == "extra" and len(error.message) < 300
    error = refusal(lambda: oa.GenerationsBody.model_validate({"prompt": "a", "k" * 10_000 + "\x00": 1}))
    assert error.message.startswith("body: the field name 'kkkk") and len(error.message) < 200


# ------------------------------------------------------------------ response bodies


def task(status=TaskStatus.SUCCEEDED, **fields) -> Task:
    base = dict(id="t1", status=status, model="wan2.7-image", origin=Origin.GENERATION,
                asked={"model": "wan2.7-image", "prompt": "a fox", "images": ["input://u/a.png", URI], "seed": None},
                submit_time=1775558400.123, scheduled_time=1775558401.5, end_time=1775558410.9996, progress=100,
                cancel_requested=False, owner=None, result=None, error=None)
    return Task(**{**base, **fields})


def sign(key: str) -> str:
    return f"http://h/{key}"


def wire(body) -> str:
    """The bytes a JSONResponse sends: key order and absent keys both count."""
    return json.dumps(body.render(), ensure_ascii=False, separators=(",", ":"))


TWO = GenerationResult(images=["a.png", "b.png"], size="64*32", prompt="p", revised_prompt="rp", seed=3,
                       sequential=False)
SET = GenerationResult(images=["a.png", "b.png"], size="64*32", prompt="p", revised_prompt="rp", seed=3,
                       sequential=True, planner="builtin")


def test_dashscope_legacy_synthesis_task_body_pinned():
    body = ds_out.TaskResponse.of(task(origin=Origin.SYNTHESIS, result=TWO), "r", sign)
    times = '"submit_time":"2026-04-07 10:40:00.123","scheduled_time":"2026-04-07 10:40:01.500","end_time":"2026-04-07 10:40:10.999"'
    choice = '{"finish_reason":"stop","message":{"role":"assistant","content":[{"image":"http://h/%s.png","type":"image"}]}}'
    results = '{"url":"http://h/%s.png","orig_prompt":"p","actual_prompt":"rp"}'
    assert wire(body) == (
        '{"request_id":"r","output":{"task_id":"t1","task_status":"SUCCEEDED",' + times + ',"finished":true,'
        '"choices":[' + choice % "a" + "," + choice % "b" + '],"results":[' + results % "a" + "," + results % "b"
        + '],"task_metrics":{"TOTAL":2,"SUCCEEDED":2,"FAILED":0}},'
        '"usage":{"image_count":2,"size":"64*32","input_tokens":0,"output_tokens":0,"total_tokens":0}}'
    )


def test_dashscope_sync_set_with_thinking_and_running_task_pinned():
    body = ds_out.GenerationResponse.answer(task(result=SET), "r", sign)
    assert wire(body) == (
        '{"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":['
        '{"image":"http://h/a.png","type":"image"},{"image":"http://h/b.png","type":"image"},'
        '{"type":"text","text":"rp"}]}}],"finished":true},'
        '"usage":{"image_count":2,"size":"64*32","input_tokens":0,"output_tokens":0,"total_tokens":0},"request_id":"r"}'
    )
    running = ds_out.TaskResponse.of(task(TaskStatus.RUNNING, end_time=None, progress=42, cancel_requested=True), "r", sign)
    assert wire(running) == (
        '{"request_id":"r","output":{"task_id":"t1","task_status":"RUNNING","submit_time":"2026-04-07 10:40:00.123",'
        '"scheduled_time":"2026-04-07 10:40:01.500","progress":42,"cancel_requested":true}}'
    )
    canceled = ds_out.TaskResponse.of(task(TaskStatus.CANCELED, scheduled_time=None, error=ApiError("stop", code="Canceled")), "r", sign)
    assert wire(canceled).endswith('"end_time":"2026-04-07 10:40:10.999","finished":true,"code":"Canceled","message":"stop"}}')
    assert wire(ds_out.GenerationResponse.progress("t1", 7, "r")) == (
        '{"output":{"task_id":"t1","task_status":"RUNNING","progress":7,"finished":false},"request_id":"r"}'
    )


def test_dashscope_list_keeps_request_nulls_and_java_epoch_ms():
    body = ds_out.TaskListResponse.of([task(TaskStatus.PENDING, scheduled_time=None, end_time=None)], 11, 2, 5, "r", sign)
    assert wire(body) == (
        '{"request_id":"r","page_no":2,"page_size":5,"total":11,"total_page":3,"tasks":[{"task_id":"t1",'
        '"task_status":"PENDING","submit_time":"2026-04-07 10:40:00.123","model":"wan2.7-image","request":{'
        '"prompt":"a fox","size":null,"n":null,"enable_sequential":null,"thinking_mode":null,"watermark":null,'
        '"seed":null,"bbox_list":null,"color_palette":null,"images":["http://h/u/a.png",null]}}],'
        '"data":[{"task_id":"t1","status":"PENDING","model_name":"wan2.7-image","gmt_create":1775558400123}]}'
    )


def test_openai_bodies_pinned():
    body = oa_out.ImagesResponse.of(task(origin=Origin.OPENAI, result=TWO), 17, "b64_json", ["QQ==", "Qg=="])
    assert wire(body) == (
        '{"created":17,"data":[{"b64_json":"QQ==","revised_prompt":"rp"},{"b64_json":"Qg==","revised_prompt":"rp"}],'
        '"size":"64x32","output_format":"png","usage":{"image_count":2,"input_tokens":0,"output_tokens":0,"total_tokens":0}}'
    )
    pngs = [b"A", b"B"]  # their base64: QQ== and Qg==, spliced into the rendered body
    assert oa_out.ImagesResponse.b64_json(task(origin=Origin.OPENAI, result=TWO), 17, pngs) == body.render_json()
    common = '"b64_json":"QQ==","created_at":17,"size":"64x32","quality":"auto","background":"opaque","output_format":"png"'
    partial = oa_out.StreamEvent.partial("image_edit", "QQ==", created=17, size="64x32", index=0)
    assert wire(partial) == '{"type":"image_edit.partial_image",' + common + ',"partial_image_index":0}'
    done = oa_out.StreamEvent.completed("image_generation", "QQ==", created=17, size="64x32", revised_prompt="rp")
    assert wire(done) == (
        '{"type":"image_generation.completed",' + common + ',"revised_prompt":"rp","usage":{"input_tokens":0,'
        '"output_tokens":0,"total_tokens":0,"input_tokens_details":{"image_tokens":0,"text_tokens":0}}}'
    )


def test_openai_b64_splice_is_not_fooled_by_a_prompt():
    """The markers the base64 replaces hold a fresh random id: a prompt cannot name one."""
    result = GenerationResult(images=[f"{i}.png" for i in range(11)], size="64*32", prompt="p",
                              revised_prompt='"b64-0-1" b64- "', seed=3, sequential=False)
    pngs = [bytes([i]) * (i + 1) for i in range(11)]
    body = json.loads(oa_out.ImagesResponse.b64_json(task(origin=Origin.OPENAI, result=result), 17, pngs))
    assert [base64.b64decode(item["b64_json"]) for item in body["data"]] == pngs
    assert {item["revised_prompt"] for item in body["data"]} == {'"b64-0-1" b64- "'}
