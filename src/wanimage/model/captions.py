"""Caption variety for sprites: paraphrase templates, emojibase tags, colour words.

Many captions per icon is the cheapest sample efficiency we can buy: the generator sees the same
picture under different wordings and learns which words matter."""

from __future__ import annotations

import colorsys
import random

import numpy as np

# Colour words and their anchor RGB (also used to map a palette colour to a word and back).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (250, 210, 40),
    "green": (60, 170, 60),
    "blue": (40, 110, 220),
    "purple": (140, 70, 200),
    "pink": (240, 120, 180),
    "brown": (140, 90, 50),
    "black": (30, 30, 30),
    "white": (240, 240, 240),
    "gray": (128, 128, 128),
}

# Objects that stay out of training and out of prompts.
BLOCKLIST = (
    "middle finger", "pistol", "bomb", "knife", "dagger", "crossed swords", "bow and arrow",
    "axe", "cigarette", "coffin", "funeral urn", "skull and crossbones", "gun", "rifle",
    "syringe", "razor", "carpentry saw", "military",
)

TEMPLATES = (
    "{label}",
    "{a_label}",
    "{a_colour_label}",
    "an emoji of {a_label}",
    "{a_colour_label} emoji",
    "a picture of {a_label}",
    "{label} icon",
    "a cute {label}",
    "{label}, {tag1}",
    "{tag1} {label}",
    "a flat illustration of {a_label}",
    "{colour} {label}",
    "{label} ({tag1}, {tag2})",
    "one {label}",
    "{a_label} in flat style",
    "{label} sticker",
)


def is_blocked(text: str) -> bool:
    t = text.lower()
    return any(b in t for b in BLOCKLIST)


def article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def nearest_colour_word(rgb: tuple[float, float, float]) -> str:
    """Name an sRGB colour (0..255) with one of COLOURS, by hue for saturated colours."""
    r, g, b = (c / 255.0 for c in rgb)
    h, light, s = colorsys.rgb_to_hls(r, g, b)
    if light < 0.18:
        return "black"
    if light > 0.88 and s < 0.5:
        return "white"
    if s < 0.18:
        return "gray"
    deg = h * 360
    if (deg < 20 or deg >= 340):
        return "pink" if light > 0.7 else ("brown" if light < 0.35 else "red")
    if deg < 45:
        return "brown" if light < 0.4 else "orange"
    if deg < 70:
        return "yellow"
    if deg < 165:
        return "green"
    if deg < 250:
        return "blue"
    if deg < 290:
        return "purple"
    return "pink"


def dominant_colour(rgba: np.ndarray) -> str:
    """rgba (H, W, 4) uint8 -> the colour word covering most opaque, saturated area."""
    px = rgba.reshape(-1, 4)
    px = px[px[:, 3] > 200][:, :3]
    if len(px) == 0:
        return "gray"
    words = [nearest_colour_word(tuple(p)) for p in px[:: max(1, len(px) // 400)]]
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    return max(counts, key=counts.get)


def captions_for(label: str, tags: list[str], colour: str, n: int, seed: int) -> list[str]:
    """n distinct-ish captions for one icon, deterministic in seed."""
    rng = random.Random(seed)
    named = [w for w in COLOURS if w in label.lower().split()]
    colour = named[0] if named else colour  # "black large square" is black, whatever pixels say
    tags = [t for t in tags if t.lower() not in label.lower()] or [label]
    colour_label = label if colour in label else f"{colour} {label}"
    out: list[str] = [label, article(colour_label)]  # the two forms prompts use most
    templates = list(TEMPLATES[2:])
    rng.shuffle(templates)
    for tpl in templates:
        if len(out) >= n:
            break
        tag1, tag2 = rng.choice(tags), rng.choice(tags)
        out.append(
            tpl.format(
                label=label,
                a_label=article(label),
                a_colour_label=article(colour_label),
                colour=colour,
                tag1=tag1,
                tag2=tag2,
            )
        )
    return out[:n]
