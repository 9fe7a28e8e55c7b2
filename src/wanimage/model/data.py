"""Dataset build: Fluent Emoji Flat SVGs (npm, MIT) + emojibase-data captions (npm, MIT).

`build()` is deterministic: the same two package versions give the same arrays. Outputs, in
`out_dir` (default .cache/builtin-data/):
  sprites256.npy  (N, 256, 256, 4) uint8  premultiplied RGBA renders (upsampler targets)
  sprites32.npy   (N, 32, 32, 4)   uint8  area-downsampled from 256 (generator data)
  captions.npz    emb (M, T, 384) f16, mask (M, T) bool, icon (M,) i32: MiniLM of every caption
  meta.json       per icon: name, label, group, tags, colour word, captions
The raw artwork stays in the npm cache; nothing here is committed."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .captions import captions_for, dominant_colour, is_blocked

ICONS_PKG = "@iconify-json/fluent-emoji-flat"
ICONS_VERSION = "1.2.6"
EMOJIBASE_PKG = "emojibase-data"
EMOJIBASE_VERSION = "17.0.0"
EMOJILIB_PKG = "emojilib"  # keywords people type for each emoji ("latte", "bullock"): the concept lookup's synonyms
EMOJILIB_VERSION = "4.0.3"
HI_RES = 256
LO_RES = 32
CAPTIONS_PER_ICON = 16
SKIP_GROUPS = {2, 9}  # components (skin swatches) and flags: hard, low value for this model
KEEP_SUBGROUPS = {97}  # ... but keep generic flags (chequered flag, white flag)


@dataclass
class Icon:
    name: str
    label: str
    group: str
    subgroup: str
    tags: list[str]


def npm_dir(cache: Path, pkg: str, version: str) -> Path:
    """Where `make data` unpacked `npm pack PKG@VERSION`."""
    return cache / f"{pkg.lstrip('@').replace('/', '-')}-{version}" / "package"


def load_icons(npm_cache: Path) -> tuple[list[Icon], dict[str, str]]:
    """Join emojibase entries to Fluent SVG bodies by codepoint; apply the blocklist."""
    icons_dir = npm_dir(npm_cache, ICONS_PKG, ICONS_VERSION)
    base_dir = npm_dir(npm_cache, EMOJIBASE_PKG, EMOJIBASE_VERSION)
    svg = json.loads((icons_dir / "icons.json").read_text())
    chars: dict[str, str] = json.loads((icons_dir / "chars.json").read_text())
    groups = json.loads((base_dir / "meta" / "groups.json").read_text())
    entries = json.loads((base_dir / "en" / "data.json").read_text())
    bodies = {k: v["body"] for k, v in svg["icons"].items()}

    icons: list[Icon] = []
    seen: set[str] = set()
    for e in entries:  # base forms only: skin-tone variants would be 40 % of the data
        g, sg = e.get("group"), e.get("subgroup")
        if g is None or (g in SKIP_GROUPS and sg not in KEEP_SUBGROUPS):
            continue
        label, tags = e["label"], e.get("tags", [])
        if is_blocked(label) or any(is_blocked(t) for t in tags):
            continue
        hexcode = e["hexcode"].lower()
        name = chars.get(hexcode) or chars.get(hexcode.replace("-fe0f", ""))
        if name is None or name not in bodies or name in seen:
            continue
        seen.add(name)
        icons.append(Icon(name, label, groups["groups"][str(g)], groups["subgroups"][str(sg)], tags))
    icons.sort(key=lambda i: i.name)  # deterministic order independent of emojibase order
    return icons, bodies


def emojilib_keywords(npm_cache: Path) -> dict[str, list[str]]:
    """emojibase label -> emojilib's keywords for that emoji, joined by the emoji character.
    emojilib's first keyword is its own snake_case name of the emoji, left out as a repeat."""
    base = json.loads((npm_dir(npm_cache, EMOJIBASE_PKG, EMOJIBASE_VERSION) / "en" / "data.json").read_text())
    lib = json.loads((npm_dir(npm_cache, EMOJILIB_PKG, EMOJILIB_VERSION) / "dist" / "emoji-en-US.json").read_text())
    out: dict[str, list[str]] = {}
    for e in base:
        words = lib.get(e["emoji"]) or lib.get(e["emoji"].replace("\ufe0f", ""))
        if words:
            out[e["label"]] = [w.replace("_", " ") for w in words[1:]]
    return out


