"""`wanimage generate` and `wanimage models` with the built-in engine and its committed weights."""

from __future__ import annotations

import io
import subprocess
import sys

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import png_bytes

CLI = [sys.executable, "-m", "wanimage.cli"]


def run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_generate_reports_bad_input_in_one_line(tmp_path):
    done = run("generate", "x", "--n", "9", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: n: 9 is out of range") and "Traceback" not in done.stderr


@pytest.mark.slow
def test_models_lists_every_id(tmp_path):
    done = run("models", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # one engine serves them all: the ids named once, then one description
    assert lines[0].startswith("wan2.7-image, wan2.7-image-pro, wan2.6-t2i, wan2.6-image, qwen-image,")
    assert lines[1].startswith("qwen-image-2.0-pro ") and "engine=builtin" in lines[1] and "text-to-image" in lines[1]
    # described from its files: nothing loaded (no "Loading weights" bar, not resident)
    assert "Loading weights" not in done.stderr and "not resident (loads on first use)" in done.stdout
    assert "builtin.safetensors (on disk" in done.stdout
    loaded = run("models", "--load", cwd=tmp_path)
    assert loaded.returncode == 0 and "; resident, " in loaded.stdout, loaded.stderr


def test_models_without_load_imports_no_torch(tmp_path):
    """Listing describes the built-in model from its files: torch (2.5 s to import on 2 cores) stays out."""
    code = ("import sys; from wanimage.cli import main; code = main(['models']); "
            "print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "no torch", done.stdout + done.stderr


def test_the_builtin_model_loads_without_transformers_and_its_bars_stay_quiet(tmp_path):
    """`generate` here: the built-in model (MiniLM run by wanimage.model.text) loads without
    importing transformers, and an engine that imports it later finds its "Loading weights" bar
    off (huggingface_hub's switch, read when transformers is imported)."""
    code = ("import sys; from wanimage.cli.local import _quiet_library_bars; _quiet_library_bars(); "
            "from wanimage.engines.builtin import load_builtin_engine; load_builtin_engine(); "
            "print('transformers imported' if 'transformers' in sys.modules else 'no transformers'); "
            "from transformers.utils import logging; print('bar', logging.is_progress_bar_enabled())")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.splitlines()[-2:] == ["no transformers", "bar False"], (
        done.stdout + done.stderr)


@pytest.fixture(scope="module")
def builtin_server(tmp_path_factory):
    from tests.support.server import start_server
    from wanimage.config import Settings
    from wanimage.engines.factories import build_registry

    data = tmp_path_factory.mktemp("cli-vs-server")
    running = start_server(data, registry=build_registry(Settings(data_dir=data)))
    yield running
    running.stop()


def server_pixels(server, prompt: str, **parameters) -> np.ndarray:
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
            "parameters": {"size": "1K", "n": 1, "watermark": False, **parameters}}
    answer = httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    url = answer.json()["output"]["choices"][0]["message"]["content"][0]["image"]
    return np.asarray(Image.open(io.BytesIO(httpx.get(url).content)).convert("RGB"))


@pytest.mark.slow
def test_the_cli_draws_the_same_pixels_as_the_server(tmp_path, builtin_server):
    prompt = "two red apples on the left and a cat on the right"
    done = run("generate", prompt, "--size", "1K", "--seed", "42", "-o", "on", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = run("generate", prompt, "--size", "1K", "--seed", "42", "--no-thinking", "-o", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cli_on = np.asarray(Image.open(tmp_path / "on" / "wanimage-42-1.png").convert("RGB"))
    cli_off = np.asarray(Image.open(tmp_path / "off" / "wanimage-42-1.png").convert("RGB"))
    assert np.array_equal(cli_on, server_pixels(builtin_server, prompt, seed=42))  # thinking on by default
    assert np.array_equal(cli_off, server_pixels(builtin_server, prompt, seed=42, thinking_mode=False))
    assert not np.array_equal(cli_on, cli_off)  # --no-thinking changes the picture: the plan is skipped


def test_generate_names_a_missing_file_bad_palette_and_unwritable_output(tmp_path):
    done = run("generate", "x", "--image", "nope.png", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.strip() == (
        "error: --image nope.png: no such file (give a path, an http(s) URL or a data: URI)")
    done = run("generate", "x", "--palette", "red", cwd=tmp_path)
    assert done.returncode == 1 and "--palette 'red': 'red' is not HEX:PERCENT" in done.stderr
    done = run("generate", "x", "--palette", '[{"hex": ', cwd=tmp_path)
    assert done.returncode == 1 and "--palette: not valid JSON" in done.stderr
    (tmp_path / "file").write_text("")
    done = run("generate", "x", "-o", "file/sub", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("error: -o file/sub: cannot write there")
    assert "%|" not in done.stderr  # refused before the model was loaded or anything generated
    for stderr in (done.stderr,):
        assert "Traceback" not in stderr


def test_every_generate_option_says_what_it_does_and_its_default():
    import argparse

    from wanimage.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    generate = sub.choices["generate"]
    options = [a for a in generate._actions if a.option_strings and a.dest != "help"]
    assert all(a.help for a in options), [a.dest for a in options if not a.help]
    repeatable_or_free = {"image", "bbox", "palette", "server"}
    missing = [a.dest for a in options if a.dest not in repeatable_or_free and "default" not in a.help]
    assert not missing, missing


@pytest.mark.slow
def test_generate_text_to_image_never_overwrites_unless_asked_and_the_short_palette_form_works(tmp_path,
                                                                                             builtin_server):
    # On a running server (a local `generate` loads the model in a new process, most of its time;
    # test_the_cli_draws_the_same_pixels_as_the_server runs it): the first run is also the plain
    # text-to-image check (the file, its path on stdout, its size, the progress bar).
    args = ("generate", "a blue star", "--size", "768*768", "--seed", "5", "--no-thinking",
            "--palette", "#1E88E5:60,#FFFFFF:30,#FFC107:10", "-o", "out", "--server", builtin_server.base_url)
    first = run(*args, cwd=tmp_path)
    second = run(*args, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.strip() == "out/wanimage-5-1.png" and second.stdout.strip() == "out/wanimage-5-1-2.png"
    assert Image.open(tmp_path / first.stdout.strip()).size == (768, 768)
    assert "100%" in first.stderr  # the progress bar ran to the end
    same = Image.open(tmp_path / "out/wanimage-5-1.png").tobytes() == Image.open(tmp_path / "out/wanimage-5-1-2.png").tobytes()
    assert same  # same request + seed -> same pixels (the files differ: task id, C2PA signature)
    third = run(*args, "--overwrite", cwd=tmp_path)
    assert third.stdout.strip() == "out/wanimage-5-1.png"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["wanimage-5-1-2.png", "wanimage-5-1.png"]
    assert "%/s" not in first.stderr and "100%" in first.stderr  # percent of the task, not a rate of percent
    assert "HTTP Request" not in first.stderr  # httpx's request log stays out of the progress bar


@pytest.mark.slow
def test_generate_an_edit_here_and_on_a_running_server_gives_the_same_pixels(tmp_path, builtin_server):
    (tmp_path / "photo.png").write_bytes(png_bytes(400, 300, (30, 90, 200)))
    args = ("generate", "a yellow star in the box", "--image", "photo.png", "--bbox", "1:20,20,200,150",
            "--size", "1K", "--seed", "8")
    local = run(*args, "-o", "local", cwd=tmp_path)
    remote = run(*args, "-o", "remote", "--server", builtin_server.base_url, cwd=tmp_path)
    assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
    assert Image.open(tmp_path / "local" / "wanimage-8-1.png").size == (1184, 880)  # the photo's 4:3 at 1K
    assert remote.stdout.strip() == "remote/wanimage-8-1.png"
    assert "Loading weights" not in remote.stderr and "100%" in remote.stderr
    pixels = [np.asarray(Image.open(tmp_path / d / "wanimage-8-1.png").convert("RGB")) for d in ("local", "remote")]
    assert np.array_equal(*pixels)
    tasks = httpx.get(builtin_server.api_base + "/tasks", params={"page_size": 100}).json()["tasks"]
    assert any(t["task_status"] == "SUCCEEDED" for t in tasks)  # it ran there, as an async task

    done = run("generate", "x", "--n", "2", "--server", builtin_server.base_url, "-o", "bad",
               "--model", "wan2.7-image-pro", "--size", "4K", "--sequential", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_generate_says_when_the_server_cannot_be_reached(tmp_path):
    from tests.support.server import free_port

    done = run("generate", "x", "--server", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert done.returncode == 1 and "cannot reach the server" in done.stderr


def test_a_bad_setting_is_one_line_naming_its_variable(tmp_path):
    import os

    env = {**os.environ, "WANIMAGE_PORT": "abc"}
    done = subprocess.run([*CLI, "serve"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("error: setting port (WANIMAGE_PORT): Input should be a valid integer")
    env = {**os.environ, "WANIMAGE_METRICS_ALLOW": "10.0.0.0/24,nope"}
    done = subprocess.run([*CLI, "serve"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and "'nope' is not an address or network" in done.stderr


def test_ctrl_c_stops_the_server_gracefully_without_a_traceback(tmp_path):
    import signal
    import time

    from tests.support.server import free_port

    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--data-dir", str(tmp_path), "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert err.rstrip().endswith("wanimage: stopped")
