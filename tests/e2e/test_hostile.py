"""What held wanimage back under an attack campaign (issue 12), each on SQLite and PostgreSQL: the
queue limit under concurrency, hostile ids and filters, tenants kept apart."""

from __future__ import annotations

import threading

import httpx

ASYNC = "/api/v1/services/aigc/image-generation/generation"
BODY = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": "x"}]},
        "parameters": {"size": "2K", "n": 4}}


def submit(base: str, headers: dict | None = None, body: dict | None = None) -> httpx.Response:
    return httpx.post(base + ASYNC, json=body or BODY, headers={"X-DashScope-Async": "enable", **(headers or {})},
                      timeout=60)


# ------------------------------------------------------------------ 1. the queue limit


def test_forty_concurrent_submits_with_max_queue_four_accept_exactly_four(make_server):
    server = make_server(max_queue=4, workers=0)
    barrier = threading.Barrier(40)
    answers: list[httpx.Response] = []

    def client() -> None:
        barrier.wait()
        answers.append(submit(server.base_url))

    threads = [threading.Thread(target=client) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 4 + [429] * 36
    for r in answers:
        if r.status_code == 429:
            assert r.headers["retry-after"] == "5"
            assert r.json()["code"] == "Throttling" and "WANIMAGE_MAX_QUEUE" in r.json()["message"]
    listed = httpx.get(server.api_base + "/tasks", params={"status": "PENDING", "page_size": 100}).json()
    assert listed["total"] == 4


# ------------------------------------------------------------------ 4. hostile ids and filters

HOSTILE_IDS = ["a%00b", "%00", "x" * 300, "0385dc79-5ff8-4d82-bcb6-000000000000%00", "not-a-uuid"]


def test_hostile_task_ids_answer_unknown_on_poll_and_cancel(server):
    for raw in HOSTILE_IDS:
        for method, path in (("GET", f"/tasks/{raw}"), ("POST", f"/tasks/{raw}/cancel")):
            r = httpx.request(method, server.api_base + path, timeout=10)
            assert r.status_code == 200, (method, raw, r.text)
            assert r.json()["output"]["task_status"] == "UNKNOWN"


def test_hostile_list_filters_answer_400_naming_the_filter(server):
    for value in ("a\x00b", "m" * 65, "a\nb"):
        r = httpx.get(server.api_base + "/tasks", params={"model_name": value}, timeout=10)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "InvalidParameter" and r.json()["message"].startswith("model_name:")
    assert httpx.get(server.api_base + "/tasks", params={"model_name": "wan2.7-image"}).status_code == 200
