"""Presets end to end: `wanimage serve --preset` without weights stops at once with the missing
files and the pull command; a preset pulled through the real huggingface_hub client (a Hub on
loopback serving a tiny SD pipeline saved with save_pretrained) serves both model ids through
the dashscope SDK; GET /v1/models carries the `wanimage` extension; the playground names the
serving model and, for the built-in one, says it is a small offline model with the presets
link. Nothing leaves the machine."""

from __future__ import annotations

import subprocess
import sys
from http import HTTPStatus

import httpx
import numpy as np
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message

from tests.e2e.test_playground import browser, open_page  # noqa: F401 - fixtures
from tests.support.fake_hub import FakeHub
from tests.support.server import dashscope_pointed_at, free_port, start_server
from tests.support.tiny_marian import tiny_marian
from wanimage.cli import main
from wanimage.config import Settings
from wanimage.engines.factories import build_registry

KEY = "sk-test"


def test_serve_preset_without_weights_fails_fast_with_the_files_and_the_pull_command(tmp_path):
    run = subprocess.run([sys.executable, "-m", "wanimage.cli", "serve", "--preset", "sd-turbo",
                          "--data-dir", str(tmp_path), "--port", str(free_port())],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    err = run.stderr
    assert f"preset sd-turbo: weights not on disk in {tmp_path / 'models'}" in err
    assert "stabilityai/sd-turbo: not pulled" in err and "model_index.json, " in err and "unet/" in err
    assert err.rstrip().endswith(f"wanimage pull sd-turbo --models-dir {tmp_path / 'models'}")
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def preset_server(tmp_path_factory):
    """sd-turbo pulled from a loopback Hub (a tiny pipeline under its name), served by a preset."""
    from diffusers import StableDiffusionPipeline

    from wanimage.engines.diffusers.tiny import tiny_component, tiny_cpu_speedups, tiny_pipeline

    tmp = tmp_path_factory.mktemp("preset")
    tiny_pipeline(StableDiffusionPipeline, "sd").save_pretrained(tmp / "repo", variant="fp16")
    tiny_component("taesd", "vae").save_pretrained(tmp / "taesd")  # its tiny autoencoder, pulled with it
    translator = tiny_marian(tmp / "opus-mt-zh-en")  # pulled with the preset: Chinese prompts for CLIP
    hub = FakeHub({"stabilityai/sd-turbo": tmp / "repo", "Helsinki-NLP/opus-mt-zh-en": translator,
                   "madebyollin/taesd": tmp / "taesd"}).start()
    # the config file on top, for the pull and the server: tiny sizes, so the CPU test is quick, and
    # the OpenVINO IR in float16 (one conversion child; the calibrated int8 kinds' two take a minute
    # more, and test_openvino_backend.py's int8_hybrid test converts them as `wanimage pull` does)
    overrides = tmp / "engines.toml"
    overrides.write_text('[defaults]\nmax_generate_pixels = 4096\nreference_pixels = 4096\nquantize = "none"\n')
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_ENDPOINT", hub.url)
    mp.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    mp.setenv("WANIMAGE_ENGINE_CONFIG", str(overrides))
    try:
        assert main(["--log-level", "error", "pull", "sd-turbo", "--models-dir", str(tmp / "models")]) == 0
    finally:
        hub.stop()
        mp.undo()
    settings = Settings(data_dir=tmp / "data", preset="sd-turbo", models_dir=tmp / "models", engine_config=overrides)
    with tiny_cpu_speedups():
        with dashscope_pointed_at(start_server(tmp / "data", registry=build_registry(settings))) as running:
            yield running


def pixels_of(url: str) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    return np.asarray(Image.open(BytesIO(httpx.get(url, timeout=30).content)).convert("RGB"))


@pytest.mark.parametrize("model", ["wan2.7-image", "wan2.7-image-pro"])
def test_a_pulled_preset_serves_both_model_ids(preset_server, model):
    msg = Message(role="user", content=[{"text": "a red apple on a table"}])
    rsp = ImageGeneration.call(model=model, api_key=KEY, messages=[msg], size="1024*768", seed=5)
    assert rsp.status_code == HTTPStatus.OK, rsp.message
    url = rsp.output.choices[0]["message"]["content"][0]["image"]
    assert pixels_of(url).shape == (768, 1024, 3)


def test_models_lists_engine_preset_checkpoints_disk_and_memory(preset_server):
    ImageGeneration.call(model="wan2.7-image", api_key=KEY, size="1024*1024", seed=1,
                         messages=[Message(role="user", content=[{"text": "a cat"}])])
    body = httpx.get(preset_server.base_url + "/v1/models", timeout=30).json()
    assert body["object"] == "list"
    row = next(m for m in body["data"] if m["id"] == "wan2.7-image")
    assert {"id", "object", "created", "owned_by"} <= set(row) and row["object"] == "model"
    ext = row["wanimage"]
    assert ext["engine"] == "diffusers" and ext["preset"] == "sd-turbo" and ext["device"] == "cpu"
    assert ext["on_disk"] is True and ext["disk_bytes"] > 100_000
    assert ext["checkpoints"][0]["source"].endswith("stabilityai--sd-turbo")
    assert set(ext["checkpoints"][0]["roles"]) == {"text_to_image", "edit", "inpaint", "refine"}
    assert ext["resident"] is True and ext["memory_bytes"] > 0  # text-to-image ran: its pipeline is loaded
    vae = ext["checkpoints"][-1]  # the tiny autoencoder pulled with the preset decodes
    assert vae["source"].endswith("madebyollin--taesd") and vae["roles"] == ["vae"] and vae["on_disk"] is True


def test_a_box_edit_through_the_tiny_autoencoder_keeps_every_pixel_outside_the_box(preset_server):
    from base64 import b64encode
    from io import BytesIO

    from PIL import Image

    src = np.random.default_rng(3).integers(0, 256, (768, 1024, 3), dtype=np.uint8)
    buf = BytesIO()
    Image.fromarray(src).save(buf, "PNG")
    image = "data:image/png;base64," + b64encode(buf.getvalue()).decode()
    box = [200, 100, 600, 500]
    msg = Message(role="user", content=[{"image": image}, {"text": "a red ball in the box"}])
    rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], size="1024*768", seed=4,
                               bbox_list=[[box]])
    assert rsp.status_code == HTTPStatus.OK, rsp.message
    out = pixels_of(rsp.output.choices[0]["message"]["content"][0]["image"])
    inside = np.zeros((768, 1024), dtype=bool)
    inside[100:500, 200:600] = True
    assert np.array_equal(out[~inside], src[~inside]) and not np.array_equal(out[inside], src[inside])


