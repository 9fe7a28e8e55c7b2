"""Schedules and samplers, k-diffusion style: a schedule is data (`sigmas`, descending, ending in
0); a sampler is a small pure function over a denoiser `denoise(x, sigma) -> x0`.

For rectified flow sigma is the time t in x_t = (1 - t) x0 + t noise, so sigma_max = 1."""

from __future__ import annotations

from collections.abc import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def get_sigmas_flow(n: int, shift: float = 1.0) -> torch.Tensor:
    """n steps from t=1 to 0 with SD3's time shift (shift > 1 spends more steps at high noise)."""
    t = torch.linspace(1.0, 0.0, n + 1)
    return shift * t / (1 + (shift - 1) * t)  # (n + 1,), last is exactly 0


def sample_euler(denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                 callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 1 without churn).

    `callback({"i", "n", "sigma", "x", "denoised"})` runs after every step; it may raise to cancel."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x0 = denoise(x, s)
        d = (x - x0) / s  # the velocity noise - x0
        x = x + (s_next - s) * d
        if callback is not None:
            callback({"i": i, "n": len(sigmas) - 1, "sigma": s, "x": x, "denoised": x0})
    return x


def sample_heun(denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """Heun's second-order method (Karras et al. 2022, Algorithm 1): two denoiser calls a step,
    Euler on the last step to sigma 0."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x0 = denoise(x, s)
        d = (x - x0) / s
        x_euler = x + (s_next - s) * d
        if s_next > 0:
            d2 = (x_euler - denoise(x_euler, s_next)) / s_next
            x = x + (s_next - s) * (d + d2) / 2
        else:
            x = x_euler
        if callback is not None:
            callback({"i": i, "n": len(sigmas) - 1, "sigma": s, "x": x, "denoised": x0})
    return x
