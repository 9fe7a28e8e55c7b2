"""`wanimage worker` in its own process serves an API process that runs no workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.test_tasks import status, submit, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_separate_worker_process_runs_the_api_tasks(make_server):
    api = make_server(workers=0)
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.server", "--worker-only", "--data-dir", str(api.settings.data_dir),
         *(["--database-url", api.settings.database_url] if api.settings.database_url else [])],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        task_id = submit(api.api_base, "made elsewhere")
        done = wait_for(lambda: (s := status(api.api_base, task_id))["task_status"] == "SUCCEEDED" and s, timeout=60)
        assert httpx.get(done["choices"][0]["message"]["content"][0]["image"]).status_code == 200
        body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": "sync too"}]},
                "parameters": {"size": "1K"}}
        r = httpx.post(api.api_base + "/services/aigc/multimodal-generation/generation", json=body, timeout=60)
        assert r.status_code == 200  # the sync waiter sees the other process finish through the store
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
