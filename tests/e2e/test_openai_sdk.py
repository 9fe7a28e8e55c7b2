"""The official openai SDK against a real server on loopback, unchanged but for the base URL."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from openai import OpenAI
from PIL import Image

from tests.conftest import png_bytes
from wanimage.types import MODELS, Box, scale_boxes

pytestmark = pytest.mark.store_independent  # the openai SDK's request and answer shapes


@pytest.fixture
def client(server):
    return OpenAI(base_url=server.base_url + "/v1", api_key="sk-test", max_retries=0)


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_generate_url(client, server):
    rsp = client.images.generate(
        model="wan2.7-image", prompt="a blue kite", size="1024x1024", n=2,
        extra_body={"seed": 5, "watermark": False, "thinking_mode": False},
    )
    assert len(rsp.data) == 2
    assert rsp.data[0].url.startswith(server.base_url + "/files/")
    assert rsp.data[0].revised_prompt == "a blue kite"
    got = httpx.get(rsp.data[0].url)
    assert got.status_code == 200 and Image.open(io.BytesIO(got.content)).size == (1024, 1024)
    assert rsp._request_id  # read from the x-request-id header


def test_generate_b64_json(client):
    rsp = client.images.generate(model="wan2.7-image-pro", prompt="a fox", size="1K", response_format="b64_json",
                                 extra_body={"seed": 3})
    assert len(rsp.data) == 1 and decode(rsp.data[0].b64_json).size == (1024, 1024)
    again = client.images.generate(model="wan2.7-image-pro", prompt="a fox", size="1K", response_format="b64_json",
                                   extra_body={"seed": 3})
    # same seed, same pixels (the files differ: each names its task and has its own C2PA signature)
    assert decode(again.data[0].b64_json).tobytes() == decode(rsp.data[0].b64_json).tobytes()


def test_generate_stream_with_partial_images(client):
    events = list(client.images.generate(model="wan2.7-image", prompt="a tree", size="1K", stream=True, partial_images=2))
    kinds = [e.type for e in events]
    assert kinds.count("image_generation.partial_image") == 2
    assert kinds[-1] == "image_generation.completed"
    assert [e.partial_image_index for e in events if e.type.endswith("partial_image")] == [0, 1]
    assert decode(events[-1].b64_json).size == (1024, 1024)


def test_stream_sends_every_partial_image_however_fast_the_engine(client):
    # The test engine runs its 4 steps without pausing, often before the HTTP handler would have
    # started listening: the stream must still carry all the partial images asked for, every time.
    for _ in range(15):
        events = list(client.images.generate(model="wan2.7-image", prompt="a tree", size="1K", stream=True, partial_images=3))
        assert [e.partial_image_index for e in events if e.type.endswith("partial_image")] == [0, 1, 2]
        assert events[-1].type == "image_generation.completed"


def test_edit_one_file(client, server):
    rsp = client.images.edit(
        model="wan2.7-image", image=("a.png", png_bytes(400, 300), "image/png"), prompt="add a hat", size="1K",
        extra_body={"bbox_list": json.dumps([[[10, 10, 100, 100]]]), "seed": "11"},
    )
    assert len(rsp.data) == 1
    job = server.engine.jobs[-1]
    assert job.seed == 11 and list(job.edit_boxes) == scale_boxes([Box(10, 10, 100, 100)], (400, 300), (job.width, job.height))
    assert (job.width, job.height) == (1184, 880)  # 4:3 of the input at the 1K budget


def test_edit_several_files_stream(client, server):
    files = [("a.png", png_bytes(300, 300, (255, 0, 0)), "image/png"), ("b.png", png_bytes(600, 300, (0, 0, 255)), "image/png")]
    events = list(client.images.edit(model="wan2.7-image", image=files, prompt="merge", size="1K", stream=True, partial_images=1))
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    job = server.engine.jobs[-1]
    assert [im.size for im in job.images] == [(300, 300), (600, 300)]


def test_edit_several_files(client, server):
    files = [("a.png", png_bytes(300, 300, (255, 0, 0)), "image/png"), ("b.png", png_bytes(600, 300, (0, 0, 255)), "image/png")]
    rsp = client.images.edit(model="wan2.7-image", image=files, prompt="merge", size="1K", n=2, response_format="b64_json")
    assert len(rsp.data) == 2
    assert decode(rsp.data[0].b64_json).size == (1456, 720)


def test_models(client):
    ids = {m.id for m in client.models.list()}
    assert ids == set(MODELS)  # the built-in model serves every id


def test_error_envelope(client):
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="wan2.7-image", prompt="x", size="3K")
    err = info.value
    assert err.status_code == 400 and err.code == "InvalidParameter" and err.param == "size"
