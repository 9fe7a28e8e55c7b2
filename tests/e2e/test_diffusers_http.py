"""The diffusers engine behind a real server, through the dashscope SDK: a config file maps
wan2.7-image to tiny Qwen-Image components and wan2.7-image-pro to tiny SDXL ones (random
weights built in code, nothing downloaded)."""

from __future__ import annotations

import base64
import io
import time
from http import HTTPStatus

import dashscope
import httpx
import numpy as np
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message
from PIL import Image

from tests.support.server import start_server
from wanimage.engines.diffusers import load_engines
from wanimage.engines.diffusers.tiny import tiny_cpu_speedups
from wanimage.engines.registry import EngineRegistry

KEY = "sk-test"
CONFIG = """
[defaults]
steps = 2
max_generate_pixels = 3072      # 64 x 48: generate tiny, then resize to the exact job size
reference_pixels = 2304

[models."wan2.7-image"]
family = "qwen_image"
true_cfg = 1.0
text_to_image = "tiny:qwen_image"
edit = "tiny:qwen_image"
inpaint = "tiny:qwen_image"

[models."wan2.7-image-pro"]
family = "sdxl"
text_to_image = "tiny:sdxl"
inpaint = "tiny:sdxl"
"""


@pytest.fixture(scope="module")
def diffusers_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diffusers")
    (tmp / "engines.toml").write_text(CONFIG)
    with tiny_cpu_speedups():
        running = start_server(tmp / "data", registry=EngineRegistry(load_engines(tmp / "engines.toml")))
        previous = dashscope.base_http_api_url
        dashscope.base_http_api_url = running.api_base
        yield running
        dashscope.base_http_api_url = previous
        running.stop()


def image_urls(rsp) -> list[str]:
    return [c["image"] for ch in rsp.output.choices for c in ch["message"]["content"] if c.get("type") == "image"]


def fetch(url: str) -> Image.Image:
    r = httpx.get(url)
    assert r.status_code == 200
    return Image.open(io.BytesIO(r.content)).convert("RGB")


def test_text_to_image(diffusers_server):
    msg = Message(role="user", content=[{"text": "a lighthouse at dusk"}])
    rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], n=2, size="1024*768", seed=11)
    assert rsp.status_code == HTTPStatus.OK, rsp
    urls = image_urls(rsp)
    assert len(urls) == 2 and rsp.usage.size == "1024*768"
    first = fetch(urls[0])
    assert first.size == (1024, 768)
    again = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], n=1, size="1024*768", seed=11)
    assert np.array_equal(np.asarray(fetch(image_urls(again)[0])), np.asarray(first))


@pytest.mark.parametrize("model", ["wan2.7-image", "wan2.7-image-pro"])
def test_bbox_edit_keeps_pixels_outside_the_box(diffusers_server, model):
    y, x = np.mgrid[0:768, 0:1024]
    src = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(src).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    msg = Message(role="user", content=[{"text": "a red ball in the box"}, {"image": uri}])
    rsp = ImageGeneration.call(model=model, api_key=KEY, messages=[msg], size="1024*768",
                               bbox_list=[[[100, 200, 400, 500]]])
    assert rsp.status_code == HTTPStatus.OK, rsp
    out = np.asarray(fetch(image_urls(rsp)[0]))
    assert out.shape == (768, 1024, 3)
    inside = np.zeros((768, 1024), dtype=bool)
    inside[200:500, 100:400] = True
    assert np.array_equal(out[~inside], src[~inside])
    assert not np.array_equal(out[inside], src[inside])


def test_unsupported_mode_is_a_clear_error(diffusers_server):
    y = np.zeros((768, 768, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(y).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    msg = Message(role="user", content=[{"text": "image 1: in spring. image 2: in winter"}, {"image": uri}])
    rsp = ImageGeneration.call(model="wan2.7-image-pro", api_key=KEY, messages=[msg], enable_sequential=True, n=2)
    assert rsp.status_code == HTTPStatus.BAD_REQUEST
    assert rsp.code == "InvalidParameter"
    assert "wan2.7-image-pro" in rsp.message and "image sets from reference images" in rsp.message


def test_progress_then_cancel_of_a_running_task(diffusers_server):
    """Progress comes from callback_on_step_end; a cancel stops the pipeline at the next step."""
    pipe = diffusers_server.service.engines.get("wan2.7-image-pro").pipeline("text_to_image")
    forwards = []

    def slow(module, args, kwargs):  # 0.2 s per denoising step: time to watch and cancel
        forwards.append(1)
        time.sleep(0.2)

    hook = pipe.unet.register_forward_pre_hook(slow, with_kwargs=True)
    try:
        body = {"model": "wan2.7-image-pro", "input": {"messages": [{"role": "user", "content": [{"text": "slow"}]}]},
                "parameters": {"size": "1024*768", "n": 4}}
        r = httpx.post(diffusers_server.api_base + "/services/aigc/image-generation/generation", json=body,
                       headers={"X-DashScope-Async": "enable"})
        task_id = r.json()["output"]["task_id"]

        def status():
            return httpx.get(f"{diffusers_server.api_base}/tasks/{task_id}").json()["output"]

        deadline = time.monotonic() + 20
        while (seen := status()).get("progress", 0) <= 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen["task_status"] == "RUNNING" and 0 < seen["progress"] < 100
        assert httpx.post(f"{diffusers_server.api_base}/tasks/{task_id}/cancel").status_code == 200
        while (final := status())["task_status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert final["task_status"] == "CANCELED" and final["code"] == "Canceled"
        assert len(forwards) < 8  # 4 images x 2 steps were asked for
    finally:
        hook.remove()
