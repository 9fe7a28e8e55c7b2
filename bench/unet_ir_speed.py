"""UNet IRs side by side: the CPU and wall seconds of one call of each OpenVINO UNet IR given,
compiled in this process and called in rotation (a 512x512 image's latents, one timestep, 77 text
tokens), so that one kind of compression can be compared with another on this CPU without the
rest of the pipeline. Also the output's distance from the first IR's, on four timesteps.

    flock /tmp/wanimage-heavy.lock nice -n 10 .venv/bin/python bench/unet_ir_speed.py \\
        /tmp/fp16/model.xml /tmp/int8/model.xml \\
        .cache/cpu-real/models/stabilityai--sd-turbo/.cache/openvino/unet.int8_hybrid-*/model.xml

IRs of the other kinds come from the converting child, e.g. `.venv/bin/python -m
wanimage.engines.diffusers.openvino_convert FOLDER '[["unet", "int8", "/tmp/int8"]]' --variant fp16`
(an empty kind: the float16 IR). Give each its own parent folder: a conversion removes other
`<prefix>-*` folders beside its own as stale.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import openvino as ov


def unet_inputs(model, size: int, timestep: float, seed: int) -> list[np.ndarray]:
    """(latents, timestep, text embeddings) shaped for `model` (its context width from its graph)."""
    rng = np.random.default_rng(seed)
    width = model.inputs[2].get_partial_shape()[2]
    hidden = width.get_length() if width.is_static else 1024
    return [rng.standard_normal((1, 4, size // 8, size // 8)).astype(np.float32),
            np.array([timestep], np.float32), rng.standard_normal((1, 77, hidden)).astype(np.float32)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("irs", nargs="+", help="UNet model.xml files; the first is the reference")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    core = ov.Core()
    compiled = {path: core.compile_model(path, "CPU", {"PERFORMANCE_HINT": "LATENCY"}) for path in args.irs}
    feeds = unet_inputs(compiled[args.irs[0]], args.size, 999.0, 0)
    requests = {path: model.create_infer_request() for path, model in compiled.items()}
    for request in requests.values():
        request.infer(feeds)  # warm-up
    cpu: dict[str, list[float]] = {p: [] for p in requests}
    wall: dict[str, list[float]] = {p: [] for p in requests}
    for _ in range(args.rounds):
        for path, request in requests.items():
            c, w = time.process_time(), time.perf_counter()
            request.infer(feeds)
            cpu[path].append(time.process_time() - c)
            wall[path].append(time.perf_counter() - w)
    checks = [unet_inputs(compiled[args.irs[0]], args.size, t, k) for k, t in enumerate((999.0, 749.0, 499.0, 249.0))]
    reference = [np.asarray(compiled[args.irs[0]](x)[0]) for x in checks]
    print(f"{ov.Core().get_property('CPU', 'FULL_DEVICE_NAME')}, OpenVINO {ov.__version__}, "
          f"{args.size}x{args.size}, median of {args.rounds} rotated rounds")
    for path in requests:
        out = [np.asarray(compiled[path](x)[0]) for x in checks]
        moved = [float(np.abs(a - b).mean() / np.abs(b).mean()) for a, b in zip(out, reference, strict=True)]
        print(f"{path}: CPU {statistics.median(cpu[path]):.2f} s, wall {statistics.median(wall[path]):.2f} s; "
              f"output moved from the first's by {min(moved):.4f}-{max(moved):.4f} (mean |diff| / mean |first|)")


if __name__ == "__main__":
    main()
