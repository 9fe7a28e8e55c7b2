"""The official dashscope SDK (2.x) against a real server on loopback, unchanged but for the base URL."""

from __future__ import annotations

import asyncio
import base64
import http.server
import io
import threading
from http import HTTPStatus

import dashscope
import httpx
import pytest
from dashscope.aigc.image_generation import AioImageGeneration, ImageGeneration
from dashscope.aigc.image_synthesis import ImageSynthesis
from dashscope.api_entities.dashscope_response import Message
from PIL import Image

from tests.conftest import png_bytes
from wanimage.types import Box, scale_boxes

pytestmark = pytest.mark.store_independent  # the SDK's request and answer shapes; async, cancel and list tests run on both

KEY = "sk-test"


def image_urls(rsp) -> list[str]:
    return [c["image"] for ch in rsp.output.choices for c in ch["message"]["content"] if c.get("type") == "image"]


def fetch_image(url: str) -> Image.Image:
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(r.content))


def data_uri(width: int, height: int, color=(10, 120, 200)) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(width, height, color)).decode()


def test_text_to_image_call(sdk):
    msg = Message(role="user", content=[{"text": "a red apple"}])
    rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], n=2, size="1K", seed=7)
    assert rsp.status_code == HTTPStatus.OK, rsp
    urls = image_urls(rsp)
    assert len(urls) == 2 and rsp.usage.image_count == 2 and rsp.usage.size == "1024*1024"
    assert fetch_image(urls[0]).size == (1024, 1024)
    again = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], n=1, size="1K", seed=7)
    # same seed, same pixels (the files differ: each names its task and has its own C2PA signature)
    assert fetch_image(image_urls(again)[0]).tobytes() == fetch_image(urls[0]).tobytes()


def test_image_set_is_one_choice(sdk):
    msg = Message(role="user", content=[{"text": "image 1: a cat. image 2: the cat asleep"}])
    rsp = ImageGeneration.call(model="wan2.7-image-pro", api_key=KEY, messages=[msg], enable_sequential=True, n=4, size="1K")
    assert rsp.status_code == HTTPStatus.OK
    assert len(rsp.output.choices) == 1
    assert 1 <= len(image_urls(rsp)) <= 4 and rsp.usage.image_count == len(image_urls(rsp))


class _ImageHandler(http.server.BaseHTTPRequestHandler):
    payload = png_bytes(480, 240, (0, 200, 0))

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


def test_two_image_edit_with_base64_and_url(make_server):
    # Image URLs on loopback are refused by default (SSRF guard); this server allows them.
    server = make_server(allow_private_urls=True)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ImageHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    dashscope.base_http_api_url = server.api_base
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/clock.png"
        msg = Message(role="user", content=[{"text": "put the clock of image 1 into image 2"}, {"image": data_uri(300, 300)}, {"image": url}])
        rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K")
        assert rsp.status_code == HTTPStatus.OK, rsp
        # output keeps the aspect ratio of the LAST image (480x240 = 2:1) at the 1K budget
        assert rsp.usage.size == "1456*720"
        assert fetch_image(image_urls(rsp)[0]).size == (1456, 720)
    finally:
        httpd.shutdown()


def test_bbox_edit(sdk):
    msg = Message(role="user", content=[{"text": "a red ball in the box"}, {"image": data_uri(400, 300)}])
    rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K", bbox_list=[[[40, 30, 200, 150]]])
    assert rsp.status_code == HTTPStatus.OK, rsp
    job = sdk.engine.jobs[-1]
    assert list(job.edit_boxes) == scale_boxes([Box(40, 30, 200, 150)], (400, 300), (job.width, job.height))


def test_local_file_through_upload_flow(sdk, tmp_path):
    path = tmp_path / "my photo.png"
    path.write_bytes(png_bytes(320, 240, (250, 200, 0)))
    msg = Message(role="user", content=[{"text": "make it blue"}, {"image": f"file://{path}"}])
    rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K")
    assert rsp.status_code == HTTPStatus.OK, rsp
    job = sdk.engine.jobs[-1]
    assert job.images[0].size == (320, 240) and job.images[0].getpixel((5, 5)) == (250, 200, 0)


