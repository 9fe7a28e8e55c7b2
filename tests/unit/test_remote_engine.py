"""The remote engine's parts: its config table, which ids engines/factories.py makes remote, the sizes it
asks for, and the engine against a real (tiny) OpenAI images server on loopback: the mask it
sends, progress while a call runs, and a cancel that closes the request."""

from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pytest
from PIL import Image

from tests.support.openai_images import ImagesBackend, color_of
from wanimage.config import Settings
from wanimage.core.job import make_job
from wanimage.engines.base import GenerationJob
from wanimage.engines.factories import engine_factories
from wanimage.engines.remote import RemoteEngine
from wanimage.engines.remote.config import RemoteConfig, RemoteConfigError, parse_remote
from wanimage.errors import ApiError
from wanimage.types import MODELS, Box, Canceled, Mode


def test_a_table_with_defaults_and_a_key_from_the_environment():
    cfg = parse_remote({"engine": "remote", "base_url": "http://10.0.0.5:30010/v1/", "api_key_env": "K"},
                       "f: models.x", env={"K": "secret"})
    assert cfg.base_url == "http://10.0.0.5:30010/v1" and cfg.api_key == "secret"
    assert (cfg.n, cfg.edits, cfg.mask, cfg.stream, cfg.max_concurrency) == (True, True, False, False, 1)
    assert "secret" not in repr(cfg) and cfg.label == "http://10.0.0.5:30010/v1"


@pytest.mark.parametrize(("raw", "words"), [
    ({"base_url": "http://h/v1", "steps": 4}, "unknown keys ['steps']"),
    ({"base_url": "h:30010"}, "base_url: give the backend's URL ending in /v1"),
    ({"base_url": "http://h/v1", "max_concurrency": "2"}, "max_concurrency: expected int"),
    ({"base_url": "http://h/v1", "api_key_env": "NOPE"}, "NOPE is not set"),
    ({"base_url": "http://h/v1", "sizes": ["big"]}, "'big' is not WIDTHxHEIGHT"),
    ({"base_url": "http://h/v1", "generations": False, "edits": False}, "at least one of generations, edits"),
])
def test_a_malformed_table_names_the_key(raw, words):
    with pytest.raises(RemoteConfigError, match="f: models.x") as err:
        parse_remote(raw, "f: models.x", env={})
    assert words in str(err.value)


def test_the_catalog_makes_remote_only_the_tables_that_say_so(tmp_path):
    path = tmp_path / "engines.toml"
    path.write_text('[models."wan2.7-image-pro"]\nengine = "remote"\nbase_url = "http://127.0.0.1:9/v1"\n')
    factories = engine_factories(Settings(data_dir=tmp_path, engine_config=path))
    assert set(factories) == set(MODELS)  # every id the remote table leaves out: the built-in model
    assert factories["wan2.7-image"] is not factories["wan2.7-image-pro"]  # the built-in one stays
    both = engine_factories(Settings(data_dir=tmp_path, remote_url="http://127.0.0.1:9/v1", remote_model="m"))
    a, b = both["wan2.7-image"](), both["wan2.7-image-pro"]()
    assert a.backend is b.backend and a.slots is b.slots and a.cfg.model == "m"  # one backend, one bound
    path.write_text('[models."wan2.7-image"]\nengine = "remote"\nbase_url = "http://h/v1"\ntimeout = 3\n')
    with pytest.raises(SystemExit, match="unknown keys \\['timeout'\\]"):
        engine_factories(Settings(data_dir=tmp_path, engine_config=path))
    shipped = pickle.loads(pickle.dumps(both["wan2.7-image"]))  # as Ray Serve sends it to a replica
    assert shipped().backend is not a.backend  # the replica builds its own connection
    with pytest.raises(SystemExit, match="engine remote needs WANIMAGE_REMOTE_URL"):
        engine_factories(Settings(data_dir=tmp_path, engine="remote"))


def engine_for(url: str, **keys) -> RemoteEngine:
    return RemoteEngine("wan2.7-image", RemoteConfig(base_url=url, health_interval_seconds=60, **keys))


def test_sizes_go_out_as_the_backend_takes_them():
    fixed = engine_for("http://127.0.0.1:9/v1", sizes=("1024x1024", "1536x1024", "1024x1536"))
    assert fixed.backend_size(2048, 1152) == (1536, 1024) and fixed.backend_size(720, 1456) == (1024, 1536)
    free = engine_for("http://127.0.0.1:9/v1", size_multiple=64, max_pixels=512 * 512)
    w, h = free.backend_size(2048, 1024)
    assert w % 64 == 0 and h % 64 == 0 and w * h <= 512 * 512 and abs(w / h - 2) < 0.4


