"""Sprite generation: text embeddings -> 32 px RGBA via the flow sampler -> 256 px via the
upsampler. Scenes, edits and sets build on these two functions (see scenes.py, compose.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .net import SpriteUNet, Upsampler
from .sampling import get_sigmas_flow, sample_euler

DEFAULT_STEPS = 12
DEFAULT_CFG = 5.0  # measured at step 1119 on 150 held-out prompts: top-5 9.3 % vs 8.0 % at 3.0


def initial_noise(seeds: list[int], shape=(4, 32, 32)) -> torch.Tensor:
    """One generator per seed: image i depends only on seeds[i], not on the batch around it."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])


@torch.no_grad()
def generate_sprites(sprite: SpriteUNet, ctx: torch.Tensor, mask: torch.Tensor, seeds: list[int],
                     steps: int = DEFAULT_STEPS, cfg_scale: float = DEFAULT_CFG,
                     callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """ctx (B, T, 384), mask (B, T) -> sprites (B, 4, 32, 32) premultiplied RGBA in [-1, 1]."""
    x = initial_noise(seeds, (sprite.cfg.in_ch, sprite.cfg.res, sprite.cfg.res))

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return sprite.denoise_cfg(x, sigma, ctx, mask, cfg_scale)

    x = sample_euler(denoise, x, get_sigmas_flow(steps, shift=1.0), callback=callback)
    return clean_rgba(x)


def clean_rgba(x: torch.Tensor) -> torch.Tensor:
    """Clamp to valid premultiplied RGBA: alpha in [0, 1], colour <= alpha (in [-1, 1] space)."""
    x = x.clamp(-1, 1)
    a = x[:, 3:]
    return torch.cat([torch.minimum(x[:, :3], a), a], dim=1)


@torch.no_grad()
def upsample(up: Upsampler, x: torch.Tensor, sharpen: float = 1.5) -> torch.Tensor:
    """(B, 4, 32, 32) -> (B, 4, 256, 256); `sharpen` steepens the alpha edge around 0.5 so
    enlargements far beyond 256 px keep a crisp silhouette."""
    y = up(x)  # (B, 4, 256, 256)
    a = ((y[:, 3:] + 1) / 2).clamp(0, 1)  # (B, 1, H, W) in [0, 1]
    a_sharp = ((a - 0.5) * sharpen + 0.5).clamp(0, 1)
    rgb = ((y[:, :3] + 1) / 2).clamp(0, 1)  # premultiplied
    rgb = rgb * torch.where(a > 1e-3, a_sharp / a.clamp(min=1e-3), torch.zeros_like(a))
    return torch.cat([rgb, a_sharp], 1) * 2 - 1


def to_straight_rgba(x: torch.Tensor) -> list[Image.Image]:
    """(B, 4, H, W) premultiplied in [-1, 1] -> straight-alpha RGBA PIL images."""
    x = ((x + 1) / 2).clamp(0, 1)
    a = x[:, 3:]
    rgb = torch.where(a > 1e-3, x[:, :3] / a.clamp(min=1e-3), torch.zeros_like(x[:, :3]))
    arr = (torch.cat([rgb.clamp(0, 1), a], 1).permute(0, 2, 3, 1).numpy() * 255).round()
    return [Image.fromarray(a.astype(np.uint8), "RGBA") for a in arr]


def sprite_grid(sprite: SpriteUNet, up: Upsampler, prompts_emb: tuple, out: Path,
                seed: int = 0, cell: int = 128) -> Path:
    """A grid: one row of 32 px samples, one of upsampled, per prompt, on white."""
    ctx, mask = prompts_emb
    lo = generate_sprites(sprite, ctx, mask, [seed + i for i in range(ctx.shape[0])])
    hi = upsample(up, lo)
    cols = 8
    n = ctx.shape[0]
    rows = (n + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, 2 * rows * cell), "white")
    for i, (a, b) in enumerate(zip(to_straight_rgba(lo), to_straight_rgba(hi), strict=True)):
        x, y = (i % cols) * cell, (i // cols) * 2 * cell
        a = a.resize((cell, cell), Image.NEAREST)
        b = b.resize((cell, cell), Image.LANCZOS)
        sheet.paste(a, (x, y), a)
        sheet.paste(b, (x, y + cell), b)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
