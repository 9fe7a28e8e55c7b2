"""`wanimage worker` in its own process serves an API process that runs no workers."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from PIL import Image

from tests.e2e.test_tasks import status, submit, wait_for

ROOT = Path(__file__).resolve().parents[2]


def start_worker(api, *extra: str) -> subprocess.Popen:
    """`wanimage worker` with the test engine, on the API server's data dir and database."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.server", "--worker-only", "--data-dir", str(api.settings.data_dir),
         *(["--database-url", api.settings.database_url] if api.settings.database_url else []), *extra],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_separate_worker_process_runs_the_api_tasks(make_server):
    api = make_server(workers=0)
    worker = start_worker(api)
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


def test_a_stream_gets_partial_images_from_a_worker_in_another_process(make_server):
    """The worker leaves its latest partial image in the image store and its key in the task row;
    the API process streaming the task picks them up as it polls the store."""
    api = make_server(workers=0)
    worker = start_worker(api, "--steps", "12", "--step-seconds", "0.25")  # 3 s a task
    try:
        body = {"model": "wan2.7-image", "prompt": "made elsewhere", "size": "768x768", "stream": True,
                "partial_images": 3, "response_format": "b64_json"}
        with httpx.stream("POST", api.base_url + "/v1/images/generations", json=body, timeout=60) as rsp:
            events = [json.loads(line[6:]) for line in rsp.iter_lines() if line.startswith("data: ")]
        kinds = [e["type"] for e in events]
        assert kinds[-1] == "image_generation.completed", kinds
        partial = [e for e in events if e["type"] == "image_generation.partial_image"]
        assert len(partial) >= 2 and [e["partial_image_index"] for e in partial] == list(range(len(partial)))
        assert Image.open(io.BytesIO(base64.b64decode(partial[0]["b64_json"]))).size == (64, 64)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
