"""Context parallelism behind a real server: WANIMAGE_DEVICES=cpu,cpu and a
model with ulysses_degree = 2 give one engine whose two ranks (this process and a follower it
spawned) run each request together; a request through the dashscope SDK succeeds, the models
listing shows both devices, and stopping the server stops the follower."""

from __future__ import annotations

import io
from http import HTTPStatus

import httpx
import numpy as np
import pytest
import torch.distributed as dist
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message
from PIL import Image

from tests.support.devices import diffusers_on_two_cpus

pytestmark = pytest.mark.store_independent  # the engine's ranks, not the store, are under test

KEY = "sk-test"
CONFIG = """
[models."wan2.7-image"]
family = "qwen_image"
text_to_image = "tiny:qwen_image"
steps = 4
true_cfg = 1.0
max_generate_pixels = 4096
ulysses_degree = 2
"""


@pytest.mark.slow
def test_a_context_parallel_model_serves_requests_over_two_cpu_ranks(tmp_path, database):
    with diffusers_on_two_cpus(tmp_path, database(), CONFIG, KEY) as (registry, running):
        msg = Message(role="user", content=[{"text": "an apple on a table"}])
        response = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="768*768",
                                        seed=3, n=2)
        assert response.status_code == HTTPStatus.OK, response.message
        urls = [part["image"] for choice in response.output.choices for part in choice["message"]["content"]
                if part.get("type") == "image"]
        images = [Image.open(io.BytesIO(httpx.get(url).content)).convert("RGB") for url in urls]
        models = httpx.get(f"{running.base_url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()
        follower = registry.get("wan2.7-image").ranks.processes[0]
        assert follower.is_alive()
    assert len(images) == 2 and all(im.size == (768, 768) for im in images)
    assert np.asarray(images[0]).std() > 0  # an image, not a blank
    row = next(m for m in models["data"] if m["id"] == "wan2.7-image")
    assert row["wanimage"]["device"] == "cpu,cpu", row
    follower.join(15)
    assert not follower.is_alive() and not dist.is_initialized()  # the app's shutdown closed the ranks