def test_playground_names_the_preset_serving(preset_server, open_page):  # noqa: F811
    page = open_page(preset_server)
    page.wait_for_function("document.querySelector('#serving').textContent.length > 0")
    assert "preset sd-turbo" in page.text_content("#serving")


def test_builtin_is_labelled_a_small_offline_model_with_the_presets_link(tmp_path, open_page):  # noqa: F811
    running = start_server(tmp_path / "data", registry=build_registry(Settings(data_dir=tmp_path / "data")))
    try:
        ext = httpx.get(running.base_url + "/v1/models", timeout=30).json()["data"][0]["wanimage"]
        assert ext["engine"] == "builtin" and "small offline model" in ext["label"] and ext["on_disk"] is True
        page = open_page(running)
        page.wait_for_function("document.querySelector('#serving').textContent.length > 0")
        line = page.text_content("#serving")
        assert "built-in model" in line and "small offline model" in line
        page.click("#serving a")
        page.wait_for_selector("h1")
        assert page.url.endswith("/playground/presets") and "sd-turbo" in page.text_content("table")
        assert "wanimage pull sd-turbo" in page.text_content("pre")
    finally:
        running.stop()


def test_a_chinese_prompt_reaches_clip_in_english_and_the_answer_says_so(preset_server):
    from openai import OpenAI

    from wanimage.engines.diffusers.translate import MarianTranslator

    folder = preset_server.settings.data_dir.parent / "models" / "Helsinki-NLP--opus-mt-zh-en"  # as pulled
    english = MarianTranslator(str(folder))("一个红苹果")  # the tiny model's translation, computed here too
    client = OpenAI(base_url=preset_server.base_url + "/v1", api_key=KEY, max_retries=0)
    rsp = client.images.generate(model="wan2.7-image", prompt="一个红苹果", size="1024x768", response_format="b64_json")
    assert rsp.data[0].revised_prompt == english != "一个红苹果"
