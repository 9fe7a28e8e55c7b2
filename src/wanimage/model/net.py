"""The networks: SpriteUNet (text -> 32 px premultiplied RGBA, flow matching) and Upsampler
(32 px RGBA -> 256 px RGBA, a learned x8 super-resolution trained on renders of the same SVGs).

Why this shape (2 CPU cores, ~2 h of training per session): pixel space at 32 px keeps a
training step cheap; per-token cross-attention at 16 and 8 px lets words steer the picture; the
upsampler, not the generator, is responsible for crisp edges at 1K."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SpriteConfig:
    in_ch: int = 4  # premultiplied RGBA in [-1, 1]
    res: int = 32
    widths: tuple[int, int, int] = (32, 96, 160)  # channels at 32, 16, 8 px (32 px kept thin: speed)
    ctx_dim: int = 384  # MiniLM token width
    d_ctx: int = 256  # projected text width inside the net
    heads: int = 4
    emb_dim: int = 256  # time (+ pooled text) embedding


@dataclass
class UpsamplerConfig:
    in_ch: int = 4
    feat: int = 64
    blocks: int = 4
    scale_widths: tuple[int, int, int] = (32, 16, 8)  # channels after each x2 pixel shuffle


SPRITE_PRESETS: dict[str, SpriteConfig] = {
    "T": SpriteConfig(widths=(16, 32, 32), d_ctx=32, heads=2, emb_dim=32),  # unit tests
    "S": SpriteConfig(),
}
UPSAMPLER_PRESETS: dict[str, UpsamplerConfig] = {
    "T": UpsamplerConfig(feat=8, blocks=1, scale_widths=(8, 8, 4)),
    "S": UpsamplerConfig(),
}


def group_norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(16, ch // 4) if ch >= 8 else 1, ch)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t (B,) in [0, 1] -> (B, dim) sinusoidal features."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)  # (half,)
    args = 1000.0 * t[:, None].float() * freqs[None]  # (B, half)
    return torch.cat([args.cos(), args.sin()], dim=-1)  # (B, dim)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2, self.conv2 = group_norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, cout, H, W)
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)  # (B, cout, 1, 1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class Attention(nn.Module):
    """Self-attention over pixels plus cross-attention from pixels to text tokens."""

    def __init__(self, ch: int, d_ctx: int, heads: int, self_attn: bool):
        super().__init__()
        self.heads = heads
        self.self_attn = self_attn
        if self_attn:
            self.norm_s, self.qkv = group_norm(ch), nn.Linear(ch, 3 * ch)
            self.out_s = nn.Linear(ch, ch)
        self.norm_x, self.q = group_norm(ch), nn.Linear(ch, ch)
        self.kv = nn.Linear(d_ctx, 2 * ch)
        self.out_x = nn.Linear(ch, ch)

    def split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, c = t.shape
        return t.view(b, n, self.heads, c // self.heads).transpose(1, 2)  # (B, h, N, c/h)

    def merge(self, t: torch.Tensor) -> torch.Tensor:
        b, h, n, d = t.shape
        return t.transpose(1, 2).reshape(b, n, h * d)  # (B, N, C)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        if self.self_attn:
            s = self.norm_s(x).flatten(2).transpose(1, 2)  # (B, HW, C)
            q, k, v = (self.split(t) for t in self.qkv(s).chunk(3, dim=-1))
            a = self.merge(F.scaled_dot_product_attention(q, k, v))  # (B, HW, C)
            x = x + self.out_s(a).transpose(1, 2).view(b, c, hh, ww)
        s = self.norm_x(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        q = self.split(self.q(s))  # (B, h, HW, c/h)
        k, v = (self.split(t) for t in self.kv(ctx).chunk(2, dim=-1))  # (B, h, T, c/h)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return x + self.out_x(self.merge(a)).transpose(1, 2).view(b, c, hh, ww)


class SpriteUNet(nn.Module):
    """Velocity predictor v(x_t, t, text) for rectified flow x_t = (1 - t) x0 + t noise."""

    def __init__(self, cfg: SpriteConfig):
        super().__init__()
        self.cfg = cfg
        w0, w1, w2 = cfg.widths
        e = cfg.emb_dim
        self.time = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.ctx_proj = nn.Sequential(nn.Linear(cfg.ctx_dim, cfg.d_ctx), nn.LayerNorm(cfg.d_ctx))
        self.pool_proj = nn.Linear(cfg.ctx_dim, e)
        self.null_ctx = nn.Parameter(torch.zeros(1, 1, cfg.ctx_dim))  # "no text" for CFG

        self.conv_in = nn.Conv2d(cfg.in_ch, w0, 3, padding=1)
        self.enc0 = ResBlock(w0, w0, e)
        self.down0 = nn.Conv2d(w0, w0, 3, stride=2, padding=1)
        self.enc1 = ResBlock(w0, w1, e)
        self.att1 = Attention(w1, cfg.d_ctx, cfg.heads, self_attn=False)
        self.down1 = nn.Conv2d(w1, w1, 3, stride=2, padding=1)
        self.mid1 = ResBlock(w1, w2, e)
        self.mid_att = Attention(w2, cfg.d_ctx, cfg.heads, self_attn=True)
        self.mid2 = ResBlock(w2, w2, e)
        self.dec1 = ResBlock(w2 + w1, w1, e)
        self.att_d1 = Attention(w1, cfg.d_ctx, cfg.heads, self_attn=False)
        self.dec0 = ResBlock(w1 + w0, w0, e)
        self.norm_out = group_norm(w0)
        self.conv_out = nn.Conv2d(w0, cfg.in_ch, 3, padding=1)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Zero the last layer of every residual branch so the net starts as the identity."""
        for m in self.modules():
            if isinstance(m, ResBlock):
                nn.init.zeros_(m.conv2.weight), nn.init.zeros_(m.conv2.bias)
            if isinstance(m, Attention):
                nn.init.zeros_(m.out_x.weight), nn.init.zeros_(m.out_x.bias)
                if m.self_attn:
                    nn.init.zeros_(m.out_s.weight), nn.init.zeros_(m.out_s.bias)
        nn.init.zeros_(self.conv_out.weight), nn.init.zeros_(self.conv_out.bias)
        nn.init.normal_(self.null_ctx, std=0.02)

    def null_text(self, b: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unconditional context: the learned null token then padding -> (B, T, 384), (B, T)."""
        ctx = torch.zeros(b, t, self.cfg.ctx_dim, device=self.null_ctx.device)
        ctx[:, :1] = self.null_ctx
        mask = torch.zeros(b, t, dtype=torch.bool, device=ctx.device)
        mask[:, 0] = True
        return ctx, mask

    def forward(self, x: torch.Tensor, t: torch.Tensor, ctx: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """x (B, 4, 32, 32), t (B,), ctx (B, T, 384), mask (B, T) bool -> v (B, 4, 32, 32)."""
        m = mask.float()[..., None]  # (B, T, 1)
        pooled = (ctx * m).sum(1) / m.sum(1).clamp(min=1)  # (B, 384)
        emb = self.time(timestep_embedding(t, self.cfg.emb_dim)) + self.pool_proj(pooled)  # (B, E)
        c = self.ctx_proj(ctx)  # (B, T, d_ctx)

        h0 = self.enc0(self.conv_in(x), emb)  # (B, w0, 32, 32)
        h1 = self.att1(self.enc1(self.down0(h0), emb), c, mask)  # (B, w1, 16, 16)
        h = self.mid1(self.down1(h1), emb)  # (B, w2, 8, 8)
        h = self.mid2(self.mid_att(h, c, mask), emb)  # (B, w2, 8, 8)
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, w2, 16, 16)
        h = self.att_d1(self.dec1(torch.cat([h, h1], 1), emb), c, mask)  # (B, w1, 16, 16)
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, w1, 32, 32)
        h = self.dec0(torch.cat([h, h0], 1), emb)  # (B, w0, 32, 32)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 4, 32, 32)

    def loss(self, x0: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Rectified-flow loss with logit-normal t (Esser et al. 2024, SD3)."""
        b = x0.shape[0]
        t = torch.sigmoid(torch.randn(b, generator=generator))  # (B,)
        noise = torch.randn(x0.shape, generator=generator)  # (B, 4, 32, 32)
        xt = (1 - t)[:, None, None, None] * x0 + t[:, None, None, None] * noise
        v = self(xt, t, ctx, mask)
        return F.mse_loss(v, noise - x0)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """k-diffusion denoiser contract: x0 estimate at noise level sigma (= t)."""
        t = sigma.expand(x.shape[0])
        return x - sigma * self(x, t, ctx, mask)

    def denoise_cfg(self, x: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor,
                    mask: torch.Tensor, scale: float) -> torch.Tensor:
        """Classifier-free guidance (Ho & Salimans 2022): one batched pass, cond and uncond."""
        b, t = mask.shape
        nctx, nmask = self.null_text(b, t)
        x0 = self.denoise(torch.cat([x, x]), sigma, torch.cat([ctx, nctx]), torch.cat([mask, nmask]))
        cond, uncond = x0.chunk(2)
        return uncond + scale * (cond - uncond)


class Upsampler(nn.Module):
    """32 px premultiplied RGBA -> 256 px: features at 32 px, three x2 pixel shuffles, and a
    residual on top of a bilinear enlargement (so an untrained net is already a sane resize)."""

    def __init__(self, cfg: UpsamplerConfig):
        super().__init__()
        self.cfg = cfg
        f = cfg.feat
        self.conv_in = nn.Conv2d(cfg.in_ch, f, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Sequential(nn.Conv2d(f, f, 3, padding=1), nn.ReLU(), nn.Conv2d(f, f, 3, padding=1))
            for _ in range(cfg.blocks)
        )
        stages, cin = [], f
        for w in cfg.scale_widths:
            stages.append(nn.Sequential(
                nn.Conv2d(cin, 4 * w, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(),
                nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            ))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.conv_out = nn.Conv2d(cin, cfg.in_ch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight), nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 4, h, w) in [-1, 1] -> (B, 4, 8h, 8w)."""
        base = F.interpolate(x, scale_factor=8, mode="bilinear", align_corners=False)
        h = self.conv_in(x)  # (B, f, h, w)
        for blk in self.body:
            h = h + blk(h)
        for st in self.stages:
            h = st(h)  # (B, w_i, 2^i h, 2^i w)
        return base + self.conv_out(h)  # (B, 4, 8h, 8w)


def config_dict(cfg) -> dict:
    d = asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def sprite_from_dict(d: dict) -> SpriteUNet:
    d = dict(d)
    d["widths"] = tuple(d["widths"])
    return SpriteUNet(SpriteConfig(**d))


def upsampler_from_dict(d: dict) -> Upsampler:
    d = dict(d)
    d["scale_widths"] = tuple(d["scale_widths"])
    return Upsampler(UpsamplerConfig(**d))


