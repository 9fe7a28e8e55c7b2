"""Provenance end to end: an image made through the real dashscope SDK is checked by
`POST /api/v1/verify` and by `wanimage verify`, after the edits images go through."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys

import httpx
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message
from PIL import Image

from tests.conftest import png_bytes

pytestmark = pytest.mark.store_independent  # provenance marks on the PNG

KEY = "sk-test"


def make_image(prompt: str, seed: int, images: tuple[str, ...] = ()) -> tuple[str, bytes]:
    content = [{"text": prompt}, *({"image": url} for url in images)]
    task = ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, n=1, size="1K", seed=seed,
                                      messages=[Message(role="user", content=content)])
    done = ImageGeneration.wait(task=task, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED", done
    url = next(c["image"] for ch in done.output.choices for c in ch["message"]["content"] if c.get("type") == "image")
    return task.output.task_id, httpx.get(url).content


def verify(server, *files: tuple[str, bytes, str]) -> dict:
    response = httpx.post(server.api_base + "/verify", headers={"Authorization": f"Bearer {KEY}"},
                          files=[("file", f) for f in files], timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_result_carries_every_mark(sdk, server):
    task_id, png = make_image("a lighthouse, at night", seed=21)
    answer = verify(server, ("result.png", png, "image/png"))
    (result,) = answer["results"]
    assert answer["wanimage_mark"] is True and result["wanimage_mark"] is True and result["format"] == "PNG"
    c2pa = result["c2pa"]
    assert c2pa["status"] == "untrusted" and c2pa["failures"] == []  # intact, signed by the self-made key
    assert c2pa["generator"].startswith("wanimage ") and c2pa["model"] == "wan2.7-image"
    assert c2pa["engine"] == "test-deterministic" and c2pa["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert result["xmp"]["aigc"]["Label"] == "1" and result["xmp"]["aigc"]["ProduceID"] == f"{task_id}/1"
    assert result["xmp"]["aigc"]["ContentProducer"] == "wanimage"
    assert result["parameters"].startswith("a lighthouse, at night\nSteps: 4, Seed: 21, Size: 1024x1024")
    assert result["watermark"]["found"] is True and result["watermark"]["payload_matches_producer"] is True


def test_an_edit_names_its_inputs_by_hash(sdk, server):
    source = png_bytes(640, 480, (30, 140, 90))
    data_uri = "data:image/png;base64," + base64.b64encode(source).decode()
    _, png = make_image("make the sky orange", seed=5, images=(data_uri,))
    (result,) = verify(server, ("edit.png", png, "image/png"))["results"]
    assert result["c2pa"]["ingredients"] == [hashlib.sha256(source).hexdigest()]


def test_the_watermark_outlives_the_metadata(sdk, server):
    _, png = make_image("a red kite over the hills", seed=8)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.resize((512, 512), Image.Resampling.LANCZOS)
    jpeg = io.BytesIO()
    small.save(jpeg, "JPEG", quality=75)  # what a chat app does to it: every chunk is gone
    webp = io.BytesIO()
    image.crop((100, 60, 100 + 819, 60 + 819)).save(webp, "WEBP")
    answer = verify(server, ("shared.jpg", jpeg.getvalue(), "image/jpeg"), ("cropped.webp", webp.getvalue(), "image/webp"))
    for result in answer["results"]:
        assert result["c2pa"]["status"] == "none" and result["xmp"] is None and result["parameters"] is None
        assert result["watermark"]["found"] is True and result["wanimage_mark"] is True


def test_unmarked_images_and_bad_requests(server):
    answer = verify(server, ("plain.png", png_bytes(700, 500, (90, 90, 200)), "image/png"))
    assert answer["wanimage_mark"] is False and answer["results"][0]["c2pa"]["status"] == "none"
    junk = verify(server, ("junk.png", b"\x89PNG but not really", "image/png"))["results"][0]
    assert junk["error"] and junk["wanimage_mark"] is False
    refused = httpx.post(server.api_base + "/verify", json={"file": "x"}, headers={"Authorization": f"Bearer {KEY}"})
    assert refused.status_code == 400 and refused.json()["code"] == "InvalidParameter"
    assert "multipart" in refused.json()["message"]


def test_cli_verify_on_a_downloaded_result(sdk, server, tmp_path):
    _, png = make_image("a lighthouse, at night", seed=22)
    (tmp_path / "result.png").write_bytes(png)
    (tmp_path / "plain.png").write_bytes(png_bytes())
    cmd = [sys.executable, "-m", "wanimage.cli", "verify"]
    marked = subprocess.run([*cmd, "result.png"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert marked.returncode == 0, marked.stderr
    assert "C2PA:       valid, untrusted signer" in marked.stdout and "=> wanimage mark found" in marked.stdout
    plain = subprocess.run([*cmd, "plain.png"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1 and "=> no wanimage mark" in plain.stdout
