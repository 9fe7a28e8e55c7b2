"""The dashscope 2.x command line (`dashscope image-generation ...`, the console script the SDK
installs) run unchanged as a subprocess against a real server on loopback: only
DASHSCOPE_HTTP_BASE_URL and DASHSCOPE_API_KEY point it here. The tests check what its user sees:
the exit code, the JSON it prints (task id, status, image URLs, usage), the images behind the URLs,
and the error line on stderr."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from tests.conftest import png_bytes
from tests.support.server import start_server

pytestmark = pytest.mark.store_independent  # the CLI's requests and what it prints; test_dashscope_sdk runs the same endpoints on both stores

KEY = "sk-cli"
MODEL = "wan2.7-image"
DASHSCOPE = Path(sys.executable).parent / "dashscope"  # the venv's console script, beside its python


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, database):
    """One server for the module, with an API key so that a wrong key is refused."""
    running = start_server(tmp_path_factory.mktemp("cli"), workers=2, api_keys=KEY, database_url=database())
    yield running
    running.stop()


def dashscope(server, *args: str, key: str = KEY, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`dashscope image-generation ARGS` as a user runs it, with the environment pointing it at `server`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")}
    # COLUMNS: rich wraps stderr lines at the terminal width; a wide one keeps each message on one line
    env.update(DASHSCOPE_HTTP_BASE_URL=server.api_base, DASHSCOPE_API_KEY=key, COLUMNS="4000")
    return subprocess.run([str(DASHSCOPE), "image-generation", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def printed(done: subprocess.CompletedProcess) -> list[dict]:
    """The JSON documents the CLI printed, in order (`create` prints the output, then the usage)."""
    assert done.returncode == 0, done.stderr
    decoder, text, docs = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        doc, end = decoder.raw_decode(text)
        docs.append(doc)
        text = text[end:].strip()
    return docs


def image_urls(output: dict) -> list[str]:
    return [c["image"] for ch in output["choices"] or [] for c in ch["message"]["content"] if "image" in c]


def download(url: str) -> Image.Image:
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(r.content))


def submit(server, prompt: str, key: str = KEY) -> str:
    """An async task, submitted as any DashScope client does (the CLI itself only calls sync)."""
    r = httpx.post(server.api_base + "/services/aigc/image-generation/generation",
                   headers={"X-DashScope-Async": "enable", "Authorization": f"Bearer {key}"},
                   json={"model": MODEL, "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
                         "parameters": {"size": "1K"}})
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]


def finished(server, task_id: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = httpx.get(f"{server.api_base}/tasks/{task_id}", headers={"Authorization": f"Bearer {KEY}"}
                           ).json()["output"]["task_status"]
        if status not in ("PENDING", "RUNNING"):
            return status
        time.sleep(0.05)
    raise TimeoutError(task_id)


def close_to(pixel, colour, tolerance: int = 8) -> bool:
    """Within a few levels: the server's invisible watermark nudges pixels."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def one_line(stderr: str) -> str:
    return " ".join(stderr.split())


def test_create_from_text_prints_the_image_urls_and_usage(keyed):
    output, usage = printed(dashscope(keyed, "create", "-m", MODEL, "-t", "a red apple", "--size", "1K"))
    assert output["finished"] is True
    (url,) = image_urls(output)
    assert (usage["image_count"], usage["size"]) == (1, "1024*1024")
    assert download(url).size == (1024, 1024)


def test_create_with_a_local_image_and_n(keyed, tmp_path):
    """`--image photo.png`: a path relative to where the user stands; the SDK uploads the file."""
    (tmp_path / "photo.png").write_bytes(png_bytes(320, 240, (250, 200, 0)))
    output, usage = printed(dashscope(keyed, "create", "-m", MODEL, "-t", "make it brighter", "--image", "photo.png",
                                      "-n", "2", "--size", "1K", cwd=tmp_path))
    urls = image_urls(output)
    assert len(output["choices"]) == 2 and len(urls) == 2 and usage["image_count"] == 2
    assert usage["size"] == "1184*880"  # the input's 4:3 at the 1K budget
    for url in urls:  # the test engine paints the (only) input image: its colour proves the upload
        image = download(url)
        assert image.size == (1184, 880) and close_to(image.getpixel((5, 5)), (250, 200, 0))
    assert keyed.engine.jobs[-1].images[0].size == (320, 240)


