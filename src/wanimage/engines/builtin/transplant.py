"""Edits that move objects with input pixels only: an object of one input image into a box of
another ("put the cat of image 1 into the box"), or an object to another place of the same
image ("move the cat to the right", or from the first box to the second)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from wanimage.model.compose import fill_region

Box = tuple[int, int, int, int]


def foreground_mask(img: np.ndarray, tol: float = 40.0) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) float in [0, 1]: pixels far from the border's median colour."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.float32)
    ref = np.median(border, axis=0)
    dist = np.linalg.norm(img.astype(np.float32) - ref, axis=-1)  # (H, W)
    return np.clip((dist - tol / 2) / (tol / 2), 0, 1)


def foreground_box(img: np.ndarray) -> Box | None:
    """The bounding box of what differs from the border colour; None for a plain image."""
    ys, xs = np.nonzero(foreground_mask(img) > 0.5)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def transplant(src: np.ndarray, dst: np.ndarray, box: Box) -> None:
    """Paste src's foreground, cropped and fitted, into dst[box] in place (never outside box)."""
    mask = foreground_mask(src)
    ys, xs = np.nonzero(mask > 0.5)
    if len(xs) == 0:
        ys, xs = np.array([0, src.shape[0] - 1]), np.array([0, src.shape[1] - 1])
    crop = src[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    cmask = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = dst.shape[:2]
    x1, y1, x2, y2 = max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)
    if x2 <= x1 or y2 <= y1:
        return
    scale = min((x2 - x1) / crop.shape[1], (y2 - y1) / crop.shape[0])
    cw, ch = max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))
    rgb = np.asarray(Image.fromarray(crop).resize((cw, ch), Image.LANCZOS), np.float32)
    m = np.asarray(Image.fromarray((cmask * 255).astype(np.uint8)).resize((cw, ch), Image.BILINEAR),
                   np.float32)[..., None] / 255
    ox, oy = x1 + (x2 - x1 - cw) // 2, y1 + (y2 - y1 - ch) // 2
    region = dst[oy : oy + ch, ox : ox + cw].astype(np.float32)
    dst[oy : oy + ch, ox : ox + cw] = np.round(m * rgb + (1 - m) * region).astype(np.uint8)


def move(img: np.ndarray, src: Box, dst: Box) -> np.ndarray:
    """A copy of img with the object in `src` lifted out (the hole filled from its surroundings)
    and put, fitted, into `dst`. Only pixels inside the two boxes change."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = max(src[0], 0), max(src[1], 0), min(src[2], w), min(src[3], h)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return img.copy()
    # A one-pixel margin gives the object's crop a border of background to tell it apart by.
    mx1, my1, mx2, my2 = max(x1 - 1, 0), max(y1 - 1, 0), min(x2 + 1, w), min(y2 + 1, h)
    lifted = img[my1:my2, mx1:mx2].copy()
    canvas = img.astype(np.float32) / 255
    fill_region(canvas, (x1, y1, x2, y2))
    out = np.clip(np.round(canvas * 255), 0, 255).astype(np.uint8)
    transplant(lifted, out, dst)
    return out


def place_like(box: Box, region: tuple[float, float, float, float], w: int, h: int) -> Box:
    """`box`'s size, centred in a region given as fractions of a w x h canvas (kept inside it)."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (region[0] + region[2]) / 2 * w, (region[1] + region[3]) / 2 * h
    x1 = int(min(max(cx - bw / 2, 0), w - bw))
    y1 = int(min(max(cy - bh / 2, 0), h - bh))
    return x1, y1, x1 + bw, y1 + bh
