"""The Ray Serve runner on a local Ray instance with logical GPUs: the engine as a deployment with
one GPU per replica, the API as the Serve ingress, tasks in PostgreSQL."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port, wait_healthy
from tests.support.test_engine import DeterministicEngine
from wanimage.config import Settings
from wanimage.runners.ray_serve import ENGINE_APP, ScalingConfig, deploy, ray_environment
from wanimage.types import MODELS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory, postgres):
    ray_environment()
    import ray
    from ray import serve

    metrics_port = free_port()
    ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, object_store_memory=100 * 1024 * 1024,
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": f"{ROOT}/src:{ROOT}"}},
             _metrics_export_port=metrics_port)
    port = free_port()
    settings = Settings(data_dir=tmp_path_factory.mktemp("ray"), database_url=postgres.create_database(),
                        host="127.0.0.1", port=port, workers=4, heartbeat_seconds=0.5, stale_after_seconds=5)
    factory = functools.partial(DeterministicEngine, steps=4, step_seconds=0.4)  # 1.6 s per task
    scaling = ScalingConfig(num_gpus=1, num_cpus=0.25, min_replicas=1, max_replicas=2,
                            target_ongoing_requests=1, upscale_delay_s=1, downscale_delay_s=3)
    deploy(settings, {model: factory for model in MODELS}, scaling=scaling)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, timeout=120)
    yield base, serve, metrics_port
    serve.shutdown()
    ray.shutdown()


def replicas(serve) -> int:
    status = serve.status().applications[f"{ENGINE_APP}-0"].deployments["engine"]
    return status.replica_states.get("RUNNING", 0)


def submit(base: str, prompt: str) -> str:
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": prompt}]},
            "parameters": {"size": "768*768"}}
    r = httpx.post(base + "/api/v1/services/aigc/image-generation/generation", json=body,
                   headers={"X-DashScope-Async": "enable"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]


def task(base: str, task_id: str) -> dict:
    return httpx.get(f"{base}/api/v1/tasks/{task_id}", timeout=30).json()["output"]


def wait_until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.25)
    raise TimeoutError


def test_sync_request_through_the_ingress(ray_cluster):
    base, _, metrics_port = ray_cluster
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": "on ray"}]},
            "parameters": {"size": "1K"}}
    r = httpx.post(base + "/api/v1/services/aigc/multimodal-generation/generation", json=body, timeout=120)
    assert r.status_code == 200, r.text
    url = r.json()["output"]["choices"][0]["message"]["content"][0]["image"]
    assert httpx.get(url).status_code == 200
    models = httpx.get(base + "/v1/models").json()["data"]
    assert {m["engine"] for m in models} == {"ray:test-deterministic"}
    # the ingress replica's metrics reach Ray's metrics agent (cluster-wide scrape point)
    def exported():
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        return "wanimage_requests" in text and "wanimage_task_phase_seconds" in text and "wanimage_images" in text

    wait_until(exported, timeout=60)


def test_autoscaling_up_under_load_and_back(ray_cluster):
    base, serve, _ = ray_cluster
    assert replicas(serve) == 1
    ids = [submit(base, f"load {i}") for i in range(8)]
    wait_until(lambda: replicas(serve) == 2, timeout=90)
    wait_until(lambda: all(task(base, i)["task_status"] == "SUCCEEDED" for i in ids), timeout=120)
    wait_until(lambda: replicas(serve) == 1, timeout=90)


def test_killing_a_replica_does_not_lose_the_task(ray_cluster):
    import ray

    base, serve, _ = ray_cluster
    task_id = submit(base, "survivor")
    wait_until(lambda: task(base, task_id)["task_status"] == "RUNNING", timeout=30)
    time.sleep(0.3)  # inside the engine call
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["name"].startswith(f"SERVE_REPLICA::{ENGINE_APP}-0#engine"):
            ray.kill(ray.get_actor(actor["name"], namespace=actor["namespace"]), no_restart=True)
    final = wait_until(lambda: (t := task(base, task_id))["task_status"] in ("SUCCEEDED", "FAILED") and t,
                       timeout=120)
    assert final["task_status"] == "SUCCEEDED", final


def test_serve_config_file_builds_both_applications(monkeypatch, tmp_path):
    import yaml
    from ray.serve._private.utils import import_attr
    from ray.serve.schema import ServeDeploySchema

    monkeypatch.setenv("WANIMAGE_DATA_DIR", str(tmp_path))
    config = ServeDeploySchema.parse_obj(yaml.safe_load((ROOT / "examples" / "serve.yaml").read_text()))
    names = []
    for app in config.applications:
        application = import_attr(app.import_path)(app.args)
        names.append(app.name)
        assert type(application).__name__ == "Application"
    assert names == [f"{ENGINE_APP}-0", "wanimage"]
