"""Thinking mode through the HTTP API: the revised prompt in all three places (OpenAI
data[].revised_prompt, a DashScope text item, legacy image-synthesis actual_prompt), the plan
reaching the engine, and the LLM rewriter against a small OpenAI-compatible chat server on
loopback: a good answer, malformed JSON, a layout outside the image, a timeout, a 500. In every
case the task succeeds and the log says which planner ran."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.aigc.image_synthesis import ImageSynthesis
from dashscope.api_entities.dashscope_response import Message
from openai import OpenAI

from tests.conftest import png_bytes
from tests.support.test_engine import DeterministicEngine
from wanimage.thinking.builtin import plan_text

pytestmark = pytest.mark.store_independent  # planners and where the revised prompt is written

KEY = "sk-test"
PROMPT = "three red apples on the left and a cat above a dog"
SIZE = 768  # every request here is 768*768


def builtin_revision(prompt: str = PROMPT) -> str:
    return plan_text(prompt, SIZE, SIZE).revised_prompt


def text_items(output) -> list[str]:
    return [c["text"] for ch in output["choices"] for c in ch["message"]["content"] if c.get("type") == "text"]


def last_job(server, prompt: str):
    return next(j for j in reversed(server.engine.jobs) if j.prompt == prompt)


# ------------------------------------------------------------------ the three places


def test_openai_dialect_returns_the_revised_prompt_and_the_engine_gets_the_plan(server):
    client = OpenAI(base_url=server.base_url + "/v1", api_key=KEY, max_retries=0)
    rsp = client.images.generate(model="wan2.7-image", prompt=PROMPT, size="768x768", n=2, extra_body={"seed": 1})
    assert [d.revised_prompt for d in rsp.data] == [builtin_revision()] * 2
    job = last_job(server, PROMPT)
    assert job.prompts[0] == builtin_revision() and job.prompt == PROMPT
    assert [it.label for it in job.layout] == ["a red apple"] * 3 + ["a cat", "a dog"]
    assert all(it.box.x2 <= SIZE // 2 for it in job.layout[:3])  # the apples on the left


def test_dashscope_dialect_adds_one_text_item_to_the_first_choice(sdk):
    msg = Message(role="user", content=[{"text": PROMPT}])
    rsp = ImageGeneration.call(model="wan2.7-image", api_key=KEY, messages=[msg], n=2, size="768*768")
    assert rsp.status_code == HTTPStatus.OK, rsp
    first, second = (ch["message"]["content"] for ch in rsp.output.choices)
    assert [c["type"] for c in first] == ["image", "text"] and first[1]["text"] == builtin_revision()
    assert [c["type"] for c in second] == ["image"]
    assert rsp.usage.image_count == 2


def test_dashscope_task_query_carries_the_text_item(server):
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": PROMPT}]}]},
            "parameters": {"size": "768*768"}}
    created = httpx.post(server.api_base + "/services/aigc/image-generation/generation", json=body,
                         headers={"X-DashScope-Async": "enable"}).json()
    output = wait_task(server, created["output"]["task_id"])
    assert text_items(output) == [builtin_revision()]


def test_legacy_image_synthesis_returns_actual_prompt_beside_orig_prompt(sdk):
    rsp = ImageSynthesis.call(model="wan2.7-image", api_key=KEY, prompt=PROMPT, n=2, size="768*768")
    assert rsp.status_code == HTTPStatus.OK, rsp
    for result in rsp.output.results:
        assert result["orig_prompt"] == PROMPT and result["actual_prompt"] == builtin_revision()


def wait_task(server, task_id: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        output = httpx.get(f"{server.api_base}/tasks/{task_id}").json()["output"]
        if output["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            assert output["task_status"] == "SUCCEEDED", output
            return output
        time.sleep(0.05)
    raise TimeoutError(task_id)


# ------------------------------------------------------------------ where thinking does not run


def _uri() -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png_bytes(800, 800)).decode()


CASES = {
    "thinking off": ({"thinking_mode": False}, []),
    "edit": ({}, [_uri()]),
    "image set": ({"enable_sequential": True, "n": 2}, []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_without_thinking_revised_equals_original_and_no_text_item(sdk, case):
    server = sdk
    params, images = CASES[case]
    prompt = f"two cats on the left ({case})"
    content = [{"text": prompt}] + [{"image": i} for i in images]
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": {"size": "768*768", **params}}
    ds = httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body, timeout=30)
    assert ds.status_code == 200, ds.text
    assert text_items(ds.json()["output"]) == []
    job = last_job(server, prompt)
    assert job.prompts[0] == prompt and job.layout is None

    oa = httpx.post(server.base_url + "/v1/images/generations", timeout=30, json={
        "model": "wan2.7-image", "prompt": prompt, "size": "768x768", **params, **({"images": images} if images else {})})
    assert oa.status_code == 200, oa.text
    assert {d["revised_prompt"] for d in oa.json()["data"]} == {prompt}

    if not images:  # the legacy path takes no images
        rsp = ImageSynthesis.call(model="wan2.7-image", api_key=KEY, prompt=prompt, size="768*768", **params)
        assert rsp.status_code == HTTPStatus.OK, rsp
        assert {(r["orig_prompt"], r["actual_prompt"]) for r in rsp.output.results} == {(prompt, prompt)}


# ------------------------------------------------------------------ the LLM rewriter


GOOD = {"revised_prompt": "Three glossy red apples stacked on the left; a ginger cat sits above a sleeping dog.",
        "layout": [{"label": "a red apple", "box": [20, 40, 300, 260]},
                   {"label": "a cat", "box": [420, 40, 700, 300]},
                   {"label": "a dog", "box": [420, 420, 760, 772]}]}  # 4 px past the bottom: clamped


@dataclass
class ChatServer:
    """A tiny OpenAI-compatible /v1/chat/completions on loopback; `mode` picks the answer."""

    mode: str = "good"
    delay: float = 0.0
    requests: list[dict] = field(default_factory=list)
    url: str = ""

    def answer(self) -> tuple[int, str]:
        if self.mode == "500":
            return 500, '{"error": {"message": "model crashed"}}'
        content = {
            "good": json.dumps(GOOD),
            "malformed": '{"revised_prompt": "three apples", "layout": [',
            "outside": json.dumps({"revised_prompt": "apples far away",
                                   "layout": [{"label": "an apple", "box": [2000, 2000, 2400, 2400]}]}),
            "timeout": json.dumps(GOOD),
        }[self.mode]
        return 200, json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "planner",
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": content}}]})


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    state = ChatServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            length = int(self.headers.get("content-length", 0))
            state.requests.append({"path": self.path, "auth": self.headers.get("authorization"),
                                   "body": json.loads(self.rfile.read(length))})
            if state.mode == "timeout":
                time.sleep(2.0)
            status, text = state.answer()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(text.encode())
            except OSError:  # the client gave up (timeout case)
                pass

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def llm_server(make_server, chat):
    engine = DeterministicEngine()
    running = make_server(engine, thinking_llm_url=chat.url, thinking_llm_model="planner-7b",
                          thinking_llm_key="llm-secret", thinking_llm_timeout_seconds=0.5)
    return running


def generate(running, prompt: str = PROMPT) -> httpx.Response:
    return httpx.post(running.base_url + "/v1/images/generations", timeout=30,
                      json={"model": "wan2.7-image", "prompt": prompt, "size": "768x768"})


def test_llm_good_answer_is_used(llm_server, chat, caplog):
    caplog.set_level(logging.INFO, logger="wanimage")
    rsp = generate(llm_server)
    assert rsp.status_code == 200, rsp.text
    assert rsp.json()["data"][0]["revised_prompt"] == GOOD["revised_prompt"]
    (sent,) = chat.requests
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer llm-secret"
    assert sent["body"]["model"] == "planner-7b" and PROMPT in sent["body"]["messages"][-1]["content"]
    assert "768x768" in sent["body"]["messages"][-1]["content"]
    job = llm_server.engine.jobs[-1]
    assert job.prompts[0] == GOOD["revised_prompt"]
    assert [(it.label, (it.box.x1, it.box.y1, it.box.x2, it.box.y2)) for it in job.layout] == [
        ("a red apple", (20, 40, 300, 260)), ("a cat", (420, 40, 700, 300)), ("a dog", (420, 420, 760, 768))]
    assert "planner=llm" in caplog.text and "planner=builtin" not in caplog.text


@pytest.mark.parametrize(("mode", "reason"), [
    ("malformed", "malformed JSON"),
    ("outside", "bad layout"),
    ("timeout", "timeout after 0.5 s"),
    ("500", "HTTP 500"),
])
def test_llm_failures_fall_back_to_the_built_in_planner(llm_server, chat, caplog, mode, reason):
    chat.mode = mode
    caplog.set_level(logging.INFO, logger="wanimage")
    started = time.monotonic()
    rsp = generate(llm_server)
    assert rsp.status_code == 200, rsp.text
    assert rsp.json()["data"][0]["revised_prompt"] == builtin_revision()
    assert len(chat.requests) == 1
    job = llm_server.engine.jobs[-1]
    assert job.prompts[0] == builtin_revision() and len(job.layout) == 5
    failure = [r for r in caplog.records if r.name == "wanimage.thinking.llm" and r.levelno == logging.WARNING]
    assert failure and reason in failure[0].getMessage() and "planner=builtin" in failure[0].getMessage()
    assert "planner=builtin in" in caplog.text and f"llm fallback: {reason}" in caplog.text
    if mode == "timeout":
        assert time.monotonic() - started < 1.9  # the task did not wait for the slow LLM


def test_llm_unreachable_falls_back(make_server, caplog):
    caplog.set_level(logging.INFO, logger="wanimage")
    running = make_server(thinking_llm_url="http://127.0.0.1:9/v1", thinking_llm_timeout_seconds=0.5)
    rsp = generate(running)
    assert rsp.status_code == 200 and rsp.json()["data"][0]["revised_prompt"] == builtin_revision()
    assert "HTTP error" in caplog.text and "planner=builtin" in caplog.text


# ------------------------------------------------------------------ Chinese prompts

ZH_PROMPT = "左边三个红苹果，一只猫在一只狗的上面"


def test_a_chinese_prompt_is_revised_in_chinese(server):
    client = OpenAI(base_url=server.base_url + "/v1", api_key=KEY, max_retries=0)
    rsp = client.images.generate(model="wan2.7-image", prompt=ZH_PROMPT, size="768x768", extra_body={"seed": 1})
    assert rsp.data[0].revised_prompt == "三个红色的苹果，位于画面左侧；一只猫，在狗的上方；一只狗，位于画面右下角。共五个物体。"
    job = last_job(server, ZH_PROMPT)
    assert [it.label for it in job.layout] == ["一个红色的苹果"] * 3 + ["一只猫", "一只狗"]


def test_the_llm_is_asked_to_answer_in_the_prompts_language(llm_server, chat):
    rsp = generate(llm_server, ZH_PROMPT)
    assert rsp.status_code == 200, rsp.text
    (sent,) = chat.requests
    system, user = sent["body"]["messages"]
    assert "Write it in the language of the user's prompt" in " ".join(system["content"].split())
    assert "The prompt is Chinese" in user["content"] and user["content"].endswith(f"Prompt: {ZH_PROMPT}")
