"""Throughput and latency with 1, 2 and 4 engine replicas on Ray Serve, against the embedded
runner with as many worker threads, on one fixed-cost engine, in one run.

    .venv/bin/python bench/scale.py [--engine-seconds 0.5] [--tasks 24]

Each configuration gets a burst of `--tasks` async requests; throughput is images per second
from the first submit to the last task's end, latency is each task's submit -> end."""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from overhead import SleepEngine  # noqa: E402

from tests.support.postgres import start_cluster  # noqa: E402
from tests.support.server import free_port, start_server, wait_healthy  # noqa: E402
from wanimage.config import Settings  # noqa: E402
from wanimage.runners.ray_serve import API_APP, ScalingConfig, deploy, engine_apps, ray_environment  # noqa: E402
from wanimage.types import MODELS  # noqa: E402


def burst(base: str, tasks: int) -> tuple[float, list[float]]:
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": "scale"}]},
            "parameters": {"size": "768*768"}}

    def submit(_):
        r = httpx.post(base + "/api/v1/services/aigc/image-generation/generation", json=body,
                       headers={"X-DashScope-Async": "enable"}, timeout=60)
        r.raise_for_status()
        return r.json()["output"]["task_id"]

    start = time.time()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(tasks)))
    latencies, last_end = [], start
    for task_id in ids:
        while True:
            out = httpx.get(f"{base}/api/v1/tasks/{task_id}", timeout=30).json()["output"]
            if out["task_status"] == "SUCCEEDED":
                break
            if out["task_status"] in ("FAILED", "CANCELED", "UNKNOWN"):
                raise RuntimeError(out)
            time.sleep(0.05)
        done = time.time()
        last_end = max(last_end, done)
        latencies.append(done - start)
    return tasks / (last_end - start), latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine-seconds", type=float, default=0.5)
    parser.add_argument("--tasks", type=int, default=24)
    parser.add_argument("--replicas", default="1,2,4")
    args = parser.parse_args()
    counts = [int(c) for c in args.replicas.split(",")]
    rows = []
    cluster = start_cluster()
    ray_environment()
    import ray
    from ray import serve

    ray.init(num_cpus=8, num_gpus=max(counts), include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024 * 1024, runtime_env={"env_vars": {"PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}"}})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in counts:
                engine = SleepEngine(args.engine_seconds, noise=0)
                local = start_server(Path(tmp) / f"e{n}", engine, workers=n, max_queue=1000,
                                     database_url=cluster.create_database())
                rps, lat = burst(local.base_url, args.tasks)
                local.stop()
                rows.append(("embedded", n, rps, lat))

                port = free_port()
                settings = Settings(data_dir=Path(tmp) / f"r{n}", database_url=cluster.create_database(),
                                    host="127.0.0.1", port=port, workers=2 * n, max_queue=1000)
                factory = functools.partial(SleepEngine, args.engine_seconds, 0)
                scaling = ScalingConfig(num_gpus=1, num_cpus=0.1, min_replicas=n, max_replicas=n)
                factories = {model: factory for model in MODELS}
                deploy(settings, factories, scaling=scaling)
                wait_healthy(f"http://127.0.0.1:{port}", timeout=120)
                rps, lat = burst(f"http://127.0.0.1:{port}", args.tasks)
                rows.append(("ray", n, rps, lat))
                for app in {*engine_apps(factories).values(), API_APP}:
                    serve.delete(app)
                serve.shutdown()
    finally:
        ray.shutdown()
        cluster.stop()

    ideal = {n: n / args.engine_seconds for n in counts}
    print(f"fixed-cost engine {args.engine_seconds} s/image, {args.tasks} tasks per burst, 768x768")
    print(f"{'runner':9s} {'replicas':>8s} {'images/s':>9s} {'of ideal':>8s} {'p50 s':>7s} {'p99 s':>7s}")
    for runner, n, rps, lat in rows:
        print(f"{runner:9s} {n:8d} {rps:9.2f} {rps / ideal[n]:8.2f} {pct(lat, 50):7.2f} {pct(lat, 99):7.2f}")
    by = {(r, n): rps for r, n, rps, _ in rows}
    for n in counts:
        print(f"ray / embedded throughput at {n} replicas: {by[('ray', n)] / by[('embedded', n)]:.3f}")


if __name__ == "__main__":
    main()
