"""Where a preset's server holds its memory, request by request: `wanimage serve --preset NAME` in a
process of its own on a models directory (bench/cpu_real.py's, built with random weights at full
size: run `bench/cpu_real.py --chinese --paths wanimage --skip-peers --repeats 1` once to build it
with the translator), then one DashScope request per word of `--prompts` (`en`: English, `zh`:
Chinese, which loads the preset's translator at the first one). After each: the process's resident
memory now, its peak so far (VmHWM), the anonymous and file-backed parts, and the request's CPU
seconds and minor page faults in the server process, from /proc.

    .venv/bin/python bench/preset_memory.py                       # sd-turbo: en en zh zh
    .venv/bin/python bench/preset_memory.py --preset sdxs-512 --prompts zh en
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cpu_real import PROMPT, PROMPT_ZH, dashscope_call, process_cpu  # noqa: E402

from tests.support.server import free_port, wait_healthy  # noqa: E402

FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def memory(pid: int) -> dict[str, int]:
    """MB (10^6 bytes, as bench/cpu_real.py's GB are 10^9: /proc's "kB" are KiB) of each FIELDS
    line of /proc/<pid>/status."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in FIELDS:
            found[key] = int(value.split()[0]) * 1024 // 1_000_000
    return found


def counters(pid: int) -> tuple[float, int]:
    """CPU seconds (every thread, cpu_real's reading) and minor page faults of the process so far."""
    minor_faults = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])
    return process_cpu(pid), minor_faults


def line(label: str, seconds: float | None, mb: dict[str, int], cpu: float | None = None, faults: int = 0) -> str:
    took = f"{seconds:6.2f} s {cpu:5.2f} CPU s {faults:7d} faults" if seconds is not None else " " * 33
    return f"{label:<8} {took}  " + "  ".join(f"{k} {mb[k]:5d} MB" for k in FIELDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="sd-turbo")
    parser.add_argument("--models", default=str(ROOT / ".cache" / "cpu-real" / "models"))
    parser.add_argument("--prompts", nargs="+", choices=("en", "zh"), default=["en", "en", "zh", "zh"])
    parser.add_argument("--size", default="768*768")
    args = parser.parse_args()

    port = free_port()
    env = {**os.environ, "WANIMAGE_MODELS_DIR": args.models}
    with tempfile.TemporaryDirectory() as data, open(Path(data) / "serve.log", "w") as log:
        server = subprocess.Popen([str(Path(sys.executable).parent / "wanimage"), "--log-level", "warning", "serve",
                                   "--preset", args.preset, "--data-dir", data, "--port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, timeout=600)
            print(line("started", None, memory(server.pid)), flush=True)
            for seed, language in enumerate(args.prompts):
                started, (cpu, faults) = time.perf_counter(), counters(server.pid)
                answer = dashscope_call(base, args.size, seed, PROMPT_ZH if language == "zh" else PROMPT)
                answer.raise_for_status()
                cpu_after, faults_after = counters(server.pid)
                print(line(language, time.perf_counter() - started, memory(server.pid), cpu_after - cpu,
                           faults_after - faults), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
