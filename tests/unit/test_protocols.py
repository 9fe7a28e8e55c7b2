"""The dialects' request models (api/dashscope/protocol.py, api/openai/protocol.py): unknown fields
accepted and logged once per object, fields in the order of the spec they mirror, `to_request()`,
and every refusal with the message and field the HTTP tests pin (tests/e2e/test_validation.py)."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from wanimage.api.dashscope import protocol as ds
from wanimage.api.openai import protocol as oa
from wanimage.core.request import SizeSpec
from wanimage.errors import ApiError, EmptyInput, InvalidParameter

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
    assert not unknown_field_logs(caplog, "dashscope")  # is_async: the SDK's; the other two: older Wan
    body.to_request()
    assert "parameter 'negative_prompt' is not supported by Wan 2.7 and is ignored" in caplog.text
    assert "parameter 'prompt_extend' is not supported by Wan 2.7 and is ignored" in caplog.text


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
    body = oa.GenerationsBody.model_validate({"prompt": "a fox", "foo": 1, "negative_prompt": "blurry", "quality": "hd"})
    assert body.model_extra == {"foo": 1, "negative_prompt": "blurry"}
    assert unknown_field_logs(caplog, "openai") == ["openai GenerationsBody: unknown fields ignored: foo, negative_prompt"]
    body.to_request()
    assert "openai field 'quality' has no effect on Wan 2.7" in caplog.text
    assert len(unknown_field_logs(caplog, "openai")) == 1


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