@pytest.fixture
def tiny():
    backend = ImagesBackend().start()
    yield backend
    backend.stop()


def job(mode: Mode, **kw) -> GenerationJob:
    return make_job(model="wan2.7-image", mode=mode, prompt="p", width=640, height=480, n=1, seed=3, **kw)


def test_box_edit_with_a_mask_backend_sends_a_transparent_hole(tiny):
    engine = engine_for(tiny.base_url, mask=True, max_pixels=320 * 240)
    source = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    out = engine.generate(job(Mode.EDIT, images=[source], boxes=[[Box(100, 75, 200, 150)]]), lambda f, p=None: None)
    call = tiny.calls[-1]
    assert call.endpoint == "edits" and call.images == [(320, 240)] and call.mask == (320, 240)
    assert out[0].size == (640, 480)


def test_a_box_on_a_source_image_sends_only_that_region_as_the_reference(tiny):
    """"Put the cat of image 1 into the box of image 2": image 1's box marks the object to take,
    so the backend gets that region of image 1 beside the canvas, as the diffusers engine does."""
    engine = engine_for(tiny.base_url, mask=True, max_pixels=320 * 240, edit_max_images=2)
    rng = np.random.default_rng(1)
    cat, room = (Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)) for _ in range(2))
    boxes = [[Box(40, 30, 140, 110)], [Box(100, 75, 200, 150)]]
    engine.generate(job(Mode.EDIT, images=[cat, room], boxes=boxes), lambda f, p=None: None)
    assert tiny.calls[-1].images == [(320, 240), (100, 80)]  # the canvas, then image 1's box
    engine.generate(job(Mode.EDIT, images=[cat, room], boxes=[[], boxes[1]]), lambda f, p=None: None)
    assert tiny.calls[-1].images == [(320, 240), (400, 300)]  # no box on image 1: all of it


def test_progress_runs_while_the_backend_works_and_cancel_closes_the_request(tiny):
    tiny.delay = 5.0
    engine = engine_for(tiny.base_url)
    seen: list[float] = []
    stop = threading.Event()

    def progress(fraction, preview=None):
        seen.append(fraction)
        if stop.is_set():
            raise Canceled

    threading.Timer(0.6, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Canceled):
        engine.generate(job(Mode.TEXT_TO_IMAGE), progress)
    assert time.monotonic() - started < 2.0  # not the backend's 5 s
    assert len(seen) >= 3 and seen == sorted(seen) and 0 < seen[-1] < 1
    deadline = time.monotonic() + 3
    while not tiny.disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tiny.disconnects == 1  # the request was closed: the server saw its client hang up


def test_url_answers_come_only_from_the_backends_own_host(tiny):
    engine = engine_for(tiny.base_url, response_format="url")
    tiny.url_answers = "relative"  # SGLang answers /v1/images/ID/content
    out = engine.generate(job(Mode.TEXT_TO_IMAGE), lambda f, p=None: None)
    assert out[0].getpixel((5, 5)) == color_of(tiny.calls[-1].prompt, 3)
    tiny.url_answers = "foreign"  # e.g. the cloud metadata address: never fetched
    with pytest.raises(ApiError, match="not its own host") as err:
        engine.generate(job(Mode.TEXT_TO_IMAGE), lambda f, p=None: None)
    assert err.value.code == "InternalError.Algo"


def test_wanimage_models_names_the_backend_of_a_remote_model(tiny, tmp_path, monkeypatch, capsys):
    from wanimage.cli import main

    monkeypatch.setenv("WANIMAGE_REMOTE_URL", tiny.base_url + "/v1")
    monkeypatch.setenv("WANIMAGE_DATA_DIR", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "weights on the backend" in out and "0 B" not in out
    assert f"{tiny.base_url}" in out and "reachable, answered in" in out


@pytest.mark.parametrize(("takes_it", "sent"), [(True, "blurry"), (False, None)])
def test_negative_prompt_goes_to_backends_that_take_one_and_the_log_says_when_not(tiny, takes_it, sent, caplog):
    caplog.set_level("INFO", logger="wanimage.engines")
    engine = engine_for(tiny.base_url, negative_prompt=takes_it, max_pixels=64 * 48)
    engine.generate(job(Mode.TEXT_TO_IMAGE, negative_prompt="blurry"), lambda f, p=None: None)
    assert tiny.calls[-1].negative_prompt == sent
    assert ("negative_prompt not forwarded" in caplog.text) is not takes_it
