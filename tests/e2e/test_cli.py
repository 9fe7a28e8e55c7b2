"""`wanimage generate` and `wanimage models` with the built-in engine and its committed weights."""

from __future__ import annotations

import subprocess
import sys

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