def test_max_images_bounds_the_images_made(keyed):
    output, usage = printed(dashscope(keyed, "create", "-m", MODEL, "-t", "four cats", "-n", "4", "--max-images", "2",
                                      "--size", "1K"))
    assert len(image_urls(output)) == 2 and usage["image_count"] == 2
    # the CLI has no --enable-sequential: alone, --max-images bounds n's default of 1
    output, usage = printed(dashscope(keyed, "create", "-m", MODEL, "-t", "a set of cats", "--max-images", "3",
                                      "--size", "1K"))
    assert len(image_urls(output)) == 1 and usage["image_count"] == 1


def test_refusals_exit_3_with_the_code_and_the_field(keyed):
    done = dashscope(keyed, "create", "-m", MODEL, "-t", "too many", "-n", "9")
    assert done.returncode == 3 and done.stdout == ""
    assert "status_code: 400, code: InvalidParameter, message: n: 9 is out of range" in one_line(done.stderr)
    done = dashscope(keyed, "create", "-m", "wan9-image", "-t", "no such model")
    assert done.returncode == 3 and "Model not exist: 'wan9-image'" in one_line(done.stderr)


def test_a_wrong_key_exits_2(keyed):
    done = dashscope(keyed, "create", "-m", MODEL, "-t", "who am I", key="sk-wrong")
    assert done.returncode == 2 and "status_code: 401, code: InvalidApiKey" in one_line(done.stderr)


def test_wait_then_fetch_print_the_finished_task(keyed):
    task_id = submit(keyed, "a lighthouse")
    (waited,) = printed(dashscope(keyed, "wait", task_id))
    assert (waited["task_id"], waited["task_status"]) == (task_id, "SUCCEEDED")
    (url,) = image_urls(waited)
    assert download(url).size == (1024, 1024)
    (fetched,) = printed(dashscope(keyed, "fetch", task_id))
    assert (fetched["task_id"], fetched["task_status"]) == (task_id, "SUCCEEDED") and fetched["end_time"]
    assert [urlsplit(u).path for u in image_urls(fetched)] == [urlsplit(url).path]  # the same file, signed again


def test_wait_on_a_failed_task_exits_1_with_the_error(keyed):
    task_id = submit(keyed, "EXPLODE")  # the test engine fails on this word
    done = dashscope(keyed, "wait", task_id)
    assert done.returncode == 1
    assert "Business Error" in done.stderr and "code: InternalError" in one_line(done.stderr)


def test_fetch_an_unknown_id_prints_unknown(keyed):
    (fetched,) = printed(dashscope(keyed, "fetch", "no-such-task"))
    assert (fetched["task_id"], fetched["task_status"]) == ("no-such-task", "UNKNOWN")


def test_cancel_a_pending_task(make_server):
    server = make_server(workers=0, api_keys=KEY)  # nothing drains the queue: the task stays PENDING
    task_id = submit(server, "never drawn")
    done = dashscope(server, "cancel", task_id)
    assert done.returncode == 0 and f"Cancel image generation task: {task_id} success" in done.stdout
    (fetched,) = printed(dashscope(server, "fetch", task_id))
    assert fetched["task_status"] == "CANCELED"


def test_cancel_a_finished_task_exits_3(keyed):
    task_id = submit(keyed, "already done")
    assert finished(keyed, task_id) == "SUCCEEDED"
    done = dashscope(keyed, "cancel", task_id)
    assert done.returncode == 3
    assert f"code: UnsupportedOperation, message: task {task_id} is SUCCEEDED" in one_line(done.stderr)


def test_list_pages_and_filters(keyed):
    ids = [submit(keyed, f"listed {i}") for i in range(2)]
    assert [finished(keyed, t) for t in ids] == ["SUCCEEDED"] * 2
    hour_ago, hour_on = (time.strftime("%Y%m%d%H%M%S", time.localtime(time.time() + d)) for d in (-3600, 3600))
    (page,) = printed(dashscope(keyed, "list", "--status", "SUCCEEDED", "--model-name", MODEL, "-s", "50",
                                "--start-time", hour_ago, "--end-time", hour_on))  # the SDK's documented form
    listed = [t["task_id"] for t in page["tasks"]]
    assert set(ids) <= set(listed) and page["page_size"] == 50 and page["total"] >= 2
    assert all(t["task_status"] == "SUCCEEDED" for t in page["tasks"])
    (second,) = printed(dashscope(keyed, "list", "--status", "SUCCEEDED", "-s", "1", "-p", "2"))
    assert (second["page_no"], second["page_size"], len(second["tasks"])) == (2, 1, 1)
    assert second["tasks"][0]["task_id"] == listed[1]  # newest first, one a page
    done = dashscope(keyed, "list", "--status", "DONE")
    assert done.returncode == 3 and "message: status: 'DONE' is not a task status" in one_line(done.stderr)