@pytest.mark.every_store
def test_async_call_and_wait(sdk):
    msg = Message(role="user", content=[{"text": "a lighthouse"}])
    task = ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K")
    assert task.status_code == HTTPStatus.OK and task.output.task_status == "PENDING"
    done = ImageGeneration.wait(task=task, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED"
    assert len(image_urls(done)) == 1
    fetched = ImageGeneration.fetch(task=task.output.task_id, api_key=KEY)
    assert fetched.output.task_status == "SUCCEEDED" and fetched.output.end_time


@pytest.mark.every_store
def test_cancel_pending_task(make_server):
    server = make_server(workers=0)  # nothing drains the queue: the task stays PENDING
    dashscope.base_http_api_url = server.api_base
    msg = Message(role="user", content=[{"text": "never drawn"}])
    task = ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K")
    rsp = ImageGeneration.cancel(task=task, api_key=KEY)
    assert rsp.status_code == HTTPStatus.OK
    assert ImageGeneration.wait(task=task, api_key=KEY).output.task_status == "CANCELED"


@pytest.mark.every_store
def test_fetch_unknown_id_is_unknown(sdk):
    rsp = ImageGeneration.fetch(task="no-such-task", api_key=KEY)
    assert rsp.status_code == HTTPStatus.OK and rsp.output.task_status == "UNKNOWN"
    assert ImageGeneration.wait(task="no-such-task", api_key=KEY).output.task_status == "UNKNOWN"


@pytest.mark.every_store
def test_list_tasks(sdk):
    msg = Message(role="user", content=[{"text": "listed"}])
    task = ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K")
    ImageGeneration.wait(task=task, api_key=KEY)
    rsp = ImageGeneration.list(api_key=KEY, page_size=50, status="SUCCEEDED")
    assert rsp.status_code == HTTPStatus.OK
    ids = [t["task_id"] for t in rsp.output["tasks"]] if isinstance(rsp.output, dict) and "tasks" in rsp.output else None
    raw = httpx.get(sdk.api_base + "/tasks", params={"page_size": 50, "status": "SUCCEEDED"}).json()
    ids = ids or [t["task_id"] for t in raw["tasks"]]
    assert task.output.task_id in ids
    assert raw["page_no"] == 1 and raw["page_size"] == 50 and raw["total"] >= 1


@pytest.mark.every_store
def test_aio_call_and_wait(sdk):
    async def run():
        msg = Message(role="user", content=[{"text": "an owl"}])
        rsp = await AioImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K")
        assert rsp.status_code == HTTPStatus.OK, rsp
        task = await AioImageGeneration.async_call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K")
        done = await AioImageGeneration.wait(task=task, api_key=KEY)
        assert done.output.task_status == "SUCCEEDED"
        pending = await AioImageGeneration.fetch(task=task, api_key=KEY)
        assert pending.output.task_status == "SUCCEEDED"

    asyncio.run(run())


def test_image_synthesis_text_to_image(sdk):
    rsp = ImageSynthesis.call(model="wan2.7-image", api_key=KEY, prompt="a paper boat", n=1, size="1024*1024")
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED"
    assert rsp.output.results[0].url.startswith(sdk.base_url + "/files/")
    assert fetch_image(rsp.output.results[0].url).size == (1024, 1024)


def test_invalid_request_reaches_sdk_as_code_and_message(sdk):
    msg = Message(role="user", content=[{"text": "too many"}])
    rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], n=9, size="1K")
    assert rsp.status_code == 400
    assert rsp.code == "InvalidParameter" and "n:" in rsp.message


def test_stream_call_yields_progress_then_the_answer(sdk):
    # stream=True sends X-DashScope-SSE: enable; the server answers DashScope SSE frames.
    msg = Message(role="user", content=[{"text": "streamed"}])
    responses = list(ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K",
                                          seed=11, stream=True))
    *progress, final = responses
    assert progress and all(r.status_code == HTTPStatus.OK for r in responses)
    assert [r.output.task_status for r in progress] == ["RUNNING"] * len(progress)
    assert [r.output.progress for r in progress] == sorted(r.output.progress for r in progress)
    assert all(not r.output.choices for r in progress)  # progress frames carry no images
    assert final.output.finished is True and final.usage.image_count == 1
    plain = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K", seed=11)
    assert final.output.keys() == plain.output.keys() and final.usage == plain.usage
    assert fetch_image(image_urls(final)[0]).tobytes() == fetch_image(image_urls(plain)[0]).tobytes()  # same seed


