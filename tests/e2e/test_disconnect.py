"""A client that hangs up on a sync or streaming request cancels its task: those requests never
give out the task id, so nobody could collect the images, and the engine is freed at once."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.test_engine import DeterministicEngine

SLOW_STEPS, STEP_SECONDS = 60, 0.1  # 6 s a task: the client gives up after 1 s


def final_status(running, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = running.service.list().tasks
        if tasks and tasks[0].status.terminal:
            return tasks[0].status.value
        time.sleep(0.05)
    return tasks[0].status.value if tasks else "NO TASK"


@pytest.fixture
def slow_server(make_server):
    return make_server(engine=DeterministicEngine(steps=SLOW_STEPS, step_seconds=STEP_SECONDS))


@pytest.mark.parametrize("route", ["dashscope", "openai"])
def test_a_sync_client_that_hangs_up_cancels_its_task(slow_server, route):
    if route == "dashscope":
        url = slow_server.api_base + "/services/aigc/multimodal-generation/generation"
        body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": "a fox"}]}]},
                "parameters": {"size": "768*768"}}
    else:
        url = slow_server.base_url + "/v1/images/generations"
        body = {"model": "wan2.7-image", "prompt": "a fox", "size": "768x768"}
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json=body, timeout=1.0)
    assert final_status(slow_server) == "CANCELED"
    assert time.monotonic() - started < SLOW_STEPS * STEP_SECONDS  # stopped, not run to the end


def test_a_stream_reader_that_hangs_up_cancels_its_task(slow_server):
    body = {"model": "wan2.7-image", "prompt": "a fox", "size": "768x768", "stream": True, "partial_images": 3}
    started = time.monotonic()
    with httpx.stream("POST", slow_server.base_url + "/v1/images/generations", json=body, timeout=10) as rsp:
        assert rsp.status_code == 200
        first = next(rsp.iter_lines())
        assert first.startswith("data: ") and "partial_image" in first
    assert final_status(slow_server) == "CANCELED"
    assert time.monotonic() - started < SLOW_STEPS * STEP_SECONDS


def test_a_client_that_waits_gets_its_images_and_the_task_succeeds(slow_server):
    """The other side of the rule: nothing is canceled while the client is still there."""
    body = {"model": "wan2.7-image", "prompt": "a fox", "size": "768x768"}
    rsp = httpx.post(slow_server.base_url + "/v1/images/generations", json=body, timeout=30)
    assert rsp.status_code == 200 and len(rsp.json()["data"]) == 1
    assert final_status(slow_server) == "SUCCEEDED"


def test_a_sync_request_whose_task_is_canceled_by_someone_else_answers_409(slow_server):
    """The client is still there but another caller cancels the task: 409 `Canceled`."""
    import threading

    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": "a fox"}]}]},
            "parameters": {"size": "768*768"}}
    answer = {}
    sync = threading.Thread(target=lambda: answer.update(rsp=httpx.post(
        slow_server.api_base + "/services/aigc/multimodal-generation/generation", json=body, timeout=30)))
    sync.start()
    deadline = time.monotonic() + 10
    while not (tasks := slow_server.service.list().tasks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.post(f"{slow_server.api_base}/tasks/{tasks[0].id}/cancel").status_code == 200
    sync.join(30)
    rsp = answer["rsp"]
    assert rsp.status_code == 409 and rsp.json()["code"] == "Canceled", rsp.text
