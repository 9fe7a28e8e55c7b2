"""Thinking mode on vs off on held-out compositional prompts (counts, positions, colours,
relations; two and three objects), measured side by side in one run.

A. Plans (no model needed): with thinking off the built-in model places the objects the built-in
   engine reads with the prompt parser (wanimage.prompts); with thinking on it follows the built-in
   planner's layout. Each plan is judged against the prompt's known scene: per object, the right number of
   instances, the requested colour in every instance's label, and the position (region or
   relation) of the instances' centres.
B. Images (needs the weights, .cache/builtin-data and the evaluation classifier of
   bench/builtin_quality.py, trained and cached on first use): the built-in engine draws each
   prompt (on a white background) with and without thinking; objects are found as connected
   non-white blobs, each blob is named by the classifier (restricted to the prompt's objects),
   its colour by its dominant colour word; then the same judge as in A.
C. Latency: the built-in planner per prompt, and the engine with and without the plan.

    .venv/bin/python bench/thinking.py [--prompts 120] [--images 40] [--size 512] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from wanimage.prompts import plural
from wanimage.thinking.builtin import plan_text

NOUNS = ["cat", "dog", "house", "bus", "star", "sun", "balloon", "fish", "frog", "duck", "bird", "rocket",
         "umbrella", "banana", "pear", "lemon", "strawberry", "mushroom", "snowman", "ghost", "robot", "crown",
         "key", "bell", "cactus", "penguin", "owl", "turtle", "elephant", "horse", "pig", "cow", "rabbit",
         "fox", "lion", "whale", "octopus", "snail", "butterfly", "cloud", "guitar", "drum", "kite", "train",
         "airplane", "bicycle", "teapot", "cookie", "pizza", "candle"]
COLOURABLE = ["balloon", "bus", "bird", "fish", "umbrella", "star", "house", "robot", "kite", "car", "ghost",
              "octopus", "butterfly", "crown", "bell", "drum", "candle", "teapot"]
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "pink"]
WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
Box = tuple[float, float, float, float]


@dataclass
class Want:
    noun: str
    count: int = 1
    colour: str | None = None
    where: str | None = None  # left | right | top | bottom | top left | ... | center


@dataclass
class Case:
    prompt: str
    objects: list[Want]
    relations: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # a, kind, b, c


def _np(rng: random.Random, noun: str, count: int, colour: str | None, digits: bool) -> str:
    number = str(count) if digits and count > 1 else ("a" if count == 1 else WORDS[count])
    if count == 1 and colour is None and noun[0] in "aeiou":
        number = "an"
    if count == 1 and colour and colour[0] in "aeiou":
        number = "an"
    return " ".join(w for w in (number, colour, plural(noun) if count > 1 else noun) if w)


def cases(n: int, seed: int = 1234) -> list[Case]:
    """Held-out prompts: none of them is in the planner's unit-test table."""
    rng = random.Random(seed)
    out: list[Case] = []
    while len(out) < n:
        a, b, c = rng.sample(NOUNS, 3)
        ca, cb = (rng.choice(COLOURS) if x in COLOURABLE and rng.random() < 0.6 else None for x in (a, b))
        na, nb = rng.choice([1, 1, 2, 3, 4]), rng.choice([1, 1, 2, 3])
        digits = rng.random() < 0.4
        kind = rng.randrange(7)
        if kind == 0:  # counts and sides
            pa, pb = rng.choice([("left", "right"), ("right", "left"), ("top", "bottom"), ("bottom", "top")])
            words = {"left": "on the left", "right": "on the right side", "top": "at the top", "bottom": "at the bottom"}
            prompt = f"{_np(rng, a, na, ca, digits)} {words[pa]} and {_np(rng, b, nb, cb, digits)} {words[pb]}"
            out.append(Case(prompt, [Want(a, na, ca, pa), Want(b, nb, cb, pb)]))
        elif kind == 1:  # vertical relation
            phrase, rel = rng.choice([("above", "above"), ("below", "below"), ("on top of", "above"),
                                      ("under", "below"), ("beneath", "below")])
            prompt = f"{_np(rng, a, 1, ca, digits)} {phrase} {_np(rng, b, 1, cb, digits)}"
            out.append(Case(prompt, [Want(a, 1, ca), Want(b, 1, cb)], [(a, rel, b, None)]))
        elif kind == 2:  # horizontal relation
            phrase, rel = rng.choice([("to the left of", "left of"), ("to the right of", "right of"),
                                      ("next to", "next to"), ("beside", "next to")])
            prompt = f"{_np(rng, a, 1, ca, digits)} {phrase} {_np(rng, b, 1, cb, digits)}"
            out.append(Case(prompt, [Want(a, 1, ca), Want(b, 1, cb)], [(a, rel, b, None)]))
        elif kind == 3:  # corners
            pa, pb = rng.choice([("top left", "bottom right"), ("top right", "bottom left")])
            sa = rng.choice(["in the {} corner", "in the {}", "at the {}"]).format(
                pa.replace(" ", "-") if rng.random() < 0.5 else pa.replace("top", "upper"))
            sb = f"in the {pb} corner"
            prompt = f"{_np(rng, a, na, ca, digits)} {sa}, {_np(rng, b, 1, cb, digits)} {sb}"
            out.append(Case(prompt, [Want(a, na, ca, pa), Want(b, 1, cb, pb)]))
        elif kind == 4:  # three objects in a row
            prompt = f"{_np(rng, a, 1, ca, digits)} on the left, {_np(rng, b, 1, cb, digits)} in the middle " \
                     f"and {_np(rng, c, 1, None, digits)} on the right"
            out.append(Case(prompt, [Want(a, 1, ca, "left"), Want(b, 1, cb, "center"), Want(c, 1, None, "right")]))
        elif kind == 5:  # between
            prompt = f"{_np(rng, a, 1, ca, digits)} between {_np(rng, b, 1, cb, digits)} and {_np(rng, c, 1, None, digits)}"
            out.append(Case(prompt, [Want(a, 1, ca), Want(b, 1, cb), Want(c, 1, None)], [(a, "between", b, c)]))
        else:  # counts alone, two kinds
            prompt = f"{_np(rng, a, na, ca, digits)} and {_np(rng, b, nb, cb, digits)}"
            out.append(Case(prompt, [Want(a, na, ca), Want(b, nb, cb)]))
    return out