def render(body: str, size: int) -> np.ndarray:
    """One iconify SVG body (32x32 viewBox) -> (size, size, 4) uint8 premultiplied RGBA."""
    import resvg_py

    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 32 32">{body}</svg>'
    )
    png = resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size)
    rgba = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"), dtype=np.float32)
    rgba[..., :3] *= rgba[..., 3:] / 255.0  # premultiply: compositing and resizing stay exact
    return np.round(rgba).astype(np.uint8)


def downsample(rgba: np.ndarray, factor: int) -> np.ndarray:
    """(H, W, 4) premultiplied uint8 -> area average by `factor` (exact for premultiplied)."""
    h, w, c = rgba.shape
    x = rgba.astype(np.float32).reshape(h // factor, factor, w // factor, factor, c)
    return np.round(x.mean(axis=(1, 3))).astype(np.uint8)


def build(npm_cache: Path, out_dir: Path, encode: bool = True, limit: int | None = None) -> dict:
    """Rasterise, caption and (optionally) encode captions. Returns a summary dict."""
    out_dir.mkdir(parents=True, exist_ok=True)
    icons, bodies = load_icons(npm_cache)
    if limit:
        icons = icons[:limit]
    hi = np.zeros((len(icons), HI_RES, HI_RES, 4), np.uint8)
    for i, icon in enumerate(icons):
        hi[i] = render(bodies[icon.name], HI_RES)
    lo = np.stack([downsample(x, HI_RES // LO_RES) for x in hi])  # (N, 32, 32, 4)

    meta = []
    for i, icon in enumerate(icons):
        colour = dominant_colour(hi[i, ::4, ::4])
        caps = captions_for(icon.label, icon.tags, colour, CAPTIONS_PER_ICON, seed=i)
        meta.append(dict(name=icon.name, label=icon.label, group=icon.group,
                         subgroup=icon.subgroup, tags=icon.tags, colour=colour, captions=caps))
    np.save(out_dir / "sprites256.npy", hi)
    np.save(out_dir / "sprites32.npy", lo)
    info = dict(icons_pkg=f"{ICONS_PKG}@{ICONS_VERSION}",
                emojibase_pkg=f"{EMOJIBASE_PKG}@{EMOJIBASE_VERSION}", icons=meta)
    (out_dir / "meta.json").write_text(json.dumps(info, indent=1))
    if encode:
        encode_captions(meta, out_dir / "captions.npz")
    return dict(icons=len(icons), captions=sum(len(m["captions"]) for m in meta), out=str(out_dir))


def encode_captions(meta: list[dict], path: Path, batch: int = 256) -> None:
    """MiniLM token embeddings of every caption, cached so training never runs the encoder."""
    from .text import TextEncoder

    enc = TextEncoder()
    texts = [c for m in meta for c in m["captions"]]
    owner = np.array([i for i, m in enumerate(meta) for _ in m["captions"]], np.int32)
    embs, masks = [], []
    for s in range(0, len(texts), batch):
        e, k = enc.encode(texts[s : s + batch])
        embs.append(e.half().numpy())  # (b, T, 384)
        masks.append(k.numpy())
    np.savez(path, emb=np.concatenate(embs), mask=np.concatenate(masks), icon=owner)


def contact_sheet(data_dir: Path, out: Path, n: int = 64, seed: int = 0) -> Path:
    """A grid of random training sprites on white, for eyeballing the build."""
    lo = np.load(data_dir / "sprites256.npy", mmap_mode="r")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(lo), size=min(n, len(lo)), replace=False))
    cols = 8
    rows = (len(idx) + cols - 1) // cols
    cell = 96
    sheet = Image.new("RGB", (cols * cell, rows * cell), "white")
    for k, i in enumerate(idx):
        sprite = premultiplied_to_image(np.asarray(lo[i])).resize((cell, cell), Image.LANCZOS)
        sheet.paste(sprite, ((k % cols) * cell, (k // cols) * cell), sprite)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def premultiplied_to_image(rgba: np.ndarray) -> Image.Image:
    """(H, W, 4) premultiplied uint8 -> straight-alpha RGBA PIL image."""
    x = rgba.astype(np.float32)
    a = x[..., 3:] / 255.0
    x[..., :3] = np.where(a > 0, x[..., :3] / np.maximum(a, 1e-6), 0)
    return Image.fromarray(np.clip(np.round(x), 0, 255).astype(np.uint8), "RGBA")
