"""Task lifecycle through HTTP: crash recovery, cancel while running, retention, progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port, wait_healthy
from tests.support.test_engine import DeterministicEngine

ROOT = Path(__file__).resolve().parents[2]


def submit(api_base: str, prompt: str, **params) -> str:
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
            "parameters": {"size": "1K", **params}}
    r = httpx.post(api_base + "/services/aigc/image-generation/generation", json=body,
                   headers={"X-DashScope-Async": "enable"})
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]


def status(api_base: str, task_id: str) -> dict:
    return httpx.get(f"{api_base}/tasks/{task_id}").json()["output"]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


def spawn(data_dir: Path, port: int, step_seconds: float, database_url: str | None = None) -> subprocess.Popen:
    db = ["--database-url", database_url] if database_url else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.server", "--port", str(port), "--data-dir", str(data_dir),
         "--step-seconds", str(step_seconds), "--steps", "4", *db],
        # A dead worker is one whose heartbeat row went stale: 2 s here instead of 60 s.
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "WANIMAGE_STALE_AFTER_SECONDS": "2",
                       "WANIMAGE_HEARTBEAT_SECONDS": "0.5"},
    )
    wait_healthy(f"http://127.0.0.1:{port}", timeout=60)
    return proc


@pytest.mark.slow
def test_sigkill_with_tasks_in_flight_then_restart_finishes_every_task(tmp_path, database):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    url = database()
    proc = spawn(tmp_path, port, step_seconds=0.5, database_url=url)  # 2 s per task
    try:
        ids = [submit(api, f"task {i}") for i in range(4)]
        wait_for(lambda: status(api, ids[0])["task_status"] == "RUNNING")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    port2 = free_port()
    api2 = f"http://127.0.0.1:{port2}/api/v1"
    proc2 = spawn(tmp_path, port2, step_seconds=0.0, database_url=url)
    try:
        finals = {i: wait_for(lambda i=i: (s := status(api2, i))["task_status"] in ("SUCCEEDED", "FAILED") and s,
                              timeout=60) for i in ids}
        assert all(s["task_status"] == "SUCCEEDED" for s in finals.values()), finals
    finally:
        proc2.kill()
        proc2.wait(10)


def test_cancel_running_task_stops_at_next_step(make_server):
    server = make_server(engine=DeterministicEngine(steps=50, step_seconds=0.05))
    task_id = submit(server.api_base, "slow one")
    wait_for(lambda: status(server.api_base, task_id)["task_status"] == "RUNNING")
    r = httpx.post(f"{server.api_base}/tasks/{task_id}/cancel")
    assert r.status_code == 200
    assert r.json()["output"]["task_status"] in ("RUNNING", "CANCELED")
    final = wait_for(lambda: (s := status(server.api_base, task_id))["task_status"] == "CANCELED" and s, timeout=10)
    assert final["code"] == "Canceled"


def test_cancel_finished_task_is_unsupported(server):
    task_id = submit(server.api_base, "quick")
    wait_for(lambda: status(server.api_base, task_id)["task_status"] == "SUCCEEDED")
    r = httpx.post(f"{server.api_base}/tasks/{task_id}/cancel")
    assert r.status_code == 400 and r.json()["code"] == "UnsupportedOperation"


def test_progress_reported_while_running(make_server):
    server = make_server(engine=DeterministicEngine(steps=20, step_seconds=0.1))
    task_id = submit(server.api_base, "watch me")
    seen = wait_for(lambda: (s := status(server.api_base, task_id)).get("progress", 0) > 0 and s, timeout=10)
    assert seen["task_status"] == "RUNNING" and 0 < seen["progress"] <= 100


def test_engine_failure_ends_task_failed(server):
    task_id = submit(server.api_base, "EXPLODE please")
    final = wait_for(lambda: (s := status(server.api_base, task_id))["task_status"] == "FAILED" and s)
    assert final["code"] == "InternalError.Algo" and "exploded" in final["message"]


def test_tasks_and_files_purged_after_ttl(make_server):
    server = make_server(result_ttl_seconds=2)
    task_id = submit(server.api_base, "short lived")
    done = wait_for(lambda: (s := status(server.api_base, task_id))["task_status"] == "SUCCEEDED" and s)
    url = done["choices"][0]["message"]["content"][0]["image"]
    assert httpx.get(url).status_code == 200
    files = list((server.settings.data_dir / "files" / "results").rglob("*.png"))
    assert files
    assert server.service.purge_expired(now=time.time() + 2.2) >= 1  # 2.2 s later, by the injected clock
    assert status(server.api_base, task_id)["task_status"] == "UNKNOWN"
    assert not any(f.exists() for f in files)
    assert httpx.get(url).status_code in (403, 404)


def test_timestamps_are_utc_with_milliseconds(server):
    import re
    from datetime import UTC, datetime

    before = datetime.now(UTC).replace(tzinfo=None)
    task_id = submit(server.api_base, "timed")
    done = wait_for(lambda: (s := status(server.api_base, task_id))["task_status"] == "SUCCEEDED" and s)
    for key in ("submit_time", "scheduled_time", "end_time"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", done[key]), done[key]
    submitted = datetime.strptime(done["submit_time"], "%Y-%m-%d %H:%M:%S.%f")
    assert abs((submitted - before).total_seconds()) < 5  # UTC, not local time


@pytest.mark.store_independent
def test_usage_reports_count_and_size_and_zero_tokens(server):
    task_id = submit(server.api_base, "usage", n=2)
    wait_for(lambda: status(server.api_base, task_id)["task_status"] == "SUCCEEDED")
    body = httpx.get(f"{server.api_base}/tasks/{task_id}").json()
    assert body["usage"] == {"image_count": 2, "size": "1024*1024", "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


def test_random_seed_is_drawn_once_and_kept(server):
    task_id = submit(server.api_base, "no seed given")
    wait_for(lambda: status(server.api_base, task_id)["task_status"] == "SUCCEEDED")
    record = server.service.get(task_id)
    seed = record.asked["seed"]
    assert 0 <= seed <= 2_147_483_647 and record.result.seed == seed


def test_sync_request_past_its_timeout_answers_504_and_task_goes_on(make_server):
    server = make_server(engine=DeterministicEngine(steps=10, step_seconds=0.1), sync_timeout_seconds=0.3)
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": "slow"}]}]},
            "parameters": {"size": "1K"}}
    r = httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body, timeout=30)
    assert r.status_code == 504 and r.json()["code"] == "RequestTimeOut"
    task_id = r.json()["message"].split()[2]
    wait_for(lambda: status(server.api_base, task_id)["task_status"] == "SUCCEEDED", timeout=10)


@pytest.mark.store_independent
def test_openai_images_field_wins_over_image(server):
    import base64

    from tests.conftest import png_bytes

    def uri(w, h):
        return "data:image/png;base64," + base64.b64encode(png_bytes(w, h)).decode()

    r = httpx.post(server.base_url + "/v1/images/generations",
                   json={"prompt": "p", "size": "1K", "image": uri(300, 300), "images": [uri(480, 240)]}, timeout=30)
    assert r.status_code == 200, r.text
    assert [im.size for im in server.engine.jobs[-1].images] == [(480, 240)]


@pytest.mark.store_independent
def test_database_trouble_on_poll_is_503_with_retry_after(make_server):
    from sqlalchemy.exc import OperationalError

    server = make_server()
    store = server.service.store

    def broken(task_id):
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    original, store.get = store.get, broken
    try:
        r = httpx.get(f"{server.api_base}/tasks/00000000-0000-4000-8000-000000000000")
    finally:
        store.get = original
    assert r.status_code == 503 and r.json()["code"] == "ServiceUnavailable"
    assert r.headers["retry-after"] == "2"
