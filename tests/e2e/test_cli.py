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


@pytest.mark.slow
def test_generate_text_to_image_and_edit(tmp_path):
    done = run("generate", "a red apple", "--size", "768*768", "--seed", "3", "-o", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "out" / "wanimage-3-1.png"
    assert done.stdout.strip() == str(path.relative_to(tmp_path)) and Image.open(path).size == (768, 768)
    assert "100%" in done.stderr  # the progress bar ran to the end

    (tmp_path / "photo.png").write_bytes(png_bytes(400, 300, (30, 90, 200)))
    done = run("generate", "a yellow star in the box", "--image", "photo.png", "--bbox", "1:20,20,200,150",
               "--size", "1K", "--seed", "4", "-o", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    edited = Image.open(tmp_path / "out" / "wanimage-4-1.png")
    assert edited.size == (1184, 880)


def test_generate_reports_bad_input_in_one_line(tmp_path):
    done = run("generate", "x", "--n", "9", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: n: 9 is out of range") and "Traceback" not in done.stderr


@pytest.mark.slow
def test_models_lists_both_ids(tmp_path):
    done = run("models", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("wan2.7-image ") and "text-to-image" in line for line in lines)
    assert any(line.startswith("wan2.7-image-pro") for line in lines)


@pytest.fixture(scope="module")
def builtin_server(tmp_path_factory):
    from tests.support.server import start_server
    from wanimage.config import Settings
    from wanimage.engines.catalog import build_registry

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
