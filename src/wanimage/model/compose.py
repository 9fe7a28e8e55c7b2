"""Canvas work on network outputs: simple backgrounds, sprite placement, palette tint, and the
edit helpers (copy input pixels, fill a removed region). Arrays are float32 RGB in [0, 1],
(H, W, 3); sprites are torch (4, h, w) premultiplied RGBA in [-1, 1]."""

from __future__ import annotations

import colorsys
import random

import numpy as np
import torch
import torch.nn.functional as F

GROUND_SHARE = 0.3  # the ground band's share of the height ("in the snow", "on the beach")


def background(h: int, w: int, colours: list[tuple[int, int, int]], gradient: bool,
               rng: random.Random, ground: tuple[int, int, int] | None = None) -> np.ndarray:
    """Solid or vertical-gradient background; soft seeded pastels when no colour was asked; with
    `ground`, a band of that colour along the bottom under a soft horizon."""
    sky = _sky(h, w, colours, gradient, rng)
    if ground is None:
        return sky
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    weight = np.clip((y - (1 - GROUND_SHARE)) / 0.03 + 0.5, 0, 1)  # a 3 % soft horizon
    return (1 - weight) * sky + weight * (np.array(ground, np.float32) / 255)


def _sky(h: int, w: int, colours: list[tuple[int, int, int]], gradient: bool,
         rng: random.Random) -> np.ndarray:
    if not colours:
        hue = rng.random()
        light = [colorsys.hls_to_rgb((hue + d) % 1.0, 0.88, 0.55) for d in (0.0, rng.uniform(0.05, 0.15))]
        top, bottom = (np.array(c, np.float32) for c in light)
        gradient = True
    else:
        top = np.array(colours[0], np.float32) / 255
        bottom = np.array(colours[-1], np.float32) / 255
        if len(colours) == 1 and gradient:  # one colour, gradient: lighten towards the bottom
            bottom = top * 0.7 + 0.3
    if not gradient:
        return np.broadcast_to(top, (h, w, 3)).copy()
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    return np.broadcast_to((1 - t) * top + t * bottom, (h, w, 3)).copy()


def fit_square(box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """Largest centred square inside a pixel box -> (x, y, side)."""
    x1, y1, x2, y2 = box
    side = max(1, min(x2 - x1, y2 - y1))
    return x1 + (x2 - x1 - side) // 2, y1 + (y2 - y1 - side) // 2, side


def resize_sprite(sprite: torch.Tensor, side: int) -> np.ndarray:
    """(4, h, w) premultiplied [-1, 1] -> (side, side, 4) premultiplied [0, 1] numpy."""
    x = ((sprite[None] + 1) / 2).clamp(0, 1)  # (1, 4, h, w)
    x = F.interpolate(x, size=(side, side), mode="bicubic", align_corners=False,
                      antialias=side < x.shape[-1]).clamp(0, 1)
    a = x[:, 3:]
    x = torch.cat([torch.minimum(x[:, :3], a), a], 1)  # keep premultiplied colour <= alpha
    return x[0].permute(1, 2, 0).numpy()


def paste(canvas: np.ndarray, sprite: torch.Tensor, box: tuple[int, int, int, int],
          clip: tuple[int, int, int, int] | None = None) -> None:
    """Alpha-composite a sprite into the centred square of `box`, in place. With `clip`, pixels
    outside that pixel box are never touched (bbox edits keep the rest of the input exact)."""
    x, y, side = fit_square(box)
    rgba = resize_sprite(sprite, side)  # (side, side, 4)
    h, w = canvas.shape[:2]
    cx1, cy1, cx2, cy2 = clip if clip is not None else (0, 0, w, h)
    x1, y1 = max(x, cx1, 0), max(y, cy1, 0)
    x2, y2 = min(x + side, cx2, w), min(y + side, cy2, h)
    if x2 <= x1 or y2 <= y1:
        return
    s = rgba[y1 - y : y2 - y, x1 - x : x2 - x]  # (h', w', 4)
    region = canvas[y1:y2, x1:x2]
    canvas[y1:y2, x1:x2] = s[..., :3] + (1 - s[..., 3:]) * region


def tint(sprite: torch.Tensor, rgb: tuple[int, int, int], strength: float) -> torch.Tensor:
    """Pull a sprite's colours toward a palette colour, keeping its shading (luminance)."""
    x = (sprite + 1) / 2  # (4, h, w) premultiplied in [0, 1]
    a = x[3:].clamp(min=1e-3)
    colour = x[:3] / a  # straight colour
    lum = (0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2])[None]  # (1, h, w)
    target = torch.tensor(rgb, dtype=x.dtype)[:, None, None] / 255
    t_lum = 0.299 * target[0] + 0.587 * target[1] + 0.114 * target[2]
    shaded = (target * (lum / t_lum.clamp(min=0.05))).clamp(0, 1)
    colour = (1 - strength) * colour + strength * shaded
    return torch.cat([colour * x[3:], x[3:]]) * 2 - 1


