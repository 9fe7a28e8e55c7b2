"""Chinese text is not lost on the way (issue 25, item 6): a prompt in Simplified and Traditional
Chinese, mixed with English, with characters outside the BMP and full-width punctuation comes back
byte for byte from the PNG's `parameters` chunk, the task list and both dialects; the XMP label and
the C2PA manifest stay valid beside it; `wanimage generate` takes Chinese paths and prints them."""

from __future__ import annotations

import base64
import io
import os
import struct
import subprocess
import sys
import zlib

import httpx
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message
from openai import OpenAI

from tests.conftest import png_bytes

pytestmark = pytest.mark.store_independent  # the task list's prompt is checked on both stores in test_tasks

KEY = "sk-test"
# Simplified, Traditional, English inside Chinese, outside the BMP (U+20000, U+2A6A5, an emoji),
# full-width punctuation, letters and digits: nothing here may be normalised, trimmed or re-encoded.
PROMPT = ("一只戴着红色围巾的小猫坐在窗台上；貓咪旁邊有一盞檯燈。"
          "A cat 在 the window 旁边，写着「你好，世界！」𠀀𪚥🐱 ＡＢＣ１２３？")
assert any(ord(c) > 0xFFFF for c in PROMPT)


def png_text_chunks(png: bytes) -> dict[str, bytes]:
    """The raw text of every tEXt / iTXt / zTXt chunk by keyword, read from the bytes (not
    through Pillow, which would decode for us and could hide a wrong encoding)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = {}, 8
    while pos < len(png):
        (length,), kind = struct.unpack(">I", png[pos:pos + 4]), png[pos + 4:pos + 8]
        data = png[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"tEXt":
            key, _, value = data.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1").encode("utf-8")
        elif kind == b"iTXt":
            key, _, rest = data.partition(b"\0")
            compressed, _method, rest = rest[0], rest[1], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _translated, _, value = rest.partition(b"\0")
            out[key.decode("latin-1")] = zlib.decompress(value) if compressed else value
    return out


def prompt_in(png: bytes) -> bytes:
    """The prompt lines of the A1111 `parameters` chunk, as UTF-8 bytes."""
    return png_text_chunks(png)["parameters"].rpartition(b"\n")[0]


def dashscope_image(prompt: str, seed: int) -> tuple[str, bytes]:
    task = ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, n=1, size="1K", seed=seed,
                                      thinking_mode=False,
                                      messages=[Message(role="user", content=[{"text": prompt}])])
    done = ImageGeneration.wait(task=task, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED", done
    url = next(c["image"] for ch in done.output.choices for c in ch["message"]["content"] if c.get("type") == "image")
    return task.output.task_id, httpx.get(url).content


def test_dashscope_png_xmp_c2pa_and_the_task_list_keep_the_prompt(sdk, server):
    task_id, png = dashscope_image(PROMPT, seed=251)
    assert prompt_in(png) == PROMPT.encode("utf-8")

    verified = httpx.post(server.api_base + "/verify", headers={"Authorization": f"Bearer {KEY}"},
                          files=[("file", ("结果 圖片.png", png, "image/png"))], timeout=60).json()
    (result,) = verified["results"]
    assert result["file"] == "结果 圖片.png"
    assert result["parameters"].rpartition("\n")[0] == PROMPT  # the chunk's text, as /verify reads it
    # the iTXt chunk the prompt needs sits inside the data the C2PA hash covers: still valid
    assert result["c2pa"]["status"] == "untrusted" and result["c2pa"]["failures"] == []
    assert result["xmp"]["aigc"]["ContentProducer"] == "wanimage" and result["xmp"]["error"] is None

    listed = httpx.get(server.api_base + "/tasks", params={"page_size": 100},
                       headers={"Authorization": f"Bearer {KEY}"}).json()
    (task,) = [t for t in listed["tasks"] if t["task_id"] == task_id]
    assert task["request"]["prompt"] == PROMPT
    one = httpx.get(server.api_base + f"/tasks/{task_id}", headers={"Authorization": f"Bearer {KEY}"})
    assert one.content.decode("utf-8") == one.text and one.headers["content-type"].startswith("application/json")


def test_openai_generate_and_edit_keep_the_prompt(server):
    client = OpenAI(base_url=server.base_url + "/v1", api_key=KEY, max_retries=0)
    made = client.images.generate(model="wan2.7-image", prompt=PROMPT, size="1024x1024",
                                  response_format="b64_json", extra_body={"seed": 252})
    assert prompt_in(base64.b64decode(made.data[0].b64_json)) == PROMPT.encode("utf-8")

    # multipart: the prompt is a form field and the file's name is Chinese too
    edited = client.images.edit(model="wan2.7-image", prompt=PROMPT, response_format="b64_json",
                                image=("红苹果 圖.png", io.BytesIO(png_bytes(320, 320)), "image/png"))
    assert prompt_in(base64.b64decode(edited.data[0].b64_json)) == PROMPT.encode("utf-8")

    refused = httpx.post(server.base_url + "/v1/images/generations", headers={"Authorization": f"Bearer {KEY}"},
                         json={"model": "wan2.7-image", "prompt": PROMPT, "n": 99})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "n"


def test_cli_generate_takes_chinese_paths_and_prompts(server, tmp_path):
    source = tmp_path / "输入 圖片𠀀.png"
    source.write_bytes(png_bytes(320, 320))
    out = tmp_path / "输出" / "貓咪「一」"
    # a C locale: Python's UTF-8 mode (PEP 538/540) must still read the argument and print the path
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    env.pop("PYTHONIOENCODING", None)
    cmd = [sys.executable, "-m", "wanimage.cli", "generate", PROMPT, "--server", server.base_url,
           "--api-key", KEY, "--image", str(source), "--size", "1024*1024", "--seed", "253", "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    (printed,) = done.stdout.decode("utf-8").splitlines()
    assert printed == str(out / "wanimage-253-1.png")
    assert prompt_in((out / "wanimage-253-1.png").read_bytes()) == PROMPT.encode("utf-8")

    # `wanimage verify` names the Chinese file and prints the prompt from its chunk, in a C locale too
    checked = subprocess.run([sys.executable, "-m", "wanimage.cli", "verify", printed],
                             capture_output=True, timeout=120, env=env)
    assert checked.returncode == 0, checked.stderr.decode("utf-8", "replace")
    report = checked.stdout.decode("utf-8")
    assert report.startswith(printed + "\n") and f"  parameters: {PROMPT} | Steps: " in report and "Seed: 253" in report

    missing = subprocess.run([*cmd[:-6], "--image", str(tmp_path / "没有 這張圖.png"), "-o", str(out)],
                             capture_output=True, timeout=120, env=env)
    assert missing.returncode == 1
    assert "没有 這張圖.png" in missing.stderr.decode("utf-8") and b"Traceback" not in missing.stderr
