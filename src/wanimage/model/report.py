"""Training curves as a PNG, drawn with PIL (no plotting dependency)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image, ImageDraw


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(log_path: Path, out: Path, width: int = 900, height: int = 420,
                max_step: int | None = None) -> Path:
    """Generator loss (left axis) and upsampler L1 (right axis) against training samples, log x.
    `max_step` cuts the log at the step of the weights being documented."""
    recs = [r for r in read_log(log_path) if max_step is None or r["step"] <= max_step]
    xs = [math.log10(max(r["samples"], 1)) for r in recs]
    series = [("generator flow-matching MSE", [r["loss"] for r in recs], (200, 40, 40)),
              ("upsampler L1", [r["up_loss"] for r in recs], (40, 90, 200))]
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 70, width - 70, 30, height - 50
    d.rectangle([left, top, right, bottom], outline="black")
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    for k, (name, ys, colour) in enumerate(series):
        lo, hi = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1e-6
        pts = [(sx(x), bottom - (y - lo) / (hi - lo) * (bottom - top)) for x, y in zip(xs, ys, strict=True)]
        d.line(pts, fill=colour, width=2)
        ax = left - 65 if k == 0 else right + 5
        d.text((ax, top), f"{hi:.3f}", fill=colour)
        d.text((ax, bottom - 10), f"{lo:.3f}", fill=colour)
        d.text((left + 10, top + 5 + 14 * k), name, fill=colour)
    # Ticks at 1, 2 and 5 x 10^k: a log that spans less than a decade still gets labels.
    for p in range(math.floor(x0), math.ceil(x1) + 1):
        for m in (1, 2, 5):
            x = p + math.log10(m)
            if x0 <= x <= x1:
                d.line([(sx(x), bottom), (sx(x), bottom + 5)], fill="black")
                d.text((sx(x) - 12, bottom + 8), f"{m}e{p}", fill="black")
    last = recs[-1]
    d.text((left, height - 22), f"training samples (log scale); last: step {last['step']}, "
           f"{last['samples']} samples, {last['seconds'] / 3600:.2f} h of training (wall clock)", fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out
