"""Move the main object of one input image into a box of another, using input pixels only."""

from __future__ import annotations

import numpy as np
from PIL import Image


def foreground_mask(img: np.ndarray, tol: float = 40.0) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) float in [0, 1]: pixels far from the border's median colour."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.float32)
    ref = np.median(border, axis=0)
    dist = np.linalg.norm(img.astype(np.float32) - ref, axis=-1)  # (H, W)
    return np.clip((dist - tol / 2) / (tol / 2), 0, 1)


def transplant(src: np.ndarray, dst: np.ndarray, box: tuple[int, int, int, int]) -> None:
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