# ------------------------------------------------------------------ the judge


def assign(case: Case, phrase: str) -> str | None:
    """The prompt object an instance stands for: the one its phrase names first."""
    hits = [(m.start(), w.noun) for w in case.objects if (m := re.search(rf"\b{w.noun}\b", phrase.lower()))]
    return min(hits)[1] if hits else None


def in_region(where: str, cx: float, cy: float) -> bool:
    ok = True
    for part in where.split():
        ok &= {"left": cx < 0.5, "right": cx > 0.5, "top": cy < 0.5, "bottom": cy > 0.5,
               "center": 0.25 < cx < 0.75 and 0.25 < cy < 0.75}[part]
    return ok


def judge(case: Case, instances: list[tuple[str, Box, str | None]]) -> dict[str, list[bool]]:
    """instances: (noun or phrase, (x1, y1, x2, y2) fractions, colour word or None)."""
    by: dict[str, list[tuple[Box, str | None, str]]] = {w.noun: [] for w in case.objects}
    for phrase, box, colour in instances:
        noun = assign(case, phrase)
        if noun is not None:
            by[noun].append((box, colour, phrase))
    res: dict[str, list[bool]] = {"count": [], "position": [], "colour": []}

    def centre(noun: str) -> tuple[float, float] | None:
        boxes = [b for b, _, _ in by[noun]]
        if not boxes:
            return None
        return (sum((b[0] + b[2]) / 2 for b in boxes) / len(boxes), sum((b[1] + b[3]) / 2 for b in boxes) / len(boxes))

    for w in case.objects:
        got = by[w.noun]
        res["count"].append(len(got) == w.count)
        if w.colour:
            res["colour"].append(bool(got) and all((c or "") == w.colour or w.colour in p for _, c, p in got))
        if w.where:
            res["position"].append(bool(got) and all(in_region(w.where, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
                                                     for b, _, _ in got))
    for a, kind, b, c in case.relations:
        pa, pb, pc = centre(a), centre(b), centre(c) if c else None
        if pa is None or pb is None or (c and pc is None):
            res["position"].append(False)
            continue
        ok = {"above": pa[1] < pb[1] - 0.05, "below": pa[1] > pb[1] + 0.05, "left of": pa[0] < pb[0] - 0.05,
              "right of": pa[0] > pb[0] + 0.05, "next to": abs(pa[0] - pb[0]) > 0.15,
              "between": pc is not None and min(pb[0], pc[0]) < pa[0] < max(pb[0], pc[0])}[kind]
        res["position"].append(ok)
    return res


def summarise(results: list[dict[str, list[bool]]]) -> dict[str, float]:
    out = {}
    for key in ("count", "position", "colour"):
        flat = [x for r in results for x in r[key]]
        out[key] = sum(flat) / max(1, len(flat))
    out["all correct"] = sum(all(x for v in r.values() for x in v) for r in results) / max(1, len(results))
    return out


# ------------------------------------------------------------------ A: plans


def plan_off(prompt: str, size: int) -> list[tuple[str, Box, str | None]]:
    """What the built-in engine does without thinking: the prompt parser and the model's placement."""
    from wanimage.engines.builtin.engine import text_scene
    from wanimage.model.scenes import layout_boxes

    plan = text_scene(prompt, None, size, size)
    return [(o.phrase, b, None) for o, b in layout_boxes(plan, 1.0, random.Random(0))]


def plan_on(prompt: str, size: int) -> list[tuple[str, Box, str | None]]:
    plan = plan_text(prompt, size, size)
    if plan.layout is None:
        return plan_off(plan.revised_prompt, size)
    return [(it.label, (it.box.x1 / size, it.box.y1 / size, it.box.x2 / size, it.box.y2 / size), None)
            for it in plan.layout]


# ------------------------------------------------------------------ B: images


def image_eval(items: list[Case], size: int, threads: int) -> tuple[dict, dict, dict]:
    import numpy as np
    import torch
    from PIL import Image
    from scipy import ndimage

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import builtin_quality as bq  # the built-in model's evaluation: its classifier

    from wanimage.core.job import make_job
    from wanimage.engines.base import no_progress
    from wanimage.engines.builtin import load_builtin_engine
    from wanimage.model.captions import dominant_colour
    from wanimage.types import Mode

    torch.set_num_threads(threads)
    meta = __import__("json").loads((bq.DATA / "meta.json").read_text())["icons"]
    index = {m["label"]: i for i, m in enumerate(meta)}
    if bq.CLASSIFIER.exists():
        clf = bq.Classifier(len(meta))
        clf.load_state_dict(torch.load(bq.CLASSIFIER))
        clf.eval()
    else:
        lo = torch.from_numpy(np.load(bq.DATA / "sprites32.npy")).permute(0, 3, 1, 2).float() / 127.5 - 1
        t = time.time()
        clf = bq.train_classifier(bq.on_white(lo))
        torch.save(clf.state_dict(), bq.CLASSIFIER)
        print(f"evaluation classifier trained in {time.time() - t:.0f} s (cached in {bq.CLASSIFIER})")
    from wanimage.engines.builtin.engine import DEFAULT_WEIGHTS

    digest = __import__("hashlib").sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()[:12]
    print(f"\nweights {DEFAULT_WEIGHTS.name} sha256 {digest}", flush=True)
    engine = load_builtin_engine()

    def detect(image: Image.Image, case: Case) -> list[tuple[str, Box, str | None]]:
        px = np.asarray(image).astype(np.int16)  # (H, W, 3)
        mask = (255 - px).max(-1) > 40  # not white
        labels, n = ndimage.label(ndimage.binary_opening(mask, iterations=2), structure=np.ones((3, 3)))
        nouns = [w.noun for w in case.objects]
        ids = torch.tensor([index[n_] for n_ in nouns])
        found = []
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None:
                continue
            part = labels[sl] == k
            if part.sum() < 0.002 * size * size:
                continue
            rgb = px[sl].astype(np.uint8)
            rgba = np.dstack([rgb, (part * 255).astype(np.uint8)])
            h, w = part.shape
            side = max(h, w)
            canvas = Image.new("RGB", (side, side), (255, 255, 255))
            canvas.paste(Image.fromarray(rgba, "RGBA"), ((side - w) // 2, (side - h) // 2), Image.fromarray(rgba, "RGBA"))
            x = torch.from_numpy(np.asarray(canvas.resize((32, 32), Image.LANCZOS))).permute(2, 0, 1).float()[None] / 255
            with torch.no_grad():
                logits = clf(x)[0, ids]
            noun = nouns[int(logits.argmax())]
            box = (sl[1].start / size, sl[0].start / size, sl[1].stop / size, sl[0].stop / size)
            found.append((noun, box, dominant_colour(rgba)))
        return found

    results: dict[str, list] = {"off": [], "on": []}
    times: dict[str, list[float]] = {"off": [], "on": []}
    for i, case in enumerate(items):
        prompt = case.prompt + ", on a white background"
        plan = plan_text(prompt, size, size)
        for mode in ("off", "on"):
            job = make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, plan.revised_prompt if mode == "on" else prompt,
                                size, size, 1, 1000 + i, layout=plan.layout if mode == "on" else None,
                                original_prompt=prompt)
            t = time.perf_counter()
            image = engine.generate(job, no_progress)[0]
            times[mode].append(time.perf_counter() - t)
            results[mode].append(judge(case, detect(image, case)))
        print(f"  drawn {i + 1}/{len(items)}", file=sys.stderr, flush=True)
    return summarise(results["off"]), summarise(results["on"]), {k: statistics.median(v) for k, v in times.items()}


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=120, help="held-out prompts for the plan measurement")
    ap.add_argument("--images", type=int, default=40, help="prompts drawn by the engine (0: skip B)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    items = cases(args.prompts)

    # C. planner latency (before anything else warms caches)
    lat = []
    for case in items:
        t = time.perf_counter()
        plan_text(case.prompt, 1024, 1024)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    print(f"built-in planner latency over {len(lat)} prompts: median {statistics.median(lat):.2f} ms, "
          f"p95 {lat[int(0.95 * (len(lat) - 1))]:.2f} ms, max {lat[-1]:.2f} ms")

    # A. plans
    off = summarise([judge(c, plan_off(c.prompt, args.size)) for c in items])
    on = summarise([judge(c, plan_on(c.prompt, args.size)) for c in items])
    print(f"\nA. plans, {len(items)} held-out prompts (fraction correct)")
    print(f"{'':14}{'off (no plan)':>20}{'on (planner)':>14}")
    for key in off:
        print(f"{key:14}{off[key]:>20.3f}{on[key]:>14.3f}")

    if args.images:
        try:
            img_off, img_on, secs = image_eval(items[: args.images], args.size, args.threads)
        except (FileNotFoundError, ImportError) as exc:
            print(f"\nB. images skipped: {exc}")
            return
        print(f"\nB. images, {args.images} prompts at {args.size}x{args.size}, judged by the evaluation classifier")
        print(f"{'':14}{'thinking off':>20}{'thinking on':>14}")
        for key in img_off:
            print(f"{key:14}{img_off[key]:>20.3f}{img_on[key]:>14.3f}")
        print(f"{'engine s/img':14}{secs['off']:>20.2f}{secs['on']:>14.2f}  (median, planner time excluded)")


if __name__ == "__main__":
    main()
