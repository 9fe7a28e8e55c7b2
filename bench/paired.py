"""Two checkouts' servers measured alternately by bench/overhead.py: the +ms per path of each
(and finish_image's wall ms per 1K image), run after run, their medians and the paired differences (B - A). The machine's load moves both
alike within a pair, so the paired figure is the one to quote on a shared machine.

    .venv/bin/python bench/paired.py /path/to/old /path/to/new --pairs 5 -- --seconds 0 --repeats 40 --no-remote --no-throughput

Each checkout runs under PYTHONPATH=<checkout>/src:<checkout> with this interpreter and this
checkout's bench/overhead.py; the first to run alternates from pair to pair."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

OVERHEAD = Path(__file__).resolve().parent / "overhead.py"
ROW = re.compile(r"^(?P<path>[a-z].*?)\s{2,}(?P<cells>[-\d.\s]+)$")
FINISH = re.compile(r"^noise (?P<noise>\S+): finish_image .* (?P<wall>[\d.]+) ms wall$")


def run(checkout: Path, args: list[str]) -> dict[tuple[str, int], float]:
    """+ms per (path, case index) from one overhead.py run of `checkout`."""
    env = os.environ | {"PYTHONPATH": f"{checkout / 'src'}:{checkout}"}
    out = subprocess.run([sys.executable, str(OVERHEAD), *args], env=env, capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for line in out.splitlines():
        if match := FINISH.match(line):  # in-process, wall ms: listed as case "noise N"
            found[(f"finish_image wall (noise {match['noise']})", 0)] = float(match["wall"])
            continue
        match = ROW.match(line)
        if not match or match["path"].startswith(("path", "engine alone")):
            continue
        numbers = match["cells"].split()
        per_case = 4 if len(numbers) % 4 == 0 else 3  # seconds, ratio, +ms[, server CPU]
        for case in range(len(numbers) // per_case):
            found[(match["path"], case)] = float(numbers[case * per_case + 2])
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path, help="the checkout before (A)")
    parser.add_argument("b", type=Path, help="the checkout after (B)")
    parser.add_argument("--pairs", type=int, default=5)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, rest = parser.parse_args(argv[:cut]), argv[cut + 1:]  # after "--": overhead.py's own arguments
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    for pair in range(args.pairs):
        order = ("A", "B") if pair % 2 == 0 else ("B", "A")
        for side in order:
            runs[side].append(run(args.a if side == "A" else args.b, rest))
        print(f"pair {pair + 1}/{args.pairs} done ({order[0]} first)", file=sys.stderr, flush=True)
    print(f"A = {args.a}, B = {args.b}; overhead.py {' '.join(rest)}; {args.pairs} pairs, +ms per image")
    print(f"{'path':36s} {'case':>4s} {'A median':>9s} {'B median':>9s} {'B-A median':>11s}  B-A per pair")
    for key in runs["A"][0]:
        a = [r[key] for r in runs["A"]]
        b = [r[key] for r in runs["B"]]
        diffs = [y - x for x, y in zip(a, b, strict=True)]
        print(f"{key[0]:36s} {key[1]:4d} {statistics.median(a):9.1f} {statistics.median(b):9.1f} "
              f"{statistics.median(diffs):+11.1f}  {' '.join(f'{d:+.1f}' for d in diffs)}")


if __name__ == "__main__":
    main()
