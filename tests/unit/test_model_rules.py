"""Every Model Studio image id is accepted with its rules (core/model_rules.py, docs/api.md "Model
ids"), refused by name where it does not take a value, and served by what the configuration says."""

from __future__ import annotations

import pytest
from PIL import Image

from wanimage.core.job import resolve_job
from wanimage.core.model_rules import RULES
from wanimage.core.request import build_request
from wanimage.engines.diffusers.config import EngineConfigError, parse_config
from wanimage.errors import InvalidParameter
from wanimage.types import MODELS, Mode

PNG = "data:image/png;base64,iVBORw0KGgo="  # a reference: build_request does not decode images


def build(model: str, images: int = 0, **kw):
    return build_request(model=model, prompt="一只猫 a cat", images=[PNG] * images, **kw)


def refused(field: str, model: str, images: int = 0, **kw) -> str:
    with pytest.raises(InvalidParameter) as info:
        build(model, images, **kw)
    assert info.value.field == field, info.value.message
    return info.value.message


# id, input images, what it draws without size and n: (size, n)
DEFAULTS = [
    ("wan2.7-image", 0, "2K", 1),
    ("wan2.7-image-pro", 0, "2K", 1),
    ("wan2.6-t2i", 0, "1280*1280", 4),
    ("wan2.6-image", 1, "1K", 4),
    ("qwen-image", 0, "1664*928", 1),
    ("qwen-image-plus", 0, "1664*928", 1),
    ("qwen-image-max", 0, "1664*928", 1),
    ("qwen-image-edit", 1, "1K", 1),
    ("qwen-image-edit-plus", 3, "1K", 1),
    ("qwen-image-edit-max", 2, "1K", 1),
    ("qwen-image-2.0", 0, "2048*2048", 1),
    ("qwen-image-2.0-pro", 3, "2K", 1),
]


def test_the_table_covers_every_id_the_sdks_send():
    assert [row[0] for row in DEFAULTS] == list(MODELS) == list(RULES)


@pytest.mark.parametrize(("model", "images", "size", "n"), DEFAULTS)
def test_each_id_is_accepted_with_its_defaults(model, images, size, n):
    req = build(model, images)
    assert (req.model, str(req.size), req.n) == (model, size, n)


@pytest.mark.parametrize(("model", "kw", "field", "words"), [
    ("qwen-image", {"n": 2}, "n", "qwen-image makes one image per request"),
    ("qwen-image-max", {"size": "1216*832"}, "size", "one of 1664*928, 1472*1104, 1328*1328, 1104*1472, 928*1664"),
    ("qwen-image-plus", {"size": "2K"}, "size", "not 2K"),
    ("qwen-image", {"images": 1}, "image", "makes images from text only"),
    ("wan2.6-t2i", {"images": 1}, "image", "makes images from text only"),
    ("wan2.6-t2i", {"n": 5}, "n", "use 1 to 4 on wan2.6-t2i"),
    ("wan2.6-t2i", {"size": "1600*1600"}, "size", "between 768*768 (589824) and 1440*1440"),
    ("wan2.6-t2i", {"size": "2000*480"}, "size", "beyond 1:4 or 4:1"),
    ("wan2.6-image", {}, "image", "wan2.6-image edits images: send 1 to 4"),
    ("wan2.6-image", {"images": 5}, "image", "at most 4 are allowed on wan2.6-image"),
    ("qwen-image-edit", {"images": 2}, "image", "at most 1 are allowed"),
    ("qwen-image-edit-plus", {"images": 4}, "image", "at most 3"),
    ("qwen-image-edit-max", {"images": 1, "size": "2688*1536"}, "size", "between 512 and 2048"),
    ("qwen-image-edit-plus", {"images": 1, "n": 7}, "n", "use 1 to 6"),
    ("qwen-image-2.0", {"size": "4K"}, "size", "4K is available only on wan2.7-image-pro"),
    ("qwen-image-2.0-pro", {"images": 4}, "image", "at most 3"),
    ("wan2.7-image", {"images": 10}, "image", "at most 9"),
    ("qwen-image", {"thinking_mode": True}, "thinking_mode", "prompt_extend rewrites the prompt"),
    ("qwen-image-2.0", {"enable_sequential": True}, "enable_sequential", "applies to wan2.7-image, wan2.7-image-pro"),
    ("qwen-image-edit-plus", {"images": 1, "bbox_list": [[[0, 0, 5, 5]]]}, "bbox_list", "not available"),
    ("wan2.6-t2i", {"color_palette": []}, "color_palette", "not available on wan2.6-t2i"),
])
def test_what_an_id_does_not_take_is_refused_by_name(model, kw, field, words):
    images = kw.pop("images", 0)
    assert words in refused(field, model, images, **kw)


