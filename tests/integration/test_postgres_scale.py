"""Several API processes and worker processes on one PostgreSQL database: every task runs exactly
once, and a worker killed mid-task leaves its task to the recovery pass."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port, wait_healthy
from wanimage.tasks.records import TaskStatus
from wanimage.tasks.store import TaskStore

ROOT = Path(__file__).resolve().parents[2]


class Cluster:
    def __init__(self, data_dir: Path, database_url: str, log: Path, **env: str) -> None:
        self.data_dir, self.url, self.log = data_dir, database_url, log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "WANIMAGE_TEST_ENGINE_LOG": str(log), **env}
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, *args: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "tests.support.server", "--data-dir", str(self.data_dir),
               "--database-url", self.url, *args]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env)
        self.procs.append(proc)
        return proc

    def api(self) -> str:
        port = free_port()
        self._spawn("--port", str(port), "--workers", "0")
        wait_healthy(f"http://127.0.0.1:{port}", timeout=60)
        return f"http://127.0.0.1:{port}/api/v1"

    def worker(self, step_seconds: float, workers: int = 1) -> subprocess.Popen:
        return self._spawn("--worker-only", "--step-seconds", str(step_seconds), "--workers", str(workers))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def submit(api: str, prompt: str) -> str:
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": prompt}]},
            "parameters": {"size": "768*768"}}
    r = httpx.post(api + "/services/aigc/image-generation/generation", json=body,
                   headers={"X-DashScope-Async": "enable"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]


def wait_all_terminal(store: TaskStore, ids: list[str], timeout: float) -> dict[str, TaskStatus]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = {i: store.get(i).status for i in ids}
        if all(s.terminal for s in statuses.values()):
            return statuses
        time.sleep(0.25)
    raise TimeoutError({i: s for i, s in statuses.items() if not s.terminal})


@pytest.mark.slow
def test_two_apis_three_workers_200_tasks_each_run_once(tmp_path, postgres):
    cluster = Cluster(tmp_path, postgres.create_database(), tmp_path / "ran.log", WANIMAGE_MAX_QUEUE="1000")
    try:
        apis = [cluster.api(), cluster.api()]
        for _ in range(3):
            cluster.worker(step_seconds=0.0)
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda i: submit(apis[i % 2], f"task-{i}"), range(200)))
        store = TaskStore(cluster.url)
        statuses = wait_all_terminal(store, ids, timeout=300)
        assert set(statuses.values()) == {TaskStatus.SUCCEEDED}
        ran = cluster.log.read_text().split()
        assert len(ran) == 200 and len(set(ran)) == 200  # none lost, none run twice
        assert {store.get(i).attempts for i in ids} == {1}
        store.close()
    finally:
        cluster.stop()


@pytest.mark.slow
def test_worker_killed_mid_task_is_recovered(tmp_path, postgres):
    # Short heartbeats so that the surviving worker's recovery pass runs every second.
    cluster = Cluster(tmp_path, postgres.create_database(), tmp_path / "ran.log",
                      WANIMAGE_STALE_AFTER_SECONDS="1", WANIMAGE_HEARTBEAT_SECONDS="0.3")
    try:
        api = cluster.api()
        victim = cluster.worker(step_seconds=1.0)  # 4 s per task
        task_id = submit(api, "interrupted")
        store = TaskStore(cluster.url)
        deadline = time.monotonic() + 30
        while store.get(task_id).status is not TaskStatus.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        cluster.worker(step_seconds=0.0)
        statuses = wait_all_terminal(store, [task_id], timeout=60)
        record = store.get(task_id)
        assert statuses[task_id] is TaskStatus.SUCCEEDED and record.attempts == 2
        store.close()
    finally:
        cluster.stop()
