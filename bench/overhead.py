"""Server overhead: end-to-end time of a 1K request divided by the engine's own time, for sync and
async calls and url / b64_json output, plus requests per second for 50 concurrent clients on a
fast engine. The remote path (docs/remote.md) runs beside the embedded one: a second server with
the same engine is the backend of a front whose models are remote, and the front's overhead is its
time minus the backend's own b64_json time. Everything runs side by side in one process on loopback.

    .venv/bin/python bench/overhead.py [--engine sleep|builtin] [--repeats 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import start_server  # noqa: E402
from wanimage.config import Settings  # noqa: E402
from wanimage.engines.base import Engine, GenerationJob, no_progress  # noqa: E402
from wanimage.engines.factories import build_registry  # noqa: E402
from wanimage.types import ALL_MODES, Capabilities  # noqa: E402


def painted(width: int, height: int, noise: float, seed: int = 0) -> Image.Image:
    """A gradient with optional grain: flat art (noise 0) like the built-in model's, or photo-like."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 128)], -1)
    grain = np.random.default_rng(seed).normal(0, noise, base.shape) if noise else 0
    return Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8))


class SleepEngine(Engine):
    """Stands for a real engine with a fixed compute time; its images are painted once per size
    and reused, so the engine's own time does not wobble and the ratio isolates the server."""

    def __init__(self, seconds: float, noise: float = 6.0) -> None:
        self.name = f"sleep-{seconds}s"
        self.seconds = seconds
        self.noise = noise
        self.capabilities = Capabilities(modes=ALL_MODES)
        self._cache: dict[tuple[int, int], Image.Image] = {}

    def generate(self, job: GenerationJob, progress) -> list[Image.Image]:
        time.sleep(self.seconds)
        size = (job.width, job.height)
        if size not in self._cache:
            self._cache[size] = painted(*size, self.noise)
        return [self._cache[size]] * job.n


def make_engine(kind: str, seconds: float, noise: float):
    if kind == "builtin":
        from wanimage.engines.builtin import load_builtin_engine

        return load_builtin_engine()  # its own time varies a little from run to run
    return SleepEngine(seconds, noise)


def engine_time(engine, repeats: int) -> float:
    from wanimage.core.job import resolve_job
    from wanimage.core.request import build_request

    req = build_request(model="wan2.7-image", prompt="a red apple", size="1K", seed=1, thinking_mode=False)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        engine.generate(resolve_job(req, []), no_progress)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ds_body(prompt: str) -> dict:
    return {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
            "parameters": {"size": "1K", "seed": 1, "thinking_mode": False}}


def sync_call(client: httpx.Client, base: str) -> None:
    r = client.post(base + "/api/v1/services/aigc/multimodal-generation/generation", json=ds_body("a red apple"))
    r.raise_for_status()
    client.get(r.json()["output"]["choices"][0]["message"]["content"][0]["image"]).raise_for_status()


def async_call(client: httpx.Client, base: str) -> None:
    r = client.post(base + "/api/v1/services/aigc/image-generation/generation", json=ds_body("a red apple"),
                    headers={"X-DashScope-Async": "enable"})
    task = r.json()["output"]["task_id"]
    while True:  # a tight 20 ms poll: measures the server, not a client's back-off
        out = client.get(f"{base}/api/v1/tasks/{task}").json()["output"]
        if out["task_status"] == "SUCCEEDED":
            break
        time.sleep(0.02)
    client.get(out["choices"][0]["message"]["content"][0]["image"]).raise_for_status()


def openai_call(client: httpx.Client, base: str, fmt: str) -> None:
    r = client.post(base + "/v1/images/generations", json={"model": "wan2.7-image", "prompt": "a red apple",
                    "size": "1K", "seed": 1, "thinking_mode": False, "response_format": fmt})
    r.raise_for_status()
    if fmt == "url":
        client.get(r.json()["data"][0]["url"]).raise_for_status()


async def throughput(base: str, clients: int, seconds: float) -> float:
    done = 0
    stop = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < stop:
            r = await client.post(base + "/v1/images/generations", json={"prompt": "p", "size": "768*768", "response_format": "url"})
            r.raise_for_status()
            done += 1

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as client:
        t = time.monotonic()
        await asyncio.gather(*(one(client) for _ in range(clients)))
        return done / (time.monotonic() - t)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", default="sleep", choices=["sleep", "builtin"])
    parser.add_argument("--seconds", type=float, default=1.0, help="SleepEngine compute time")
    parser.add_argument("--noise", type=float, default=6.0, help="SleepEngine image grain (0 = flat)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()

    engine = make_engine(args.engine, args.seconds, args.noise)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "a", engine, workers=1)
        base = server.base_url
        # the remote path: a backend with the same engine, a front whose two ids are remote to it
        backend = start_server(Path(tmp) / "r", engine, workers=1)
        remote = Settings(data_dir=Path(tmp) / "f", remote_url=backend.base_url + "/v1")
        front = start_server(Path(tmp) / "f", registry=build_registry(remote), remote_url=remote.remote_url)
        with httpx.Client(timeout=300) as client:
            sync_call(client, base)  # warm up
            sync_call(client, front.base_url)
            paths = {
                "engine alone": lambda: engine_time(engine, 1),
                "dashscope sync + url download": lambda: sync_call(client, base),
                "dashscope async (20 ms polls)": lambda: async_call(client, base),
                "openai url + download": lambda: openai_call(client, base, "url"),
                "openai b64_json": lambda: openai_call(client, base, "b64_json"),
                "remote: backend openai b64_json": lambda: openai_call(client, backend.base_url, "b64_json"),
                "remote: front dashscope sync + url": lambda: sync_call(client, front.base_url),
                "remote: front openai b64_json": lambda: openai_call(client, front.base_url, "b64_json"),
            }
            # Round-robin, so a change in machine load hits every path alike.
            samples: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(args.repeats):
                for name, fn in paths.items():
                    t = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - t)
            rows = [(name, statistics.median(times)) for name, times in samples.items()]
        for running in (front, backend, server):
            running.stop()
        print(f"engine={args.engine} noise={args.noise} 1K (1024x1024), median of {args.repeats}")
        print(f"{'path':36s} {'seconds':>8s} {'ratio':>6s}")
        for name, t in rows:
            print(f"{name:36s} {t:8.3f} {t / rows[0][1]:6.3f}")
        times = dict(rows)
        front_cost = times["remote: front openai b64_json"] - times["remote: backend openai b64_json"]
        print(f"the remote front's own cost (front b64_json - backend b64_json): {front_cost * 1000:.0f} ms")

        fast = start_server(Path(tmp) / "b", SleepEngine(0.0, noise=0), workers=2, max_queue=1000)
        rps = asyncio.run(throughput(fast.base_url, args.clients, seconds=10))
        fast.stop()
        print(f"throughput, {args.clients} concurrent clients, 768x768 on a zero-cost engine: {rps:.1f} requests/s")


if __name__ == "__main__":
    main()
