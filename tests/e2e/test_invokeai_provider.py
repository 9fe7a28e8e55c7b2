"""InvokeAI's Alibaba Cloud provider (invokeai/app/services/external_generation/providers/
alibabacloud.py) works unchanged against wanimage: its requests replayed as it sends them (its five
model ids, its canvas sizes, reference images as data URIs first, then the text, `prompt_extend:
false`, `watermark: false`, a seed, a Bearer key, through `requests`), its images downloaded as it
downloads them (streamed, 32 MiB cap), and its retry on 429 honouring Retry-After."""

from __future__ import annotations

import base64
import io
import threading
import time

import pytest
import requests
from PIL import Image

from tests.support.test_engine import DeterministicEngine
from wanimage.types import Mode

pytestmark = pytest.mark.store_independent  # the wire, not the task store

DOWNLOAD_MAX_BYTES = 32 * 1024 * 1024  # the provider's cap
RETRY_STATUS = {429, 500, 502, 503, 504}

# its starter models' default canvas, and 1216*832 where the id takes any size
CASES = [
    ("qwen-image-2.0-pro", 2048, 2048), ("qwen-image-2.0", 1216, 832), ("qwen-image-max", 1328, 1328),
    ("wan2.6-t2i", 1216, 832), ("qwen-image-edit-max", 1216, 832),
]


def payload(model: str, width: int, height: int, prompt: str, refs: list[Image.Image] = (), n: int = 1,
            seed: int | None = 7) -> dict:
    """The body `_generate_sync` builds."""
    content = [{"image": "data:image/png;base64," + _b64png(im)} for im in refs]
    content.append({"text": prompt})
    parameters = {"size": f"{width}*{height}", "n": n, "prompt_extend": False, "watermark": False}
    if seed is not None:
        parameters["seed"] = seed
    return {"model": model, "input": {"messages": [{"role": "user", "content": content}]}, "parameters": parameters}


def _b64png(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def post_with_retry(base: str, body: dict, retries: int = 2) -> requests.Response:
    """`_request_with_retry`: 429 / 5xx retried, waiting Retry-After when the server sends it."""
    url = f"{base}/api/v1/services/aigc/multimodal-generation/generation"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-invokeai"}
    for attempt in range(retries + 1):
        response = requests.post(url, headers=headers, json=body, timeout=120)
        if response.status_code in RETRY_STATUS and attempt < retries:
            time.sleep(float(response.headers.get("Retry-After", 2.0 * 2**attempt)))
            continue
        return response
    raise AssertionError("unreachable")


def download(url: str) -> Image.Image:
    """`_download_image`: streamed, capped, opened with PIL."""
    with requests.get(url, timeout=60, stream=True) as response:
        assert response.ok, response.text
        assert int(response.headers.get("Content-Length", 0)) <= DOWNLOAD_MAX_BYTES
        buffer = bytearray()
        for chunk in response.iter_content(chunk_size=64 * 1024):
            buffer.extend(chunk)
            assert len(buffer) <= DOWNLOAD_MAX_BYTES
    return Image.open(io.BytesIO(bytes(buffer))).convert("RGB")


def images_of(answer: dict) -> list[str]:
    """`_parse_sync_response`: every choices[].message.content[].image."""
    return [part["image"] for choice in answer["output"]["choices"]
            for part in choice["message"]["content"] if isinstance(part.get("image"), str)]


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.mark.parametrize(("model", "width", "height"), CASES)
def test_each_of_its_models_answers_with_images_it_can_download(server, model, width, height):
    refs = [Image.new("RGB", (640, 480), "red"), Image.new("RGB", (480, 640), "blue")] if "edit" in model else []
    response = post_with_retry(server.base_url, payload(model, width, height, "一座雪山下的湖 a lake", refs))
    assert response.ok, response.text
    urls = images_of(response.json())
    assert len(urls) == 1
    assert download(urls[0]).size == (width, height)
    job = server.engine.jobs[-1]
    assert job.model == model and job.seed == 7
    assert job.mode is (Mode.EDIT if refs else Mode.TEXT_TO_IMAGE) and len(job.images) == len(refs)
    assert job.revised_prompt is None and job.prompt == "一座雪山下的湖 a lake"  # prompt_extend: false


def test_its_several_images_per_request_on_an_id_that_makes_several(server):
    response = post_with_retry(server.base_url, payload("qwen-image-2.0", 1216, 832, "three apples", n=3, seed=None))
    assert response.ok, response.text
    assert [download(u).size for u in images_of(response.json())] == [(1216, 832)] * 3


def test_an_id_that_makes_one_image_says_so_by_name(server):
    response = post_with_retry(server.base_url, payload("qwen-image-max", 1328, 1328, "two cats", n=2))
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidParameter"
    assert response.json()["message"].startswith("n: qwen-image-max makes one image per request")


def test_a_full_queue_answers_429_with_retry_after_and_its_retry_gets_the_images(make_server):
    slow = make_server(engine=DeterministicEngine(steps=10, step_seconds=0.1), max_queue=1, workers=1)
    body = payload("wan2.6-t2i", 1024, 1024, "a queue filler")
    fillers = [threading.Thread(target=post_with_retry, args=(slow.base_url, body, 0)) for _ in range(2)]
    for t in fillers:
        t.start()
        time.sleep(0.3)  # the first runs, the second waits: the queue (1) is full
    refused = post_with_retry(slow.base_url, payload("wan2.6-t2i", 1024, 1024, "one more"), retries=0)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    answer = post_with_retry(slow.base_url, payload("wan2.6-t2i", 1024, 1024, "one more"))
    for t in fillers:
        t.join(30)
    assert answer.ok, answer.text
    assert download(images_of(answer.json())[0]).size == (1024, 1024)
