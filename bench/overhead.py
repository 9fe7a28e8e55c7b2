"""Server overhead: end-to-end time of a 1K request divided by the engine's own time, and the
milliseconds per image the server adds over it, for sync and async calls and url / b64_json output,
for flat art (noise 0, as the built-in model draws) and photo-like grain (larger PNGs) in one run,
plus requests per second for 50 concurrent clients on a fast engine. The remote path (docs/remote.md) runs beside the embedded one: a second server with
the same engine is the backend of a front whose models are remote, and the front's overhead is its
time minus the backend's own b64_json time. Everything runs side by side in one process on loopback.

    .venv/bin/python bench/overhead.py [--engine sleep|builtin] [--steps 30] [--noise 0,6] [--repeats 7] [--no-remote]
    .venv/bin/python bench/overhead.py --seconds 0 --repeats 40 --no-remote --no-throughput  # the server alone

The client is urllib3, which reads a whole body in one call, so the time measured is the
server's and the kernel's: httpx (the openai SDK's client) spends about 5 ms more than urllib3
reading a 2 MB PNG over loopback on a 2-vCPU machine, time the client spends on its own side.
`--client httpx` measures with httpx instead; each run's "client cost" lines give both clients'
time for one GET of the same result, and its "noise 6 over noise 0" line what the larger PNG alone
adds to each path (what is left of a 15 ms goal for everything else a call does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import urllib3
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import start_server  # noqa: E402
from wanimage.config import Settings  # noqa: E402
from wanimage.engines.base import Engine, GenerationJob, no_progress  # noqa: E402
from wanimage.engines.factories import build_registry  # noqa: E402
from wanimage.prompts import warm as warm_chinese  # noqa: E402
from wanimage.types import ALL_MODES, Capabilities  # noqa: E402


def painted(width: int, height: int, noise: float, seed: int = 0) -> Image.Image:
    """A gradient with optional grain: flat art (noise 0) like the built-in model's, or photo-like."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 128)], -1)
    grain = np.random.default_rng(seed).normal(0, noise, base.shape) if noise else 0
    return Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8))


class SleepEngine(Engine):
    """Stands for a real engine with a fixed compute time, reporting progress after each of its
    `steps` as a sampler does (each report is server work: a cancel check, an event, a throttled
    progress write); its images are painted once per size and reused, so the engine's own time
    does not wobble and the ratio isolates the server."""

    def __init__(self, seconds: float, noise: float = 6.0, steps: int = 1) -> None:
        self.name = f"sleep-{seconds}s"
        self.seconds = seconds
        self.noise = noise
        self.steps = max(1, steps)
        self.capabilities = Capabilities(modes=ALL_MODES)
        self._cache: dict[tuple[int, int], Image.Image] = {}

    def generate(self, job: GenerationJob, progress) -> list[Image.Image]:
        for step in range(1, self.steps + 1):
            time.sleep(self.seconds / self.steps)
            progress(step / self.steps)
        size = (job.width, job.height)
        if size not in self._cache:
            self._cache[size] = painted(*size, self.noise)
        return [self._cache[size]] * job.n


def make_engine(kind: str, seconds: float, noise: float, steps: int):
    if kind == "builtin":
        from wanimage.engines.builtin import load_builtin_engine

        return load_builtin_engine()  # its own time varies a little from run to run
    return SleepEngine(seconds, noise, steps)


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


def encoding_cpu(noise: float, repeats: int = 15) -> tuple[float, float]:
    """Thread CPU and wall seconds (medians) of `finish_image` for one 1K image with every
    provenance mark on: what a result costs to encode, in a figure the machine's load barely
    moves (CPU time), where the end-to-end ratios above move with it."""
    from wanimage.core.job import resolve_job
    from wanimage.core.pipeline import finish_image
    from wanimage.core.provenance import ImageFacts, Provenance
    from wanimage.core.request import build_request

    with tempfile.TemporaryDirectory() as tmp:
        marks = Provenance.from_settings(Settings(data_dir=Path(tmp)))
        req = build_request(model="wan2.7-image", prompt="a red apple", size="1K", seed=1, thinking_mode=False)
        job = resolve_job(req, [])
        facts = ImageFacts("t", 1, "a red apple", "a red apple", 1, 1024, 1024, "wan2.7-image", "sleep")
        image = painted(1024, 1024, noise)
        finish_image(image, job, 1, marks, facts)  # warm: the signer, the watermark pattern
        cpu, wall = [], []
        for _ in range(repeats):
            c, w = time.thread_time(), time.perf_counter()
            finish_image(image, job, 1, marks, facts)
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall)