def test_stream_call_error_is_a_response_with_code_and_status(sdk):
    msg = Message(role="user", content=[{"text": "too many"}])
    responses = list(ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], n=9, size="1K",
                                          stream=True))
    assert len(responses) == 1
    assert responses[0].status_code == 400 and responses[0].code == "InvalidParameter"
    assert responses[0].message.startswith("n:")


def test_stream_call_failed_task_is_an_error_frame(sdk):
    msg = Message(role="user", content=[{"text": "EXPLODE"}])  # the test engine fails on this word
    responses = list(ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K", stream=True))
    last = responses[-1]
    assert last.status_code == 500 and last.code.startswith("InternalError")


def test_thinking_levels_prompt_extend_and_negative_prompt_reach_the_engine(sdk):
    """What the Python SDK documents and InvokeAI sends: thinking_mode="fast" (a string),
    prompt_extend=False (the prompt drawn as given) and a negative prompt, unchanged."""
    msg = Message(role="user", content=[{"text": "two cats on the left"}])
    rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K", thinking_mode="fast",
                               prompt_extend=False, negative_prompt="blurry, text")
    assert rsp.status_code == HTTPStatus.OK, rsp
    job = sdk.engine.jobs[-1]
    assert (job.negative_prompt, job.thinking_effort, job.thinking) == ("blurry, text", "fast", False)
    assert job.prompts == ("two cats on the left",) and job.revised_prompt is None
    rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K", thinking_mode="fast")
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert (sdk.engine.jobs[-1].thinking, sdk.engine.jobs[-1].planner) == (True, "builtin")


def test_image_synthesis_with_reference_images(sdk):
    """1.x ImageSynthesis sends input.images: they are the edit's reference images."""
    ref = data_uri(400, 300, (250, 10, 10))
    rsp = ImageSynthesis.call(model="wan2.7-image", api_key=KEY, prompt="make it blue", images=[ref],
                              negative_prompt="blurry", size="1K")
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED"
    job = sdk.engine.jobs[-1]
    assert job.prompt == "make it blue" and len(job.images) == 1
    assert job.images[0].size == (400, 300) and job.images[0].getpixel((5, 5)) == (250, 10, 10)
    assert fetch_image(rsp.output.results[0].url).size == (1184, 880)  # the last image's 4:3 at 1K


def test_image_synthesis_images_follow_the_main_path_rules(sdk):
    refs = [data_uri(300, 300)] * 10
    rsp = ImageSynthesis.async_call(model="wan2.7-image", api_key=KEY, prompt="ten", images=refs)
    assert rsp.status_code == 400 and "at most 9" in rsp.message
    rsp = ImageSynthesis.async_call(model="wan2.7-image", api_key=KEY, prompt="tiny", images=[data_uri(100, 100)])
    assert rsp.status_code == 400 and rsp.message.startswith("image 1:")


def test_aio_stream_call(sdk):
    async def run():
        msg = Message(role="user", content=[{"text": "streamed, async"}])
        stream = await AioImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K",
                                               stream=True)
        return [rsp async for rsp in stream]

    *progress, final = asyncio.run(run())
    assert all(r.status_code == HTTPStatus.OK and r.output.task_status == "RUNNING" for r in progress)
    assert final.status_code == HTTPStatus.OK and len(image_urls(final)) == 1


@pytest.mark.every_store
def test_v2_jobs_list_reads_tasks_from_the_combined_body(sdk):
    """The list body also carries Java's data[]: the v2 client still reads its flat tasks[]."""
    msg = Message(role="user", content=[{"text": "listed by v2"}])
    task = ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1K")
    ImageGeneration.wait(task=task, api_key=KEY)
    page = dashscope.Client(api_key=KEY, base_url=sdk.api_base).images.jobs.list(status="SUCCEEDED", page_size=50)
    assert task.output.task_id in [job.task_id for job in page.tasks]
    assert page.page_size == 50 and page.total >= 1
