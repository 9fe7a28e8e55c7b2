"""What must hold under an attack campaign: the queue limit under concurrency, hostile ids and
filters, tenants kept apart (each on SQLite and PostgreSQL), and the smaller points decided before
the store (SQLite only)."""

from __future__ import annotations

import threading

import httpx
import pytest

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


# ------------------------------------------------------------------ 5. tenants

SMALL = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": "a red fox"}]},
         "parameters": {"size": "768*768"}}
SYNC = "/api/v1/services/aigc/multimodal-generation/generation"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def wait_done(server, task_id: str, key: str) -> dict:
    import time

    for _ in range(400):
        out = httpx.get(f"{server.api_base}/tasks/{task_id}", headers=bearer(key)).json()["output"]
        if out["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            return out
        time.sleep(0.05)
    raise AssertionError("the task did not end")


def test_a_key_sees_cancels_and_lists_only_its_own_tasks(make_server):
    server = make_server(api_keys="key-a,key-b", admin_api_keys="key-admin")
    a = submit(server.base_url, bearer("key-a"), SMALL).json()["output"]["task_id"]
    b = submit(server.base_url, bearer("key-b"), SMALL).json()["output"]["task_id"]
    done = wait_done(server, a, "key-a")
    assert done["task_status"] == "SUCCEEDED"
    # B can neither read nor cancel A's task, nor learn that it exists.
    r = httpx.get(f"{server.api_base}/tasks/{a}", headers=bearer("key-b")).json()
    assert r["output"]["task_status"] == "UNKNOWN" and "results" not in r["output"] and "choices" not in r["output"]
    r = httpx.post(f"{server.api_base}/tasks/{a}/cancel", headers=bearer("key-b")).json()
    assert r["output"]["task_status"] == "UNKNOWN"
    listed = lambda key: httpx.get(server.api_base + "/tasks", headers=bearer(key)).text  # noqa: E731
    assert a in listed("key-a") and b not in listed("key-a")
    assert b in listed("key-b") and a not in listed("key-b")
    assert a in listed("key-admin") and b in listed("key-admin")
    # The admin key reads any task; the rows carry a key id, never the key.
    assert httpx.get(f"{server.api_base}/tasks/{b}", headers=bearer("key-admin")).json()["output"]["task_id"] == b
    record = server.service.store.get(a)
    assert record.owner and record.owner.startswith("key-") and "key-a" not in record.owner


@pytest.mark.store_independent
def test_a_signed_image_url_stays_shareable_across_keys(make_server):
    server = make_server(api_keys="key-a,key-b")
    r = httpx.post(server.base_url + SYNC, json=SMALL, headers=bearer("key-a"), timeout=60)
    assert r.status_code == 200, r.text
    url = r.json()["output"]["choices"][0]["message"]["content"][0]["image"]
    assert httpx.get(url).status_code == 200  # a URL is a capability: no key needed
    assert httpx.get(url, headers=bearer("key-b")).status_code == 200


def test_openai_images_are_the_callers_own(make_server):
    server = make_server(api_keys="key-a,key-b")
    r = httpx.post(server.base_url + "/v1/images/generations", json={"prompt": "a fox", "size": "768*768"},
                   headers=bearer("key-a"), timeout=60)
    assert r.status_code == 200, r.text
    listed_b = httpx.get(server.api_base + "/tasks", headers=bearer("key-b")).json()
    listed_a = httpx.get(server.api_base + "/tasks", headers=bearer("key-a")).json()
    assert listed_b["total"] == 0 and listed_a["total"] == 1


@pytest.mark.store_independent
def test_docs_openapi_and_metrics_need_a_key_when_keys_are_set(make_server):
    server = make_server(api_keys="key-a", metrics_token="scrape-me")
    for path in ("/openapi.json", "/docs", "/metrics"):
        r = httpx.get(server.base_url + path)
        assert r.status_code == 401 and r.json()["code"] == "InvalidApiKey", path
        assert httpx.get(server.base_url + path, headers=bearer("wrong")).status_code == 401
        assert httpx.get(server.base_url + path, headers=bearer("key-a")).status_code == 200, path
    assert httpx.get(server.base_url + "/metrics", headers=bearer("scrape-me")).status_code == 200
    assert httpx.get(server.base_url + "/openapi.json", headers=bearer("scrape-me")).status_code == 401
    assert httpx.get(server.api_base + "/tasks", headers=bearer("scrape-me")).status_code == 401
    assert httpx.get(server.base_url + "/health").status_code == 200


@pytest.mark.store_independent
def test_metrics_open_to_a_scraper_address(make_server):
    server = make_server(api_keys="key-a", metrics_allow="127.0.0.0/8")
    assert httpx.get(server.base_url + "/metrics").status_code == 200
    assert httpx.get(server.base_url + "/openapi.json").status_code == 401


# ------------------------------------------------------------------ 6. slow-header clients


def test_wanimage_serve_drops_clients_that_send_headers_too_slowly(tmp_path):
    import socket
    import time

    import uvicorn

    from tests.support.server import free_port, registry_for, wait_healthy
    from tests.support.test_engine import DeterministicEngine
    from wanimage.app import create_app
    from wanimage.cli.serve import uvicorn_config
    from wanimage.config import Settings

    settings = Settings(data_dir=tmp_path, port=free_port(), header_timeout_seconds=1.0)
    server = uvicorn.Server(uvicorn_config(create_app(settings, registry_for(DeterministicEngine())), settings,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{settings.port}"
    try:
        wait_healthy(base)
        slow = [socket.create_connection(("127.0.0.1", settings.port)) for _ in range(50)]
        for s in slow:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never the blank line that ends the head
        silent = socket.create_connection(("127.0.0.1", settings.port))  # connects, sends nothing
        time.sleep(2.0)
        for s in [*slow, silent]:
            s.settimeout(3)
            assert s.recv(1) == b""  # closed by the server
            s.close()
        with httpx.Client(base_url=base) as client:  # keep-alive clients that send whole heads are fine
            assert client.get("/health").status_code == 200
            time.sleep(1.5)
            assert client.get("/health").status_code == 200
    finally:
        server.should_exit = True
        thread.join(15)


# ------------------------------------------------------------------ 2. memory per request


def test_nine_8000px_inputs_stay_within_the_budget_and_memory_returns_to_idle():
    """bench/memory.py against a real `wanimage serve` (the built-in engine): the peak's rise over
    idle stays under the decode budget and RSS settles within 20 % of idle."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from memory import measure

    m = measure(rounds=2, images=9)
    assert m["peak"] - m["idle"] < m["budget"], m
    assert m["after"] <= 1.2 * m["idle"], m


# ------------------------------------------------------------------ 6. the smaller points


@pytest.mark.store_independent
def test_405_names_the_allowed_methods(server):
    r = httpx.delete(server.api_base + "/tasks")
    assert r.status_code == 405 and r.json()["code"] == "InvalidURL"
    assert "GET" in r.headers["allow"] and "GET" in r.json()["message"]


@pytest.mark.store_independent
def test_a_box_without_its_list_level_is_named_as_such(server):
    import base64

    from tests.conftest import png_bytes

    image = "data:image/png;base64," + base64.b64encode(png_bytes(320, 240)).decode()
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [
        {"image": image}, {"text": "a box"}]}]}, "parameters": {"size": "768*768", "bbox_list": [[0, 0, 10, 10]]}}
    r = httpx.post(server.base_url + SYNC, json=body, timeout=30)
    assert r.status_code == 400 and "not a list of boxes" in r.json()["message"]
    assert "[[[0, 0, 10, 10]]]" in r.json()["message"]


@pytest.mark.store_independent
def test_an_empty_multipart_file_is_named_empty(server):
    r = httpx.post(server.base_url + "/v1/images/edits", data={"prompt": "a fox"},
                   files=[("image", ("blank.png", b"", "image/png"))], timeout=30)
    assert r.status_code == 400 and "blank.png" in r.json()["error"]["message"]
    assert "empty" in r.json()["error"]["message"] and "base64" not in r.json()["error"]["message"]


@pytest.mark.store_independent
def test_openai_json_stream_must_be_a_boolean(server):
    r = httpx.post(server.base_url + "/v1/images/generations", json={"prompt": "a fox", "stream": "yes"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream"


def _upload(info: dict, key: str, data: bytes) -> httpx.Response:
    form = {"OSSAccessKeyId": info["oss_access_key_id"], "Signature": info["signature"], "policy": info["policy"],
            "key": key, "x-oss-object-acl": "private", "x-oss-forbid-overwrite": "true",
            "success_action_status": "200"}
    return httpx.post(info["upload_host"], data=form, files={"file": ("x.png", data, "image/png")}, timeout=30)


@pytest.mark.store_independent
def test_an_upload_policy_forbids_overwrite_and_caps_its_total(server):
    r = httpx.get(server.api_base + "/uploads", params={"action": "getPolicy", "model": "wan2.7-image"})
    body = r.json()
    info = body.get("data") or body["output"]
    assert info["x_oss_forbid_overwrite"] == "true"
    first = info["upload_dir"] + "/a.png"
    assert _upload(info, first, b"\x89PNG" + b"\0" * 1000).status_code == 200
    again = _upload(info, first, b"\x89PNG" + b"\1" * 1000)
    assert again.status_code == 409 and again.json()["code"] == "FileAlreadyExists"
    cap = int(info["capacity_limit_mb"]) * 1024 * 1024
    big = _upload(info, info["upload_dir"] + "/b.png", b"\0" * (cap - 500))  # alone under the cap, not with a.png
    assert big.status_code == 413 and "capacity" in big.json()["message"]


@pytest.mark.store_independent
def test_openapi_lists_the_real_statuses_with_the_dialects_error_schema(server):
    schema = httpx.get(server.base_url + "/openapi.json").json()
    text = str(schema)
    assert "'422'" not in text and "HTTPValidationError" not in text
    post = schema["paths"]["/api/v1/services/aigc/image-generation/generation"]["post"]["responses"]
    for status in ("200", "400", "401", "403", "413", "429", "500", "503"):
        assert status in post, status
    assert post["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/DashScopeError")
    openai = schema["paths"]["/v1/images/generations"]["post"]["responses"]
    assert openai["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIError")
