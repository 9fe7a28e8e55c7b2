"""Start-up of the built-in model, two checkouts side by side: a fresh interpreter's wall seconds
to load the engine, to draw one image with `wanimage generate`, and for `wanimage serve` to answer
/health, run after run alternating the checkouts (the first to run alternates too), their
medians and the ratio B / A. Each run is a new process, as a user's command is: imports count.

    .venv/bin/python bench/startup.py /path/to/old /path/to/new [--repeats 5]

Each checkout runs under PYTHONPATH=<checkout>/src with this interpreter; its data and output go
to a fresh temporary directory per run."""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

LOAD = "from wanimage.engines.builtin import load_builtin_engine; load_builtin_engine()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: list[str], env: dict, cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def serve_ready(env: dict, cwd: str) -> float:
    """Seconds from `wanimage serve` starting to its first 200 on /health."""
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "wanimage.cli", "serve", "--port", str(port)], env=env,
                              cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"wanimage serve exited with {server.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(30)


def measure(checkout: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"PYTHONPATH": str(checkout / "src"), "WANIMAGE_DATA_DIR": tmp}
        return {
            "load the built-in engine": timed([sys.executable, "-c", LOAD], env, tmp),
            "generate one 768*768 image": timed([sys.executable, "-m", "wanimage.cli", "generate", "a red apple",
                                                 "--size", "768*768", "--seed", "1", "-o", "out"], env, tmp),
            "serve until /health answers": serve_ready(env, tmp),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path, help="the checkout before (A)")
    parser.add_argument("b", type=Path, help="the checkout after (B)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    for repeat in range(args.repeats):
        for side in ("A", "B") if repeat % 2 == 0 else ("B", "A"):
            runs[side].append(measure(args.a if side == "A" else args.b))
        print(f"round {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    print(f"A = {args.a}, B = {args.b}; wall seconds of a fresh process, median of {args.repeats}")
    print(f"{'':30s} {'A':>7s} {'B':>7s} {'B / A':>7s}")
    for name in runs["A"][0]:
        a, b = (statistics.median(run[name] for run in runs[side]) for side in ("A", "B"))
        print(f"{name:30s} {a:7.2f} {b:7.2f} {b / a:7.2f}")


if __name__ == "__main__":
    main()
