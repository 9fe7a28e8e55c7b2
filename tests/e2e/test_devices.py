"""WANIMAGE_DEVICES=cpu,cpu behind a real server: one worker and one set of tiny
pipelines per device; two requests sent at once through the dashscope SDK both succeed, and
each ran while the other was running (their RUNNING periods overlap)."""

from __future__ import annotations

import threading
from http import HTTPStatus

import httpx
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message

from tests.support.devices import diffusers_on_two_cpus

KEY = "sk-test"
CONFIG = """
[models."wan2.7-image"]
family = "qwen_image"
text_to_image = "tiny:qwen_image"
steps = 40
true_cfg = 1.0
max_generate_pixels = 4096
"""


def test_two_devices_run_two_requests_at_once(tmp_path, database):
    with diffusers_on_two_cpus(tmp_path, database(), CONFIG, KEY) as (registry, running):
        metrics = httpx.get(f"{running.base_url}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
        assert "wanimage_workers 2.0" in metrics
        msg = Message(role="user", content=[{"text": "an apple on a table"}])
        submitted = [ImageGeneration.async_call(model="wan2.7-image", api_key=KEY, messages=[msg],
                                                size="768*768", seed=s) for s in (1, 2)]
        assert all(r.status_code == HTTPStatus.OK for r in submitted), submitted
        done = {}
        threads = [threading.Thread(target=lambda r=r: done.setdefault(
            r.output.task_id, ImageGeneration.wait(task=r, api_key=KEY))) for r in submitted]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
    assert len(done) == 2 and all(r.output.task_status == "SUCCEEDED" for r in done.values()), done
    first, second = sorted(done.values(), key=lambda r: r.output.scheduled_time)
    assert second.output.scheduled_time < first.output.end_time  # both ran at the same time
    summary = registry.describe()[0]["summary"]
    assert summary["device"] == "cpu,cpu"
