"""Each ImageGeneration surface of the dashscope 1.x SDK against a real server on loopback.

Model Studio asks for dashscope >= 1.25.15 for wan2.7, and much client code still runs 1.x. The pin
is that floor, 1.25.15: the oldest SDK a wan2.7 user may run, and the 1.x whose ImageGeneration
differs most from 2.0.2's (it sets `user-agent` as a header and builds its own requests session;
1.27.8's image_generation.py is byte for byte 2.0.2's, already covered by test_dashscope_sdk.py).
The 1.x SDK cannot share a venv with 2.x, so `make sdk1` builds `.venv-sdk1` (a `make test`
prerequisite) and tests/support/dashscope1_client.py runs in it as a subprocess; a missing venv is
a failure, never a skip."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import png_bytes

pytestmark = pytest.mark.store_independent  # the 1.x SDK's request and answer shapes

ROOT = Path(__file__).resolve().parents[2]
SDK1_PYTHON = ROOT / ".venv-sdk1" / "bin" / "python"
CLIENT = ROOT / "tests" / "support" / "dashscope1_client.py"
PINNED = re.search(r"^SDK1_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)


def sdk1(server, surface: str, arg: str) -> list[dict]:
    """Run one surface with the 1.x SDK; the responses it returned, as its user reads them."""
    if not SDK1_PYTHON.exists():
        pytest.fail(f"{SDK1_PYTHON} is missing: `make sdk1` (a prerequisite of `make test`) builds it")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "PYTHON"))}
    env.update(DASHSCOPE_HTTP_BASE_URL=server.api_base, DASHSCOPE_API_KEY="sk-test")
    done = subprocess.run([str(SDK1_PYTHON), str(CLIENT), surface, arg], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    version, *responses = (json.loads(line) for line in done.stdout.splitlines())
    assert version == {"version": PINNED}, f"{SDK1_PYTHON} is stale: `make sdk1` reinstalls the pin"
    return responses


def image_urls(rsp: dict) -> list[str]:
    return [c["image"] for ch in rsp["output"]["choices"] or [] for c in ch["message"]["content"] if "image" in c]


def download(url: str) -> Image.Image:
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(r.content))


def test_call(server):
    (rsp,) = sdk1(server, "call", "a red apple")
    assert rsp["status_code"] == 200, rsp
    urls = image_urls(rsp)
    assert len(urls) == 2 and rsp["usage"]["image_count"] == 2 and rsp["usage"]["size"] == "1024*1024"
    assert [download(u).size for u in urls] == [(1024, 1024)] * 2


def test_async_call_wait_and_fetch(server):
    submitted, waited, fetched = sdk1(server, "async_call_and_wait", "a lighthouse")
    task_id = submitted["output"]["task_id"]
    assert submitted["status_code"] == 200 and submitted["output"]["task_status"] == "PENDING"
    assert (waited["output"]["task_id"], waited["output"]["task_status"]) == (task_id, "SUCCEEDED")
    assert fetched["output"]["task_status"] == "SUCCEEDED" and fetched["output"]["end_time"]
    (url,) = image_urls(waited)
    assert download(url).size == (1024, 1024)


def test_stream(server):
    *progress, final = sdk1(server, "stream", "streamed")
    assert progress and all(r["status_code"] == 200 for r in progress + [final])
    assert [r["output"]["task_status"] for r in progress] == ["RUNNING"] * len(progress)
    assert [r["output"]["progress"] for r in progress] == sorted(r["output"]["progress"] for r in progress)
    assert all(not r["output"]["choices"] for r in progress)  # progress frames carry no images
    assert final["output"]["finished"] is True and final["usage"]["image_count"] == 1
    (url,) = image_urls(final)
    assert download(url).size == (1024, 1024)


def test_list(server):
    waited, listed = sdk1(server, "list_tasks", "listed by 1.x")
    assert waited["output"]["task_status"] == "SUCCEEDED" and listed["status_code"] == 200
    page = listed["output"]  # 1.x hands the whole list body over as the output
    assert waited["output"]["task_id"] in [t["task_id"] for t in page["tasks"]]
    assert page["page_no"] == 1 and page["page_size"] == 50 and page["total"] >= 1


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_local_file_is_uploaded(server, tmp_path, form):
    """The two forms Model Studio's 1.x samples pass: a plain path and a file:// URL."""
    path = tmp_path / "my photo.png"
    path.write_bytes(png_bytes(320, 240, (250, 200, 0)))
    (rsp,) = sdk1(server, "local_file", str(path) if form == "path" else f"file://{path}")
    assert rsp["status_code"] == 200, rsp
    job = server.engine.jobs[-1]
    assert job.images[0].size == (320, 240) and job.images[0].getpixel((5, 5)) == (250, 200, 0)
    (url,) = image_urls(rsp)
    assert download(url).size == (1184, 880)  # the input's 4:3 at 1K


def test_a_refusal_reaches_1x_as_code_and_message(server):
    (rsp,) = sdk1(server, "refused", "too many")
    assert (rsp["status_code"], rsp["code"]) == (400, "InvalidParameter")
    assert rsp["message"].startswith("n: 9 is out of range")
