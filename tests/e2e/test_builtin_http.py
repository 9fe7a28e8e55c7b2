"""The built-in model behind a real server, as `make serve` runs it (default settings, committed
weights), through the dashscope SDK: every API mode, judged on the pixels a user gets back.

Colour and placement are checked here (cheap and robust); whether the objects are recognisable is
measured by bench/builtin_quality.py with its classifier (docs/model-card.md)."""

from __future__ import annotations

import base64
import io
import json
from http import HTTPStatus

import httpx
import numpy as np
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message
from PIL import Image

from tests.support.server import dashscope_pointed_at, start_server
from wanimage.config import Settings
from wanimage.core.postprocess import palette_distance
from wanimage.engines.factories import build_registry
from wanimage.types import PaletteColor

pytestmark = pytest.mark.slow
KEY = "sk-test"
MODEL = "wan2.7-image"


@pytest.fixture(scope="module")
def builtin_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("builtin-server")
    with dashscope_pointed_at(start_server(data, registry=build_registry(Settings(data_dir=data)))) as running:
        yield running


def call(text: str, images: list[str] = (), **params):
    msg = Message(role="user", content=[{"text": text}, *({"image": uri} for uri in images)])
    rsp = ImageGeneration.call(model=MODEL, api_key=KEY, messages=[msg], watermark=False, **params)
    assert rsp.status_code == HTTPStatus.OK, rsp
    return rsp


def pictures(rsp) -> list[np.ndarray]:
    urls = [c["image"] for ch in rsp.output.choices for c in ch["message"]["content"] if c.get("type") == "image"]
    return [np.asarray(Image.open(io.BytesIO(httpx.get(u).content)).convert("RGB")).astype(int) for u in urls]


def foreground(a: np.ndarray) -> np.ndarray:
    """Pixels far from the border's median colour: the drawn objects on a plain background."""
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return np.abs(a - np.median(border, axis=0)).sum(-1) > 90


def data_uri(a: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def texture(width: int, height: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3))


def test_a_red_apple_is_a_red_object_and_seeds_are_reproducible(builtin_server):
    first = call("a red apple", size="1024*1024", seed=7)
    a = pictures(first)[0]
    assert a.shape == (1024, 1024, 3)
    fg = foreground(a)
    assert 0.05 < fg.mean() < 0.8  # one object, on a background
    red = (a[..., 0] > a[..., 1] + 60) & (a[..., 0] > a[..., 2] + 60)
    assert (red & fg).sum() / fg.sum() > 0.5  # mostly red
    assert (pictures(call("a red apple", size="1024*1024", seed=7))[0] == a).all()
    assert (pictures(call("a red apple", size="1024*1024", seed=8))[0] != a).any()


def test_bbox_edit_draws_inside_the_box_and_keeps_every_other_pixel(builtin_server):
    photo = texture(1024, 768, 1)  # asked for at its own size: no resampling, so exact outside
    rsp = call("add a yellow star", [data_uri(photo)], bbox_list=[[[100, 100, 420, 420]]], size="1024*768", seed=3)
    out = pictures(rsp)[0]
    assert out.shape == photo.shape
    keep = np.ones(photo.shape[:2], bool)
    keep[100:420, 100:420] = False
    assert (out[keep] == photo[keep]).all()
    inside = out[100:420, 100:420]
    assert np.abs(inside - photo[100:420, 100:420]).mean() > 20  # something was drawn there
    yellow = (inside[..., 0] > 150) & (inside[..., 1] > 150) & (inside[..., 2] < 120)
    assert yellow.mean() > 0.05


def test_a_two_image_edit_takes_the_last_images_aspect(builtin_server):
    rsp = call("add a cat", [data_uri(texture(600, 600, 2)), data_uri(texture(1200, 600, 3))], size="1K", seed=5)
    (out,) = pictures(rsp)
    assert abs(out.shape[1] / out.shape[0] - 2.0) < 0.05


def test_an_image_set_follows_each_prompt_on_one_background(builtin_server):
    rsp = call("image 1: a cat. image 2: a dog. image 3: a tree", size="1024*1024", n=3,
               enable_sequential=True, seed=11)
    images = pictures(rsp)
    assert len(images) == 3 and rsp.usage.image_count == 3
    corners = [im[:8, :8].reshape(-1, 3).mean(0) for im in images]
    assert all(np.abs(c - corners[0]).max() < 2 for c in corners)  # one background for the set
    assert all(0.02 < foreground(im).mean() < 0.8 for im in images)
    assert not (images[0] == images[1]).all()


def test_color_palette_moves_the_picture_toward_the_palette(builtin_server):
    palette = [{"hex": "#E63C3C", "ratio": "50.00%"}, {"hex": "#285AC8", "ratio": "30.00%"},
               {"hex": "#FADC50", "ratio": "20.00%"}]
    wanted = [PaletteColor((0xE6, 0x3C, 0x3C), 0.5), PaletteColor((0x28, 0x5A, 0xC8), 0.3),
              PaletteColor((0xFA, 0xDC, 0x50), 0.2)]
    plain = pictures(call("a house", size="1024*1024", seed=4))[0]
    steered = pictures(call("a house", size="1024*1024", seed=4, color_palette=palette))[0]
    before = palette_distance(Image.fromarray(plain.astype(np.uint8)), wanted)
    after = palette_distance(Image.fromarray(steered.astype(np.uint8)), wanted)
    assert after < 0.7 * before, (before, after)


def test_thinking_mode_returns_its_plan_and_places_the_objects(builtin_server):
    rsp = call("two red apples on the left and a blue car on the right", size="1024*1024", seed=9)
    (content,) = [ch["message"]["content"] for ch in rsp.output.choices]
    texts = [c["text"] for c in content if c.get("type") == "text"]
    assert texts and "apple" in texts[0].lower() and texts[0] != "two red apples on the left and a blue car on the right"
    a = pictures(rsp)[0]
    red = foreground(a) & (a[..., 0] > a[..., 1] + 60) & (a[..., 0] > a[..., 2] + 60)
    blue = foreground(a) & (a[..., 2] > a[..., 0] + 40)
    assert red[:, :512].sum() > 4 * red[:, 512:].sum()  # the apples on the left
    assert blue[:, 512:].sum() > 4 * blue[:, :512].sum()  # the car on the right


def test_async_task_reports_progress_and_succeeds(builtin_server):
    msg = Message(role="user", content=[{"text": "a rocket"}])
    task = ImageGeneration.async_call(model=MODEL, api_key=KEY, messages=[msg], size="1024*1024", seed=2)
    assert task.status_code == HTTPStatus.OK, task
    done = ImageGeneration.wait(task, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED", done
    assert json.loads(json.dumps(done.output))["choices"][0]["message"]["content"][0]["image"].startswith("http")
