"""The remote engine end to end, real servers only: a front wanimage whose model ids are remote,
driven by the dashscope SDK, in front of (a) a second wanimage on loopback (the deterministic test
engine; its own task list and jobs prove the calls went through it) and (b) a tiny OpenAI images
server that answers one image per call whatever `n` asks (tests/support/openai_images.py)."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import time
from http import HTTPStatus
from pathlib import Path

import dashscope
import httpx
import numpy as np
import openai
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message
from PIL import Image

from tests.support.openai_images import ImagesBackend, color_of
from tests.support.server import free_port, start_server, wait_healthy
from tests.support.test_engine import DeterministicEngine
from wanimage.config import Settings
from wanimage.engines.factories import build_registry
from wanimage.engines.imaging import resize_exact

pytestmark = pytest.mark.store_independent  # the remote engine; its cancel test runs on both

KEY = "sk-test"
ROOT = Path(__file__).resolve().parents[2]


def image_urls(rsp) -> list[str]:
    return [c["image"] for ch in rsp.output.choices for c in ch["message"]["content"] if c.get("type") == "image"]


def fetch(url: str) -> Image.Image:
    return Image.open(io.BytesIO(httpx.get(url).content)).convert("RGB")


def noise_png(width: int, height: int, seed: int = 0) -> tuple[str, Image.Image]:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), image


def front_for(tmp: Path, database_url, config: str, **overrides):
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "engines.toml"
    path.write_text(config)
    settings = Settings(data_dir=tmp, engine_config=path, database_url=database_url, **overrides)
    return start_server(tmp, registry=build_registry(settings), engine_config=path, database_url=database_url,
                        **overrides)


def remote_table(model: str, base_url: str, **keys) -> str:
    lines = [f'[models."{model}"]', 'engine = "remote"', f'base_url = "{base_url}"']
    for key, value in keys.items():
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def both(base_url: str, **keys) -> str:
    """Both ids on one backend: the front then loads no built-in model (slow to import on 2 cores)."""
    return remote_table("wan2.7-image", base_url, **keys) + remote_table("wan2.7-image-pro", base_url, **keys)


def call(model: str, content: list[dict], **kw):
    rsp = ImageGeneration.call(model=model, api_key=KEY, messages=[Message(role="user", content=content)], **kw)
    return rsp


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, database):
    """backend wanimage (deterministic engine) + tiny images server + the front whose two model
    ids are remote: wan2.7-image -> the wanimage backend (stream, 3 images per edit), pro -> tiny."""
    engine = DeterministicEngine(steps=3, step_seconds=0.05)
    backend = start_server(tmp_path_factory.mktemp("backend"), engine)
    tiny = ImagesBackend().start()
    config = (remote_table("wan2.7-image", backend.base_url + "/v1", edit_max_images=3, stream="true",
                           partial_images=2, extra_body="{ thinking_mode = false }", max_concurrency=2)
              + remote_table("wan2.7-image-pro", tiny.base_url, edit_max_images=1, health_interval_seconds=0.5))
    # The invisible provenance watermark (docs/provenance.md) moves every pixel a little, by design:
    # the exactness asserted here is the engine's, so the front runs with it off.
    front = front_for(tmp_path_factory.mktemp("front"), database(), config, workers=2, provenance_watermark=False)
    previous = dashscope.base_http_api_url
    dashscope.base_http_api_url = front.api_base
    yield front, backend, tiny
    dashscope.base_http_api_url = previous
    front.stop()
    backend.stop()
    tiny.stop()


def backend_tasks(backend) -> list[dict]:
    rsp = httpx.get(backend.api_base + "/tasks", params={"page_size": 100}, headers={"Authorization": f"Bearer {KEY}"})
    assert rsp.status_code == 200, rsp.text
    return rsp.json()["data"]


def test_text_to_image_goes_through_the_backend_and_seeds_repeat(stack):
    front, backend, _ = stack
    before = len(backend_tasks(backend))
    rsp = call("wan2.7-image", [{"text": "a red apple"}], n=2, size="1K", seed=7)
    assert rsp.status_code == HTTPStatus.OK, rsp
    urls = image_urls(rsp)
    assert len(urls) == 2 and rsp.usage.size == "1024*1024"
    job = backend.engine.jobs[-1]
    assert (job.mode.value, job.n, job.seed, job.width, job.height) == ("text-to-image", 2, 7, 1024, 1024)
    assert len(backend_tasks(backend)) == before + 1  # one call with n = 2, in the backend's task list
    again = call("wan2.7-image", [{"text": "a red apple"}], n=2, size="1K", seed=7)
    # the same pixels (the PNG bytes differ: each C2PA manifest has its own id)
    assert [fetch(u).tobytes() for u in image_urls(again)] == [fetch(u).tobytes() for u in urls]


def test_a_backend_that_ignores_n_is_asked_per_image(stack):
    front, _, tiny = stack
    tiny.calls.clear()
    rsp = call("wan2.7-image-pro", [{"text": "three boats"}], n=3, size="1K", seed=40, thinking_mode=False)
    assert rsp.status_code == HTTPStatus.OK, rsp
    images = [fetch(u) for u in image_urls(rsp)]
    assert len(images) == 3
    assert [(c.n, c.seed) for c in tiny.calls] == [(3, 40), (1, 41), (1, 42)]
    assert [im.getpixel((10, 10)) for im in images] == [color_of(c.prompt, c.seed) for c in tiny.calls]
    tiny.calls.clear()  # learned: the next request asks per image straight away
    assert call("wan2.7-image-pro", [{"text": "boats"}], n=2, size="1K", seed=1).status_code == HTTPStatus.OK
    assert [(c.n, c.seed) for c in tiny.calls] == [(1, 1), (1, 2)]


@pytest.mark.parametrize("model", ["wan2.7-image", "wan2.7-image-pro"])
def test_box_edit_keeps_every_pixel_outside_the_boxes(stack, model):
    front, backend, tiny = stack
    uri, source = noise_png(400, 300, seed=3)
    box = [60, 40, 260, 200]
    rsp = call(model, [{"text": "a red ball in the box"}, {"image": uri}], size="1K", bbox_list=[[box]], seed=5)
    assert rsp.status_code == HTTPStatus.OK, rsp
    out = np.asarray(fetch(image_urls(rsp)[0]))
    h, w = out.shape[:2]
    canvas = np.asarray(resize_exact(source, w, h))
    sx, sy = w / 400, h / 300
    x1, y1, x2, y2 = int(box[0] * sx), int(box[1] * sy), int(np.ceil(box[2] * sx)), int(np.ceil(box[3] * sy))
    outside = np.ones((h, w), dtype=bool)
    outside[y1:y2, x1:x2] = False
    assert np.array_equal(out[outside], canvas[outside])  # bit for bit
    if model == "wan2.7-image-pro":  # the tiny backend repainted everything: the box centre is its colour
        c = tiny.calls[-1]
        assert c.endpoint == "edits" and len(c.images) == 1 and c.mask is None
        assert tuple(out[(y1 + y2) // 2, (x1 + x2) // 2]) == color_of(c.prompt, c.seed)
    else:
        assert backend.engine.jobs[-1].mode.value == "edit" and not backend.engine.jobs[-1].edit_boxes


def test_five_references_are_stitched_to_what_the_backend_takes(stack):
    front, backend, _ = stack
    refs = [{"image": noise_png(300 + 10 * i, 260, seed=i)[0]} for i in range(5)]
    rsp = call("wan2.7-image", [{"text": "the cat of image 1 in the room of image 5"}, *refs], size="1K")
    assert rsp.status_code == HTTPStatus.OK, rsp
    job = backend.engine.jobs[-1]
    assert job.mode.value == "edit" and len(job.images) == 3  # 5 references on 3 canvases (2 + 2 + 1)


def test_image_set_chains_edits_on_image_one(stack):
    front, backend, _ = stack
    start = len(backend.engine.jobs)
    rsp = call("wan2.7-image", [{"text": "image 1: a cat. image 2: the cat asleep. image 3: the cat awake"}],
               enable_sequential=True, n=3, size="1K", seed=11)
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert len(image_urls(rsp)) == 3
    jobs = backend.engine.jobs[start:]
    assert [j.mode.value for j in jobs] == ["text-to-image", "edit", "edit"]
    assert [j.seed for j in jobs] == [11, 12, 13] and all(len(j.images) == 1 for j in jobs[1:])


def test_thinking_mode_plans_on_the_front_and_sends_the_revised_prompt(stack):
    front, backend, _ = stack
    task = ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, size="1K", thinking_mode=True,
                                      messages=[Message(role="user", content=[{"text": "two cats on a sofa"}])])
    assert ImageGeneration.wait(task=task, api_key=KEY).output.task_status == "SUCCEEDED"
    revised = front.service.get(task.output.task_id).result.revised_prompt
    assert revised != "two cats on a sofa" and backend.engine.jobs[-1].prompt == revised


def test_palette_goes_into_the_prompt(stack):
    front, backend, _ = stack
    rsp = call("wan2.7-image", [{"text": "a quiet harbour"}], size="1K", thinking_mode=False,
               color_palette=[{"hex": "#C02020", "ratio": "50.00%"}, {"hex": "#2040C0", "ratio": "30.00%"},
                              {"hex": "#20A040", "ratio": "20.00%"}])
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert "Color palette: #c02020 (50%), #2040c0 (30%), #20a040 (20%)" in backend.engine.jobs[-1].prompt


def test_partial_images_come_from_the_backend_stream(stack):
    front, backend, _ = stack
    client = openai.OpenAI(base_url=front.base_url + "/v1", api_key=KEY)
    events = list(client.images.generate(model="wan2.7-image", prompt="a kite", size="1024x1024", stream=True,
                                         partial_images=2, extra_body={"seed": 2, "thinking_mode": False}))
    kinds = [e.type for e in events]
    assert kinds[-1] == "image_generation.completed" and "image_generation.partial_image" in kinds
    # the partial images are the backend's previews (the test engine's are 64x64), relayed
    partial = next(e for e in events if e.type == "image_generation.partial_image")
    assert partial.size == "64x64"


def test_max_concurrency_bounds_calls_in_flight(tmp_path, database):
    tiny = ImagesBackend().start()
    tiny.delay = 0.4
    front = front_for(tmp_path, database(), both(tiny.base_url, max_concurrency=1), workers=3)
    dashscope.base_http_api_url = front.api_base
    try:
        tasks = [ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, size="1K",
                                            messages=[Message(role="user", content=[{"text": f"tree {i}"}])])
                 for i in range(3)]
        for t in tasks:
            assert ImageGeneration.wait(task=t, api_key=KEY).output.task_status == "SUCCEEDED"
        assert len(tiny.calls) == 3 and tiny.max_in_flight == 1
    finally:
        front.stop()
        tiny.stop()


def test_a_slow_backend_fails_the_task_with_a_timeout_naming_it(tmp_path, database):
    tiny = ImagesBackend().start()
    tiny.delay = 3.0
    front = front_for(tmp_path, database(), both(tiny.base_url, timeout_seconds=0.5))
    dashscope.base_http_api_url = front.api_base
    try:
        rsp = call("wan2.7-image", [{"text": "a slow snail"}], size="1K")
        assert rsp.code == "InternalError.Timeout" and tiny.base_url in rsp.message
    finally:
        front.stop()
        tiny.stop()


def test_a_backend_answering_5xx_fails_with_model_unavailable_after_the_attempts(tmp_path, database):
    tiny = ImagesBackend().start()
    tiny.fail_status = 503
    front = front_for(tmp_path, database(), both(tiny.base_url, attempts=2))
    dashscope.base_http_api_url = front.api_base
    try:
        rsp = call("wan2.7-image", [{"text": "anything"}], size="1K")
        assert rsp.code == "ModelUnavailable" and tiny.base_url in rsp.message and "HTTP 503" in rsp.message
        assert len(tiny.calls) == 2
    finally:
        front.stop()
        tiny.stop()


def _backend_process(port: int, data_dir: Path, step_seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.server", "--port", str(port), "--data-dir",
                             str(data_dir), "--steps", "20", "--step-seconds", str(step_seconds)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    wait_healthy(f"http://127.0.0.1:{port}")
    return proc


def _front_task(front, task_id: str):
    return front.service.get(task_id)


@pytest.mark.every_store
def test_cancel_closes_the_backend_request(tmp_path, database):
    port = free_port()
    proc = _backend_process(port, tmp_path / "b", step_seconds=0.3)
    backend_api = f"http://127.0.0.1:{port}/api/v1"
    front = front_for(tmp_path / "f", database(), both(f"http://127.0.0.1:{port}/v1"))
    dashscope.base_http_api_url = front.api_base
    try:
        task = ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, size="1K",
                                          messages=[Message(role="user", content=[{"text": "a long task"}])])
        running = lambda: [t for t in httpx.get(backend_api + "/tasks").json()["data"]  # noqa: E731
                           if t["status"] == "RUNNING"]
        wait_for(running, what="the backend task to run")
        assert ImageGeneration.cancel(task=task, api_key=KEY).status_code == HTTPStatus.OK
        done = ImageGeneration.wait(task=task, api_key=KEY)
        assert done.output.task_status == "CANCELED"
        # the closed request made the backend cancel its own task, long before its 6 s were up
        wait_for(lambda: [t for t in httpx.get(backend_api + "/tasks").json()["data"]
                          if t["status"] == "CANCELED"], timeout=5, what="the backend task to be canceled")
    finally:
        front.stop()
        proc.kill()
        proc.wait()


def test_backend_stopped_mid_task_fails_it_naming_the_backend_then_recovers(tmp_path, database):
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    proc = _backend_process(port, tmp_path / "b", step_seconds=0.3)
    front = front_for(tmp_path / "f", database(), both(base, health_interval_seconds=0.3, extra_body="{ thinking_mode = false }"))
    dashscope.base_http_api_url = front.api_base
    health = lambda: httpx.get(front.base_url + "/health").json()["backends"][0]  # noqa: E731
    try:
        wait_for(lambda: health()["reachable"] is True, what="the backend to be reachable")
        assert health()["url"] == base and health()["models"] == ["wan2.7-image", "wan2.7-image-pro"]
        task = ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, size="1K",
                                          messages=[Message(role="user", content=[{"text": "a task cut short"}])])
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/api/v1/tasks").json()["data"], what="the backend task")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = ImageGeneration.wait(task=task, api_key=KEY)
        assert done.output.task_status == "FAILED"
        assert done.output.code == "ModelUnavailable" and base in done.output.message
        wait_for(lambda: health()["reachable"] is False, what="/health to show the backend down")
        proc = _backend_process(port, tmp_path / "b", step_seconds=0.0)
        wait_for(lambda: health()["reachable"] is True, what="/health to show the backend back")
        rsp = call("wan2.7-image", [{"text": "after the outage"}], size="1K")
        assert rsp.status_code == HTTPStatus.OK, rsp
    finally:
        front.stop()
        proc.kill()
        proc.wait()