def recolour(sprite: torch.Tensor, rgb: tuple[int, int, int], strength: float) -> torch.Tensor:
    """Give a sprite a named colour: its mean brightness becomes the colour's and its relative
    shading stays (unlike `tint`, which keeps absolute brightness: no white or brown from it)."""
    x = (sprite + 1) / 2  # (4, h, w) premultiplied in [0, 1]
    alpha = x[3:]
    colour = x[:3] / alpha.clamp(min=1e-3)  # straight colour
    lum = (0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2])[None]  # (1, h, w)
    mean = (lum * alpha).sum() / alpha.sum().clamp(min=1e-6)
    target = torch.tensor(rgb, dtype=x.dtype)[:, None, None] / 255
    shaded = (target * (lum / mean.clamp(min=0.05))).clamp(0, 1)
    colour = (1 - strength) * colour + strength * shaded
    return torch.cat([colour * alpha, alpha]) * 2 - 1


def border_colour(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Median colour of the pixels just around a box: the local background."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box
    ring = []
    if y1 > 0:
        ring.append(img[y1 - 1, max(x1, 0) : min(x2, w)])
    if y2 < h:
        ring.append(img[y2, max(x1, 0) : min(x2, w)])
    if x1 > 0:
        ring.append(img[max(y1, 0) : min(y2, h), x1 - 1])
    if x2 < w:
        ring.append(img[max(y1, 0) : min(y2, h), x2])
    ring = [r for r in ring if len(r)]
    if not ring:
        return img.reshape(-1, 3).mean(0)
    return np.median(np.concatenate(ring), axis=0)


def fill_region(canvas: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """'remove': fill a box with a blend of its four edges' colours (smooth, no artwork)."""
    h, w = canvas.shape[:2]
    x1, y1, x2, y2 = max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)
    if x2 <= x1 or y2 <= y1:
        return
    top = canvas[y1 - 1, x1:x2] if y1 > 0 else None
    bottom = canvas[y2, x1:x2] if y2 < h else None
    left = canvas[y1:y2, x1 - 1] if x1 > 0 else None
    right = canvas[y1:y2, x2] if x2 < w else None
    fallback = border_colour(canvas, (x1, y1, x2, y2))
    ty = np.linspace(0, 1, y2 - y1, dtype=np.float32)[:, None, None]  # (h', 1, 1)
    tx = np.linspace(0, 1, x2 - x1, dtype=np.float32)[None, :, None]  # (1, w', 1)
    top = top[None] if top is not None else fallback[None, None]
    bottom = bottom[None] if bottom is not None else fallback[None, None]
    left = left[:, None] if left is not None else fallback[None, None]
    right = right[:, None] if right is not None else fallback[None, None]
    vertical = (1 - ty) * top + ty * bottom
    horizontal = (1 - tx) * left + tx * right
    canvas[y1:y2, x1:x2] = 0.5 * (vertical + horizontal)


def recolour_background(canvas: np.ndarray, rgb: tuple[int, int, int], tol: float = 0.12) -> None:
    """Replace pixels close to the image's border colour by a new colour (soft edge)."""
    h, w = canvas.shape[:2]
    ref = border_colour(canvas, (1, 1, w - 1, h - 1))
    dist = np.linalg.norm(canvas - ref, axis=-1, keepdims=True)  # (H, W, 1)
    weight = np.clip((2 * tol - dist) / tol, 0, 1)
    target = np.array(rgb, np.float32) / 255
    canvas[:] = weight * (canvas - ref + target).clip(0, 1) + (1 - weight) * canvas