@pytest.mark.parametrize(("model", "images", "size"), [
    # InvokeAI's canvas sizes for its five ids, and 1216*832 where the id takes it
    ("qwen-image-2.0-pro", 0, "2688*1536"), ("qwen-image-2.0", 0, "1216*832"), ("qwen-image-max", 0, "928*1664"),
    ("wan2.6-t2i", 0, "1440*810"), ("wan2.6-t2i", 0, "1216*832"), ("qwen-image-edit-max", 2, "1216*832"),
    ("qwen-image-2.0", 2, "1536*2688"), ("wan2.7-image-pro", 0, "4K"),
])
def test_sizes_clients_send_are_accepted(model, images, size):
    assert str(build(model, images, size=size).size) == size


def test_false_and_null_wan_parameters_pass_on_every_id():
    """What SDKs send by default (enable_sequential=false, thinking_mode=false) is no reason to refuse."""
    for model in MODELS:
        images = RULES[model].min_images
        build(model, images, enable_sequential=False, thinking_mode=False, bbox_list=None, color_palette=None)


def test_ids_without_thinking_mode_rewrite_with_prompt_extend():
    assert build("qwen-image").thinking_applies  # prompt_extend defaults to true on the hosted service
    assert not build("qwen-image", prompt_extend=False).thinking_applies  # InvokeAI: drawn as given
    assert not build("wan2.7-image", thinking_mode=False).thinking_applies


def test_an_id_not_served_names_the_served_ids():
    served = ("wan2.7-image", "wan2.7-image-pro")
    message = refused("model", "qwen-image", served=served)
    assert message == "model: Model not exist: 'qwen-image'; this server serves wan2.7-image, wan2.7-image-pro"
    assert "this server serves wan2.7-image, wan2.7-image-pro" in refused("model", "qwen-imagee", served=served)
    assert "use one of wan2.7-image, wan2.7-image-pro, wan2.6-t2i" in refused("model", "dall-e-3")


def test_tier_budgets_follow_the_id_and_the_last_image():
    """wan2.6-image's 1K is a 1280*1280 budget in the last image's ratio; qwen-image-edit's 1K keeps
    the input's ratio near 1024*1024 (the hosted default without a size)."""
    wide = Image.new("RGB", (1600, 900))
    job = resolve_job(build("wan2.6-image", 1), [wide])
    assert job.mode is Mode.EDIT and (job.width, job.height) == (1696, 960)  # the hosted 16:9 size
    job = resolve_job(build("qwen-image-edit", 1), [wide])
    assert (job.width, job.height) == (1360, 768)


def test_an_engine_config_serves_more_ids_from_one_table():
    configs = parse_config({"models": {"qwen-image": {
        "family": "qwen_image", "text_to_image": "/m/Qwen-Image", "serves": ["qwen-image-plus", "qwen-image-max"]}}})
    assert set(configs) == {"qwen-image", "qwen-image-plus", "qwen-image-max"}
    assert configs["qwen-image"] is configs["qwen-image-max"]
    with pytest.raises(EngineConfigError, match="qwen-image-plus is configured twice"):
        parse_config({"models": {
            "qwen-image": {"family": "qwen_image", "text_to_image": "/m/q", "serves": ["qwen-image-plus"]},
            "qwen-image-plus": {"family": "qwen_image", "text_to_image": "/m/q"}}})
