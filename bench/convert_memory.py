"""Where an OpenVINO conversion's memory goes: runs the converting child's own code
(`wanimage.engines.diffusers.openvino_convert`) in this process and prints its resident memory
(VmRSS now, VmHWM so far) as each step begins and ends: the float16 step, the calibration inputs,
NNCF's statistics passes and algorithms, the weight compression. A sampler thread also keeps the
true peak (every 50 ms) and, with --timeline FILE, writes RSS every second.

    flock /tmp/wanimage-heavy.lock nice -n 10 .venv/bin/python bench/convert_memory.py \\
        .cache/cpu-real/models/stabilityai--sd-turbo '[["unet","int8_hybrid","/tmp/ir"]]' \\
        --variant fp16 --steps 1 --guidance 0.0

The arguments are openvino_convert's own (the folders `bench/cpu_real.py` builds). NNCF's steps
are found by name; one that a later NNCF renames is reported as not found and left out.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

STARTED = time.monotonic()
NNCF_STEPS = (  # module, attribute: the steps of nncf.quantize that allocate
    ("nncf.common.tensor_statistics.aggregator", "StatisticsAggregator.collect_statistics"),
    ("nncf.quantization.algorithms.smooth_quant.algorithm", "SmoothQuant.apply"),
    ("nncf.quantization.algorithms.min_max.algorithm", "MinMaxQuantization.apply"),
    ("nncf.quantization.algorithms.fast_bias_correction.algorithm", "FastBiasCorrection.apply"),
)


def memory_gb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in GB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[k].split()[0]) / 1e6 for k in ("VmRSS", "VmHWM"))


def mark(label: str) -> None:
    rss, hwm = memory_gb()
    print(f"[{time.monotonic() - STARTED:7.1f} s] {label:50s} RSS {rss:6.2f} GB   peak so far {hwm:6.2f} GB", flush=True)


def traced(owner, name: str, label: str) -> None:
    """`owner.name` replaced by a wrapper that marks its start and end."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        mark(f"> {label}")
        try:
            return inner(*args, **kwargs)
        finally:
            mark(f"< {label}")

    setattr(owner, name, wrapper)


def sample(peak: list[float], timeline) -> None:
    ticks = 0
    while True:
        rss, _ = memory_gb()
        peak[0] = max(peak[0], rss)
        ticks += 1
        if timeline is not None and ticks % 20 == 0:
            timeline.write(f"{time.monotonic() - STARTED:.1f} {rss:.2f}\n")
            timeline.flush()
        time.sleep(0.05)


def main() -> int:
    argv = sys.argv[1:]
    timeline = None
    if "--timeline" in argv:
        at = argv.index("--timeline")
        timeline = open(argv[at + 1], "w")  # noqa: SIM115 - written by the sampler until exit
        del argv[at:at + 2]
    from wanimage.engines.diffusers import openvino_backend, openvino_convert

    for module_name, attribute in NNCF_STEPS:
        owner_path, _, name = attribute.rpartition(".")
        try:
            owner = functools.reduce(getattr, owner_path.split("."), importlib.import_module(module_name))
        except (ImportError, AttributeError):
            print(f"not found in this NNCF: {module_name}.{attribute}")
            continue
        traced(owner, name, attribute)
    for name in ("float16", "quantize_convolutions", "compress"):  # looked up by convert() at each call
        traced(openvino_backend, name, name)
    traced(openvino_convert, "unet_samples", "unet_samples (calibration inputs)")
    peak = [0.0]
    threading.Thread(target=sample, args=(peak, timeline), daemon=True).start()
    mark("start")
    code = openvino_convert.main(argv)
    mark(f"end (sampled peak {peak[0]:.2f} GB)")
    return code


if __name__ == "__main__":
    sys.exit(main())
