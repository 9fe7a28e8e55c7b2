"""The other Model Studio image ids through the real SDKs: sync, async + wait, SSE and the OpenAI
dialect answer them with their rules (core/model_rules.py); GET /v1/models lists every id served."""

from __future__ import annotations

from http import HTTPStatus

import httpx
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message
from openai import OpenAI

from tests.e2e.test_dashscope_sdk import data_uri, fetch_image, image_urls
from wanimage.types import MODELS

pytestmark = pytest.mark.store_independent  # the wire and the rules, not the task store

KEY = "sk-test"


def message(text: str, images: tuple[str, ...] = ()) -> list[Message]:
    return [Message(role="user", content=[*({"image": i} for i in images), {"text": text}])]


def test_sync_call_of_a_qwen_text_to_image_id_draws_its_default_size(sdk):
    rsp = ImageGeneration.call(model="qwen-image-plus", api_key=KEY, messages=message("海报 a poster"), seed=3)
    assert rsp.status_code == HTTPStatus.OK, rsp.message
    assert [fetch_image(u).size for u in image_urls(rsp)] == [(1664, 928)]


def test_async_edit_on_qwen_image_edit_plus_keeps_the_last_image_ratio(sdk):
    task = ImageGeneration.async_call(model="qwen-image-edit-plus", api_key=KEY, n=2,
                                      messages=message("图1的猫戴上图2的帽子", (data_uri(800, 600), data_uri(600, 800))))
    assert task.status_code == HTTPStatus.OK, task.message
    done = ImageGeneration.wait(task=task, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED"
    assert [fetch_image(u).size for u in image_urls(done)] == [(880, 1184)] * 2  # ~1024*1024 at 3:4


def test_sse_stream_on_wan26_t2i_makes_its_four_images_by_default(sdk):
    frames = list(ImageGeneration.call(model="wan2.6-t2i", api_key=KEY, messages=message("a lighthouse"),
                                       size="1280*720", stream=True))
    assert frames[-1].status_code == HTTPStatus.OK
    assert [fetch_image(u).size for u in image_urls(frames[-1])] == [(1280, 720)] * 4


def test_a_refusal_names_the_field_on_the_sdk_path(sdk):
    rsp = ImageGeneration.call(model="wan2.6-image", api_key=KEY, messages=message("no image sent"))
    assert rsp.status_code == HTTPStatus.BAD_REQUEST and rsp.code == "InvalidParameter"
    assert rsp.message.startswith("image: wan2.6-image edits images")


def test_openai_dialect_takes_the_same_ids(server):
    client = OpenAI(base_url=server.base_url + "/v1", api_key=KEY, max_retries=0)
    result = client.images.generate(model="qwen-image-2.0-pro", prompt="一只熊猫", size="1536x2688", n=2,
                                    response_format="b64_json")
    assert len(result.data) == 2
    assert server.engine.jobs[-1].model == "qwen-image-2.0-pro"
    assert (server.engine.jobs[-1].width, server.engine.jobs[-1].height) == (1536, 2688)


def test_every_served_id_is_listed(server):
    ids = [m["id"] for m in httpx.get(server.base_url + "/v1/models", timeout=30).json()["data"]]
    assert ids == list(MODELS)


def test_an_id_no_engine_serves_answers_model_not_exist_naming_the_served_ones(make_server):
    from tests.support.test_engine import DeterministicEngine
    from wanimage.engines.registry import EngineRegistry

    engine = DeterministicEngine()
    only_wan = make_server(engine=engine, registry=EngineRegistry({"wan2.7-image": lambda: engine}))
    r = httpx.post(only_wan.api_base + "/services/aigc/multimodal-generation/generation", timeout=30,
                   json={"model": "qwen-image", "input": {"messages": [{"role": "user", "content": [{"text": "x"}]}]}})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameter"
    assert r.json()["message"] == "model: Model not exist: 'qwen-image'; this server serves wan2.7-image"
    r = httpx.post(only_wan.base_url + "/v1/images/generations", json={"model": "wan2.6-t2i", "prompt": "x"}, timeout=30)
    assert r.status_code == 400 and "this server serves wan2.7-image" in r.json()["error"]["message"]
