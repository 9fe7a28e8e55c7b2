"""Server memory under a hostile load: nine 8000x8000 RGBA PNGs of zeros (about 240 KB each)
as data URIs in one sync edit request, sent `--rounds` times. A real `wanimage serve` runs in its
own process with the built-in engine; its RSS is read from /proc: idle (after one warm-up
request), the peak (VmHWM), and idle again after the requests.

    .venv/bin/python bench/memory.py [--rounds 3] [--images 9]

Prints the three figures, the peak's rise over idle against the decode budget, and whether the
server came back to within 20 % of its idle RSS."""

from __future__ import annotations

import argparse
import base64
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import free_port, wait_healthy  # noqa: E402  (loopback helpers only)
from wanimage.config import Settings  # noqa: E402

SYNC = "/api/v1/services/aigc/multimodal-generation/generation"


def zeros_png(side: int = 8000) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (side, side), (0, 0, 0, 0)).save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def rss(pid: int, field: str = "VmRSS") -> int:
    """Bytes of `field` (VmRSS now, VmHWM the peak) of process `pid`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def settle(pid: int, seconds: float = 3.0) -> int:
    """RSS once it has stopped falling (freed memory is handed back shortly after a request)."""
    time.sleep(seconds)
    return rss(pid)


def measure(rounds: int = 3, images: int = 9, env: dict[str, str] | None = None) -> dict[str, float]:
    png = zeros_png()
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    content = [{"image": uri} for _ in range(images)] + [{"text": "a red fox"}]
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": {"size": "1024*1024"}}
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wanimage.cli", "--log-level", "warning", "serve", "--data-dir", data_dir,
             "--port", str(port)],
            cwd=ROOT, env={**os.environ, **(env or {})}, stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, timeout=60)
            httpx.post(base + SYNC, json={**body, "input": {"messages": [{"role": "user", "content": [
                {"text": "warm up"}]}]}}, timeout=120).raise_for_status()
            idle = settle(proc.pid)
            for _ in range(rounds):
                r = httpx.post(base + SYNC, json=body, timeout=300)
                assert r.status_code == 200, r.text
            peak = rss(proc.pid, "VmHWM")
            after = settle(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    return {"png_bytes": len(png), "idle": idle, "peak": peak, "after": after,
            "budget": Settings(**_settings_overrides(env)).decode_budget_bytes}


def _settings_overrides(env: dict[str, str] | None) -> dict:
    prefix = "WANIMAGE_"
    return {k[len(prefix):].lower(): v for k, v in (env or {}).items() if k.startswith(prefix)}


def report(m: dict[str, float], rounds: int, images: int) -> None:
    mib = 1024 * 1024
    rise = m["peak"] - m["idle"]
    print(f"{rounds} requests of {images} x 8000x8000 RGBA PNG of zeros ({m['png_bytes'] / 1024:.0f} KB each)")
    print(f"idle RSS        {m['idle'] / mib:8.0f} MiB")
    print(f"peak RSS        {m['peak'] / mib:8.0f} MiB   (+{rise / mib:.0f} MiB; decode budget {m['budget'] / mib:.0f} MiB)")
    print(f"after, settled  {m['after'] / mib:8.0f} MiB   ({(m['after'] / m['idle'] - 1) * 100:+.1f} % of idle)")
    print(f"peak rise within the budget: {rise < m['budget']}; back within 20 % of idle: {m['after'] <= 1.2 * m['idle']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=9)
    args = parser.parse_args()
    report(measure(args.rounds, args.images), args.rounds, args.images)


if __name__ == "__main__":
    main()