def ds_body(prompt: str) -> dict:
    return {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
            "parameters": {"size": "1K", "seed": 1, "thinking_mode": False}}


class LeanClient:
    """The few calls the paths make, over urllib3 (keep-alive, a body read in one call): a
    client whose own cost per request is small beside the server's, so the +ms is the server's."""

    def __init__(self) -> None:
        self.pool = urllib3.PoolManager(timeout=300, retries=False)

    def post(self, url: str, body: dict, headers: dict | None = None) -> dict:
        r = self.pool.request("POST", url, body=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json", **(headers or {})})
        if r.status >= 400:
            raise RuntimeError(f"POST {url}: HTTP {r.status} {r.data[:200]!r}")
        return json.loads(r.data)

    def get(self, url: str) -> bytes:
        r = self.pool.request("GET", url)
        if r.status >= 400:
            raise RuntimeError(f"GET {url}: HTTP {r.status}")
        return r.data

    def close(self) -> None:
        self.pool.clear()


class HttpxClient:
    """The same calls over httpx, as the openai SDK makes them (`--client httpx`)."""

    def __init__(self) -> None:
        self.client = httpx.Client(timeout=300)

    def post(self, url: str, body: dict, headers: dict | None = None) -> dict:
        r = self.client.post(url, json=body, headers=headers)
        r.raise_for_status()
        return r.json()

    def get(self, url: str) -> bytes:
        r = self.client.get(url)
        r.raise_for_status()
        return r.content

    def close(self) -> None:
        self.client.close()


Client = LeanClient | HttpxClient
CLIENTS: dict[str, type[Client]] = {"urllib3": LeanClient, "httpx": HttpxClient}


def sync_call(client: Client, base: str) -> None:
    out = client.post(base + "/api/v1/services/aigc/multimodal-generation/generation", ds_body("a red apple"))
    client.get(out["output"]["choices"][0]["message"]["content"][0]["image"])


def async_call(client: Client, base: str) -> None:
    task = client.post(base + "/api/v1/services/aigc/image-generation/generation", ds_body("a red apple"),
                       {"X-DashScope-Async": "enable"})["output"]["task_id"]
    while True:  # a tight 20 ms poll: measures the server, not a client's back-off
        out = json.loads(client.get(f"{base}/api/v1/tasks/{task}"))["output"]
        if out["task_status"] == "SUCCEEDED":
            break
        time.sleep(0.02)
    client.get(out["choices"][0]["message"]["content"][0]["image"])


def openai_call(client: Client, base: str, fmt: str) -> None:
    out = client.post(base + "/v1/images/generations", {"model": "wan2.7-image", "prompt": "a red apple",
                      "size": "1K", "seed": 1, "thinking_mode": False, "response_format": fmt})
    if fmt == "url":
        client.get(out["data"][0]["url"])


def client_cost(base: str, repeats: int) -> dict[str, float]:
    """Median seconds per GET of one fresh result, each client in turn: what the client itself
    adds to the same bytes from the same server."""
    probe = LeanClient()
    url = probe.post(base + "/v1/images/generations", {"model": "wan2.7-image", "prompt": "a red apple",
                     "size": "1K", "seed": 1, "thinking_mode": False, "response_format": "url"})["data"][0]["url"]
    clients = {name: make() for name, make in CLIENTS.items()}
    times: dict[str, list[float]] = {name: [] for name in clients}
    size = 0
    for _ in range(repeats):
        for name, client in clients.items():
            t = time.perf_counter()
            size = len(client.get(url))
            times[name].append(time.perf_counter() - t)
    for client in [probe, *clients.values()]:
        client.close()
    return {"bytes": size} | {name: statistics.median(t) for name, t in times.items()}


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


class ChildServer:
    """`start_server` in a forked process of its own, as a deployment runs: the client here and
    the server do not take turns on one interpreter lock, so what is measured is the server's
    time and the client's download, not the two serialised. The engine object is inherited by
    the fork (nothing is pickled)."""

    def __init__(self, data_dir: Path, engine=None, **overrides) -> None:
        fork = multiprocessing.get_context("fork")
        ready, self._stop = fork.Queue(), fork.Event()
        self._cpu, child_end = fork.Pipe()
        self.process = fork.Process(target=self._run, args=(data_dir, engine, overrides, ready, child_end), daemon=True)
        self.process.start()
        self.base_url = ready.get(timeout=60)

    def _run(self, data_dir: Path, engine, overrides: dict, ready, cpu) -> None:
        warm_chinese()  # the server loads jieba in a thread at start (~1 s of CPU): not in the figures
        server = start_server(data_dir, engine, **overrides)

        def answer_cpu() -> None:  # the CPU seconds of every thread of the server, when asked
            while cpu.recv():
                cpu.send(time.process_time())

        threading.Thread(target=answer_cpu, daemon=True).start()
        ready.put(server.base_url)
        self._stop.wait()
        server.stop()

    def cpu_seconds(self) -> float:
        self._cpu.send(True)
        return self._cpu.recv()

    def stop(self) -> None:
        self._stop.set()
        self.process.join(timeout=30)


SERVER_PATHS = ("dashscope sync + url download", "dashscope async (20 ms polls)", "openai url + download",
                "openai b64_json")  # the paths served by the measured server alone


def measure(engine, tmp: Path, repeats: int, remote: bool, in_process: bool = False,
            client_kind: str = "urllib3") -> tuple[list[tuple[str, float, float | None]], dict[str, float]]:
    """Per path: median seconds and, with the server in a process of its own, its mean CPU seconds
    per call (every thread of the server; a figure the machine's load barely moves); and what each
    client takes to GET one result (`client_cost`). The engine's servers are started for this
    case only."""
    warm_chinese()
    serve = start_server if in_process else ChildServer
    server = serve(tmp / "a", engine, workers=1)
    base = server.base_url
    running = [server]
    client = CLIENTS[client_kind]()
    try:
        sync_call(client, base)  # warm up
        paths = {
            "engine alone": lambda: engine_time(engine, 1),
            "dashscope sync + url download": lambda: sync_call(client, base),
            "dashscope async (20 ms polls)": lambda: async_call(client, base),
            "openai url + download": lambda: openai_call(client, base, "url"),
            "openai b64_json": lambda: openai_call(client, base, "b64_json"),
        }
        if remote:  # a backend with the same engine, a front whose two ids are remote to it
            backend = serve(tmp / "r", engine, workers=1)
            settings = Settings(data_dir=tmp / "f", remote_url=backend.base_url + "/v1")
            front = serve(tmp / "f", registry=build_registry(settings), remote_url=settings.remote_url)
            running += [backend, front]
            sync_call(client, front.base_url)
            paths |= {
                "remote: backend openai b64_json": lambda: openai_call(client, backend.base_url, "b64_json"),
                "remote: front dashscope sync + url": lambda: sync_call(client, front.base_url),
                "remote: front openai b64_json": lambda: openai_call(client, front.base_url, "b64_json"),
            }
        # Round-robin, so a change in machine load hits every path alike.
        samples: dict[str, list[float]] = {name: [] for name in paths}
        server_cpu: dict[str, float] = dict.fromkeys(paths, 0.0)
        own_cpu = getattr(server, "cpu_seconds", None)
        for _ in range(repeats):
            for name, fn in paths.items():
                c = own_cpu() if own_cpu else 0.0
                t = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t)
                server_cpu[name] += (own_cpu() - c) if own_cpu else 0.0
        cost = client_cost(base, repeats)
    finally:
        client.close()
        for each in reversed(running):
            each.stop()
    measured = own_cpu is not None
    rows = [(name, statistics.median(times),
             server_cpu[name] / repeats if measured and name in SERVER_PATHS else None)
            for name, times in samples.items()]
    return rows, cost


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", default="sleep", choices=["sleep", "builtin"])
    parser.add_argument("--seconds", type=float, default=1.0, help="SleepEngine compute time")
    parser.add_argument("--steps", type=int, default=30,
                        help="progress reports per image, as a sampler's steps (SleepEngine)")
    parser.add_argument("--noise", default="0,6",
                        help="SleepEngine image grain per case, comma-separated (0 = flat art, 6 = photo-like)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--client", default="urllib3", choices=sorted(CLIENTS),
                        help="the HTTP client of the measured calls (urllib3: the least time of its own)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--no-remote", action="store_true", help="skip the remote front/backend paths")
    parser.add_argument("--no-throughput", action="store_true", help="skip the 50-client throughput run")
    parser.add_argument("--in-process", action="store_true",
                        help="the server in a thread of this process (sharing its GIL with the client), "
                             "as before 2026-12-05, instead of a process of its own")
    args = parser.parse_args()

    noises = [float(n) for n in args.noise.split(",")] if args.engine == "sleep" else [0.0]
    with tempfile.TemporaryDirectory() as tmp:
        measured = {noise: measure(make_engine(args.engine, args.seconds, noise, args.steps), Path(tmp) / f"n{noise}",
                                   args.repeats, not args.no_remote, args.in_process, args.client) for noise in noises}
        cases = {noise: rows for noise, (rows, _) in measured.items()}
        steps = f", {args.steps} progress steps" if args.engine == "sleep" else ""
        print(f"engine={args.engine}{steps} 1K (1024x1024), median of {args.repeats}; client {args.client}; "
              "+ms = milliseconds per image the server adds over the engine alone")
        print("server CPU = CPU ms of the server process per call (all its threads), mean")
        header = "".join(f" {'noise ' + format(n, 'g'):>33s}" for n in noises)
        print(f"{'path':36s}{header}")
        print(f"{'':36s}" + " seconds  ratio    +ms server CPU" * len(noises))
        for index, (name, *_) in enumerate(cases[noises[0]]):
            cells = []
            for noise in noises:
                rows = cases[noise]
                (_, t, cpu), engine_alone = rows[index], rows[0][1]
                cpu_cell = f"{cpu * 1000:11.1f}" if cpu is not None else f"{'':11s}"
                ratio = f"{t / engine_alone:6.3f}" if engine_alone >= 0.001 else f"{'-':>6s}"  # --seconds 0
                cells.append(f" {t:7.3f} {ratio} {(t - engine_alone) * 1000:6.1f} {cpu_cell}")
            print(f"{name:36s}{''.join(cells)}")
        for noise in noises[1:]:  # what the larger PNG alone costs: the rest of a call must fit beside it
            spread = ", ".join(f"{name} {(t - flat[1]) * 1000:+.1f} ms"
                               for (name, t, _), flat in zip(cases[noise][1:], cases[noises[0]][1:], strict=True))
            print(f"noise {noise:g} over noise {noises[0]:g}, same path: {spread}")
        for noise in noises:
            cpu, wall = encoding_cpu(noise)
            print(f"noise {noise:g}: finish_image (palette, marks, PNG, C2PA) per 1K image, median of 15: "
                  f"{cpu * 1000:.1f} ms thread CPU, {wall * 1000:.1f} ms wall")
        for noise in noises:
            cost = measured[noise][1]
            each = ", ".join(f"{name} {cost[name] * 1000:.2f} ms" for name in CLIENTS)
            print(f"noise {noise:g}: client cost, one GET of a {cost['bytes'] / 1e6:.2f} MB result, median: {each}")
        for noise in noises if not args.no_remote else []:
            times = {name: t for name, t, _ in cases[noise]}
            front_cost = times["remote: front openai b64_json"] - times["remote: backend openai b64_json"]
            print(f"noise {noise:g}: the remote front's own cost (front b64_json - backend b64_json): "
                  f"{front_cost * 1000:.0f} ms")

        if not args.no_throughput:
            fast = start_server(Path(tmp) / "b", SleepEngine(0.0, noise=0), workers=2, max_queue=1000)
            rps = asyncio.run(throughput(fast.base_url, args.clients, seconds=10))
            fast.stop()
            print(f"throughput, {args.clients} concurrent clients, 768x768 on a zero-cost engine: {rps:.1f} requests/s")


if __name__ == "__main__":
    main()
