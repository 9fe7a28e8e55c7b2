"""Quality of the built-in model, measured against its own training renders.

1. A small CNN classifier is trained on augmented 32 px renders of every training icon (cached
   in .cache/builtin-classifier.pt); its accuracy on differently-augmented renders is reported.
2. Prompt following: sprites generated from held-out prompts ("a drawing of a <label>", a
   template never used in training) and from training-style prompts ("a <label>") are
   classified; top-1 / top-5 accuracy of the intended icon among all icons.
3. Bbox edits: PSNR outside the boxes (inf = exact).
4. Sets: background colour distance within a set vs across unrelated images.
5. Palette: distance from requested to produced palette, with and without color_palette.
6. Sharpness: edge energy at 1024 px of the upsampler's output vs a Lanczos enlargement of the
   same 32 px sprite.
7. Colour words: "a purple car" and the like, the dominant colour of the drawn object against the
   word, without and with the recolouring of sprites that do not show it.
8. Everyday prompts (bench/data/everyday_prompts.txt, written for this bench and read by nothing
   else): the share whose subject is drawn (an accepted emoji in the classifier's top 5 for a
   sprite the engine draws), before (phrases drawn as written) and after the open-vocabulary
   lookup (wanimage.model.concepts). `--everyday-zh`: the same on everyday Chinese prompts
   (bench/data/everyday_prompts_zh.txt; Simplified, Traditional and mixed with English).
9. Diversity: n = 4 images of one prompt, mean pairwise pixel distance of their sprites (as
   drawn, mirrored or not, on white) and of their boxes' centres, without and with variety.

    .venv/bin/python bench/builtin_quality.py [--prompts 200] [--weights PATH]
    .venv/bin/python bench/builtin_quality.py --everyday          # 8. and 9. only
    .venv/bin/python bench/builtin_quality.py --everyday-zh       # 8. on the Chinese prompts only
    .venv/bin/python bench/builtin_quality.py --sheet-zh docs/builtin/text-to-image-zh.png
    .venv/bin/python bench/builtin_quality.py --sweep 3:12,5:12,8:12,5:24   # CFG:steps, (2.) only
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from wanimage.core.job import make_job
from wanimage.engines.base import no_progress
from wanimage.engines.builtin import load_builtin_engine
from wanimage.model.captions import article
from wanimage.model.pipeline import generate_sprites, upsample
from wanimage.types import Box, Mode, PaletteColor

DATA = Path(".cache/builtin-data")
EVERYDAY = Path(__file__).resolve().parent / "data" / "everyday_prompts.txt"
EVERYDAY_ZH = EVERYDAY.with_name("everyday_prompts_zh.txt")  # the same measure on Chinese prompts
CLASSIFIER = Path(".cache/builtin-classifier.pt")


def on_white(x: torch.Tensor) -> torch.Tensor:
    """(B, 4, H, W) premultiplied in [-1, 1] -> (B, 3, H, W) RGB on white in [0, 1]."""
    x = (x + 1) / 2
    return x[:, :3] + (1 - x[:, 3:])


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Shifts, zoom, noise: what separates a generated sprite from its render."""
    b = x.shape[0]
    theta = torch.zeros(b, 2, 3)
    s = 1 + 0.15 * (torch.rand(b, generator=g) - 0.5)
    theta[:, 0, 0], theta[:, 1, 1] = s, s
    theta[:, :, 2] = 0.12 * (torch.rand(b, 2, generator=g) - 0.5)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    x = F.grid_sample(x - 1, grid, align_corners=False, padding_mode="zeros") + 1  # white pad
    return (x + 0.04 * torch.randn(x.shape, generator=g)).clamp(0, 1)


class Classifier(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        c = 48
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.BatchNorm2d(4 * c), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(4 * c * 16, n),
        )

    def forward(self, x):  # (B, 3, 32, 32) -> (B, n)
        return self.net(x * 2 - 1)


