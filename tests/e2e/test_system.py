"""Health, metrics, OpenAPI docs, and what a server with no installed model says."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server import start_server
from wanimage.engines.factories import NOT_INSTALLED
from wanimage.engines.registry import EngineRegistry
from wanimage.types import MODELS


@pytest.mark.store_independent
def test_health_lists_models(server):
    body = httpx.get(server.base_url + "/health").json()
    assert body["status"] == "ok" and body["workers"] == 2
    assert {m["model"] for m in body["models"]} == set(MODELS)


def test_metrics_count_requests_queue_and_images(server):
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": "metered"}]},
            "parameters": {"size": "1K", "n": 2}}
    r = httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body, timeout=30)
    assert r.status_code == 200
    text = httpx.get(server.base_url + "/metrics").text
    assert 'wanimage_requests_total{method="POST",route="/api/v1/services/aigc/multimodal-generation/generation",status="200"}' in text
    assert "wanimage_request_seconds_bucket" in text
    assert "wanimage_queue_depth" in text and "wanimage_workers 2.0" in text
    for phase in ("queued", "generating", "encoding", "storing"):
        assert f'wanimage_task_phase_seconds_count{{phase="{phase}"}}' in text
    images = float(next(line.split()[-1] for line in text.splitlines() if line.startswith("wanimage_images_generated ")))
    assert images >= 2


@pytest.mark.store_independent
def test_openapi_docs_served(server):
    assert httpx.get(server.base_url + "/docs").status_code == 200
    spec = httpx.get(server.base_url + "/openapi.json").json()
    assert "/api/v1/services/aigc/multimodal-generation/generation" in spec["paths"]
    assert "/v1/images/generations" in spec["paths"]


@pytest.mark.store_independent
def test_every_response_has_request_id_header(server):
    for r in (httpx.get(server.base_url + "/health"), httpx.get(server.base_url + "/nope"),
              httpx.post(server.base_url + "/v1/images/generations", json={"prompt": "x", "size": "9K"})):
        assert r.headers.get("x-request-id")


def test_no_model_installed_is_said_in_every_error(tmp_path):
    def missing():
        raise FileNotFoundError(NOT_INSTALLED)

    server = start_server(tmp_path, registry=EngineRegistry({m: missing for m in MODELS}))
    try:
        body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": "x"}]}, "parameters": {}}
        r = httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body)
        assert r.status_code == 503 and r.json()["code"] == "ModelUnavailable"
        assert "no model is installed" in r.json()["message"]
        r = httpx.post(server.base_url + "/v1/images/generations", json={"prompt": "x"})
        assert r.status_code == 503 and "no model is installed" in r.json()["error"]["message"]
        health = httpx.get(server.base_url + "/health").json()
        assert all("no model is installed" in m["error"] for m in health["models"])
    finally:
        server.stop()