def train_classifier(renders: torch.Tensor, epochs: int = 24) -> Classifier:
    g = torch.Generator().manual_seed(0)
    n = renders.shape[0]
    clf = Classifier(n)
    opt = torch.optim.AdamW(clf.parameters(), 2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * math.ceil(n / 128))
    labels = torch.arange(n)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, 128):
            idx = perm[i : i + 128]
            loss = F.cross_entropy(clf(augment(renders[idx], g)), labels[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return clf.eval()


def top5_hits(clf: Classifier, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: is the target the classifier's first guess, is it among its five first."""
    with torch.no_grad():
        logits = torch.cat([clf(x[i : i + 256]) for i in range(0, len(x), 256)])
    top5 = logits.topk(5, dim=1).indices
    return top5[:, 0] == target, (top5 == target[:, None]).any(1)


def topk(clf: Classifier, x: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    top1, top5 = top5_hits(clf, x, target)
    return top1.float().mean().item(), top5.float().mean().item()


def edge_energy(img: np.ndarray) -> float:
    g = img.astype(np.float32).mean(-1)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def sheet(images: list[Image.Image], cols: int, cell: int = 256) -> Image.Image:
    rows = (len(images) + cols - 1) // cols
    out = Image.new("RGB", (cols * cell, rows * cell), "white")
    for k, im in enumerate(images):
        im = im.copy()
        im.thumbnail((cell, cell), Image.LANCZOS)
        out.paste(im, ((k % cols) * cell, (k // cols) * cell))
    return out


def write_sheets(engine, out_dir: Path) -> None:
    """One contact sheet per mode, for the model card."""
    out_dir.mkdir(parents=True, exist_ok=True)

    def gen(mode, prompt, seed, w=512, h=512, n=1, **kw):
        return engine.generate(make_job("wan2.7-image", mode, prompt, w, h, n, seed, **kw), no_progress)

    t2i = ["a red apple", "a cat", "a yellow banana", "a rocket", "a pizza", "a smiling face",
           "a green frog", "a house"]
    sheet([gen(Mode.TEXT_TO_IMAGE, p, 1)[0] for p in t2i], 4).save(out_dir / "text-to-image.png")
    scenes = ["two red apples on the left and a cat on the right on a blue background",
              "three stars at the top and a house at the bottom", "a dog, a cat and a rocket",
              "a tree on the left and a sun at the top right on a green and white gradient background"]
    sheet([gen(Mode.TEXT_TO_IMAGE, p, 2, 768, 512)[0] for p in scenes], 2).save(out_dir / "scenes.png")
    sheet(gen(Mode.TEXT_TO_IMAGE_SET, "on a yellow background. image 1: a cat. image 2: a cat and a "
              "ball. image 3: a cat and a fish. image 4: a sleeping cat", 3, n=4), 4).save(out_dir / "set.png")
    base = gen(Mode.TEXT_TO_IMAGE, "a house on the left on a blue background", 4)[0]
    box = Box(300, 250, 500, 450)
    edited = gen(Mode.EDIT, "add a dog in the box", 5, images=[base], boxes=[[box]])[0]
    marked = base.copy()
    from PIL import ImageDraw
    ImageDraw.Draw(marked).rectangle([box.x1, box.y1, box.x2, box.y2], outline=(255, 0, 0), width=3)
    removed = gen(Mode.EDIT, "remove the house", 6, images=[base], boxes=[[Box(20, 80, 270, 430)]])[0]
    two = gen(Mode.EDIT, "add a red apple at the top right", 7, images=[edited, base])[0]
    sheet([marked, edited, removed, two], 4).save(out_dir / "edit.png")
    pal = [PaletteColor((230, 60, 60), 0.5), PaletteColor((40, 90, 200), 0.3), PaletteColor((250, 220, 80), 0.2)]
    sheet([gen(Mode.TEXT_TO_IMAGE, "a cat", 8)[0], gen(Mode.TEXT_TO_IMAGE, "a cat", 8, palette=pal)[0],
           gen(Mode.TEXT_TO_IMAGE, "a house", 9)[0], gen(Mode.TEXT_TO_IMAGE, "a house", 9, palette=pal)[0]],
          4).save(out_dir / "palette.png")
    print(f"sheets written to {out_dir}")


ZH_SHEET = ["一个红苹果", "一只猫", "两只狗在公园里玩球", "一辆黄色出租车", "夜空中的满月", "一碗拉面",
            "一只戴着红色围巾的小猫坐在窗台上", "計程車"]  # issue 25's examples, and one in Traditional


def write_zh_sheet(engine, out: Path) -> None:
    """Issue 25's Chinese examples, seed 3, as a user would send them."""
    job = lambda p: make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, p, 512, 512, 1, 3)  # noqa: E731
    sheet([engine.generate(job(p), no_progress)[0] for p in ZH_SHEET], 4).save(out)
    print(f"sheet written to {out}")


def read_everyday(path: Path = EVERYDAY) -> list[tuple[str, list[str]]]:
    """-> [(prompt, accepted labels)] from 'prompt | label; label' lines."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            prompt, _, labels = line.partition(" | ")
            rows.append((prompt.strip(), [x.strip() for x in labels.split(";")]))
    return rows


def planned(engine, prompt: str, seed: int, n: int = 1, size: int = 512) -> list[list]:
    """The sprites the engine would draw for a text-to-image job: per image, its placed sprites
    (phrase, seed, box, mirrored or not)."""
    job = make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, prompt, size, size, n, seed)
    return [engine.model.plan(req)[0] for req in engine.prepare_requests(job)]


def draw(engine, placed: list, mirror: bool = True) -> torch.Tensor:
    """All these sprites in batches of 64: -> (S, 4, 32, 32), mirrored where planned (`mirror`)."""
    model, out = engine.model, []
    for i in range(0, len(placed), 64):
        chunk = placed[i : i + 64]
        ctx, mask = model.text.encode_cached([p.phrase for p in chunk])
        lo = generate_sprites(model.sprite, ctx, mask, [p.seed for p in chunk], model.steps, model.cfg_scale)
        out += [x.flip(-1) if p.mirror and mirror else x for x, p in zip(lo, chunk, strict=True)]
    return torch.stack(out)


def everyday(engine, clf: Classifier, meta: list[dict], path: Path = EVERYDAY) -> dict[str, object]:
    """8. Share of everyday prompts whose subject is drawn, before / after the concept lookup."""
    rows = read_everyday(path)
    index = {m["label"]: i for i, m in enumerate(meta)}
    label_words = [m["label"].lower() for m in meta]
    plain = [k for k, (p, _) in enumerate(rows)  # prompts that contain no emoji label at all
             if not any(f" {w} " in f" {p.lower()} " for w in label_words)]
    model, saved = engine.model, (engine.model.concepts, engine.model.vary)
    result: dict[str, object] = {}
    for name, concepts, vary in (("before", None, False), ("after", saved[0], saved[1])):
        model.concepts, model.vary = concepts, vary
        per_prompt = [planned(engine, prompt, k)[0] for k, (prompt, _) in enumerate(rows)]
        with torch.no_grad():
            # unmirrored: the judge never saw a mirrored icon, and a mirror image is the same subject
            sprites = draw(engine, [p for ps in per_prompt for p in ps], mirror=False)
            top5 = clf(on_white(sprites)).topk(5, dim=1).indices
        hits, misses, at = [], [], 0
        for (prompt, accepted), placed in zip(rows, per_prompt, strict=True):
            want = {index[a] for a in accepted}
            hits.append(any(int(i) in want for i in top5[at : at + len(placed)].flatten()))
            at += len(placed)
            if not hits[-1] and name == "after":
                misses.append(f"{prompt} -> {', '.join(p.phrase for p in placed)}")
        plain_share = float(np.mean([hits[k] for k in plain])) if plain else float("nan")
        result[f"{path.stem}_subject_drawn_top5 {name} ({len(rows)} prompts / {len(plain)} without any label word)"] = (
            round(float(np.mean(hits)), 3), round(plain_share, 3))
        if misses:
            result[f"{path.stem} misses after"] = misses
    model.concepts, model.vary = saved
    return result


def diversity(engine, prompts: list[str], n: int = 4) -> dict[str, object]:
    """9. n images of one prompt: mean pairwise distance of their first sprite (0-255, on white,
    32 px) and of its box centre (fraction of the side), without / with variety."""
    model, saved = engine.model, engine.model.vary
    result = {}
    for name, vary in (("without", False), ("with", True)):
        model.vary = vary
        firsts = [ps[0] for k, prompt in enumerate(prompts) for ps in planned(engine, prompt, 1000 + 10 * k, n=n)]
        sprites = on_white(draw(engine, firsts)) * 255  # (P * n, 3, 32, 32)
        pixel, place = [], []
        for k in range(len(prompts)):
            group = firsts[k * n : (k + 1) * n]
            centres = [np.array([(p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2]) / 512 for p in group]
            for i in range(n):
                for j in range(i + 1, n):
                    pixel.append((sprites[k * n + i] - sprites[k * n + j]).abs().mean().item())
                    place.append(float(np.linalg.norm(centres[i] - centres[j])))
        result[name] = (round(float(np.mean(pixel)), 2), round(float(np.mean(place)), 3))
    model.vary = saved
    return {f"diversity_n{n}_sprite_pixel_distance_and_centre_distance without / with variety "
            f"({len(prompts)} prompts)": (result["without"], result["with"])}


def load_classifier(meta: list[dict], renders: torch.Tensor) -> Classifier:
    if CLASSIFIER.exists():
        clf = Classifier(len(meta))
        clf.load_state_dict(torch.load(CLASSIFIER))
        return clf.eval()
    t = time.time()
    clf = train_classifier(renders)
    torch.save(clf.state_dict(), CLASSIFIER)
    print(f"classifier trained in {time.time() - t:.0f} s")
    return clf


def open_vocabulary(engine, clf: Classifier, meta: list[dict]) -> dict[str, object]:
    """8. and 9.: everyday prompts and diversity."""
    results = everyday(engine, clf, meta)
    results |= diversity(engine, [p for p, _ in read_everyday()][::7])
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sheets", type=Path, default=None, help="only write contact sheets here")
    ap.add_argument("--sheet-zh", type=Path, default=None, help="only write the Chinese examples' sheet to this file")
    ap.add_argument("--sweep", default=None,
                    help="only prompt following, for each CFG:steps pair, e.g. 3:12,5:12,8:24")
    ap.add_argument("--everyday", action="store_true", help="only 8. (everyday prompts) and 9. (diversity)")
    ap.add_argument("--everyday-zh", action="store_true",
                    help="only 8. on the everyday Chinese prompts (bench/data/everyday_prompts_zh.txt)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.sheet_zh is not None:
        write_zh_sheet(load_builtin_engine(args.weights), args.sheet_zh)
        return
    if args.sheets is not None:
        write_sheets(load_builtin_engine(args.weights), args.sheets)
        return
    meta = json.loads((DATA / "meta.json").read_text())["icons"]
    lo = torch.from_numpy(np.load(DATA / "sprites32.npy")).permute(0, 3, 1, 2).float() / 127.5 - 1
    renders = on_white(lo)  # (N, 3, 32, 32)
    results: dict[str, object] = {}

    # 1. classifier on renders
    clf = load_classifier(meta, renders)
    if args.everyday_zh:
        for k, v in everyday(load_builtin_engine(args.weights), clf, meta, EVERYDAY_ZH).items():
            print(f"{k}: {v}")
        return
    if args.everyday:
        for k, v in open_vocabulary(load_builtin_engine(args.weights), clf, meta).items():
            print(f"{k}: {v}")
        return
    g = torch.Generator().manual_seed(123)
    results["classifier_heldout_aug_top1_top5"] = topk(clf, augment(renders, g), torch.arange(len(meta)))

    # 2. prompt following on generated 32 px sprites
    engine = load_builtin_engine(args.weights)
    model = engine.model
    rng = random.Random(0)
    ids = rng.sample(range(len(meta)), min(args.prompts, len(meta)))

    def prompt_following(fmt: str, cfg_scale: float, steps: int, by_group: bool = False):
        prompts = [fmt.format(article(meta[i]["label"])) for i in ids]
        gen = []
        for s in range(0, len(prompts), 50):
            ctx, mask = model.text.encode_cached(prompts[s : s + 50])
            gen.append(generate_sprites(model.sprite, ctx, mask, list(range(s, s + len(ctx))), steps, cfg_scale))
        top1, top5 = top5_hits(clf, on_white(torch.cat(gen)), torch.tensor(ids))
        overall = (top1.float().mean().item(), top5.float().mean().item())
        if not by_group:
            return overall
        groups: dict[str, list[bool]] = {}
        for i, hit in zip(ids, top5.tolist(), strict=True):
            groups.setdefault(meta[i]["group"], []).append(hit)
        return overall, {g: f"{sum(h) / len(h):.2f} of {len(h)}" for g, h in sorted(groups.items())}

    if args.sweep:
        for pair in args.sweep.split(","):
            cfg_scale, steps = float(pair.split(":")[0]), int(pair.split(":")[1])
            t = time.time()
            top1, top5 = prompt_following("a drawing of {}", cfg_scale, steps)
            print(f"cfg {cfg_scale:g} steps {steps}: held-out top-1 {top1:.3f} top-5 {top5:.3f} "
                  f"({time.time() - t:.0f} s for {len(ids)} sprites)", flush=True)
        print(f"weights_info: {model.info}")
        return
    overall, groups = prompt_following("a drawing of {}", model.cfg_scale, model.steps, by_group=True)
    results["prompt_following_top1_top5 heldout 'a drawing of <label>'"] = overall
    results["prompt_following_top5_by_emoji_group heldout"] = groups
    results["prompt_following_top1_top5 train-style '<a label>'"] = prompt_following("{}", model.cfg_scale, model.steps)

    # 3. bbox edit exactness
    psnrs = []
    for k in range(10):
        base = Image.fromarray(np.random.default_rng(k).integers(0, 255, (512, 512, 3), dtype=np.uint8))
        box = Box(50 + 10 * k, 60, 300, 310 + 10 * k)
        job = make_job("wan2.7-image", Mode.EDIT, "add a cat", 512, 512, 1, k, images=[base],
                            boxes=[[box]])
        out = np.asarray(engine.generate(job, no_progress)[0]).astype(np.float64)
        ref = np.asarray(base).astype(np.float64)
        keep = np.ones((512, 512), bool)
        keep[box.y1 : box.y2, box.x1 : box.x2] = False
        mse = ((out[keep] - ref[keep]) ** 2).mean()
        psnrs.append(math.inf if mse == 0 else 10 * math.log10(255**2 / mse))
    results["bbox_edit_psnr_outside_min_db"] = min(psnrs)

    # 4. sets share backgrounds
    def corner(im):
        return np.asarray(im)[:8, :8].reshape(-1, 3).mean(0)

    within, across = [], []
    singles = []
    for k in range(4):
        job = make_job("wan2.7-image", Mode.TEXT_TO_IMAGE_SET, "image 1: a cat. image 2: a dog. image 3: a tree",
                            256, 256, 3, 100 + k)
        cs = [corner(im) for im in engine.generate(job, no_progress)]
        within += [np.linalg.norm(cs[0] - c) for c in cs[1:]]
        singles.append(cs[0])
    across = [np.linalg.norm(a - b) for i, a in enumerate(singles) for b in singles[i + 1 :]]
    results["set_background_distance_within_vs_across"] = (float(np.mean(within)), float(np.mean(across)))

    # 5. palette steering
    req = [((230, 60, 60), 0.5), ((40, 90, 200), 0.3), ((250, 220, 80), 0.2)]
    pal = [PaletteColor(c, w) for c, w in req]
    def palette_distance(im: Image.Image) -> float:
        px = np.asarray(im.resize((64, 64))).reshape(-1, 3).astype(np.float32)
        d = np.stack([np.linalg.norm(px - np.array(c, np.float32), axis=1) for c, _ in req])  # (3, P)
        return float(d.min(0).mean())  # how far the image's pixels sit from the palette
    dist = {}
    for label, p in (("without", None), ("with", pal)):
        ds = [palette_distance(engine.generate(make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, pr, 256, 256, 1, s, palette=p), no_progress)[0])
              for s, pr in enumerate(["a cat", "a house", "a tree", "a car"])]
        dist[label] = float(np.mean(ds))
    results["palette_mean_pixel_distance_without_with"] = (dist["without"], dist["with"])

    # 6. sharpness at 1024 px: upsampler vs Lanczos from the same 32 px sprites
    ctx, mask = model.text.encode_cached(["a red apple", "a cat", "a house", "a rocket"])
    lo_gen = generate_sprites(model.sprite, ctx, mask, [0, 1, 2, 3], model.steps, model.cfg_scale)
    ours, lanczos = [], []
    for i in range(4):
        hi = on_white(upsample(model.up, lo_gen[i : i + 1]))[0].permute(1, 2, 0).numpy() * 255
        ours.append(edge_energy(np.asarray(Image.fromarray(hi.astype(np.uint8)).resize((1024, 1024), Image.BICUBIC))))
        base = on_white(lo_gen[i : i + 1])[0].permute(1, 2, 0).numpy() * 255
        lanczos.append(edge_energy(np.asarray(Image.fromarray(base.astype(np.uint8)).resize((1024, 1024), Image.LANCZOS))))
    results["edge_energy_1024_upsampler_vs_lanczos"] = (float(np.mean(ours)), float(np.mean(lanczos)))

    # 7. colour words on objects drawn in other colours: without / with the recolouring step
    import wanimage.model.generator as generator
    from wanimage.model.captions import dominant_colour

    colour_prompts = ["a blue banana", "a purple car", "a pink frog", "a green heart", "a black apple",
                      "a yellow cat", "a red tree", "an orange house", "a blue pizza", "a brown rocket",
                      "a white dog face", "a green sun"]
    accuracy, default_tint = {}, generator.COLOUR_WORD_TINT
    for label, strength in (("without", 0.0), ("with", default_tint)):
        generator.COLOUR_WORD_TINT = strength
        hits = []
        for prompt in colour_prompts:
            word = next(w for w in prompt.split() if w in generator.COLOURS)
            for seed in range(3):
                job = make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, prompt, 256, 256, 1, seed)
                a = np.asarray(engine.generate(job, no_progress)[0]).astype(int)
                border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
                fg = np.abs(a - np.median(border, axis=0)).sum(-1) > 90
                hits.append(dominant_colour(np.dstack([a, fg * 255]).astype(np.uint8)) == word)
        accuracy[label] = float(np.mean(hits))
    generator.COLOUR_WORD_TINT = default_tint
    results["colour_word_accuracy_without_with (12 prompts x 3 seeds)"] = (accuracy["without"], accuracy["with"])

    # 8. and 9. everyday prompts, diversity
    results |= open_vocabulary(engine, clf, meta)

    results["weights_info"] = model.info
    for k, v in results.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
