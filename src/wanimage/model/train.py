"""Resumable training of SpriteUNet (flow matching) and Upsampler (L1), in one loop on the CPU.

State lives in `run_dir` (default runs/builtin/): ckpt.pt (everything needed to resume),
log.jsonl (one line per log interval), samples/ (a grid of fixed prompts now and then).
Running `train` again with the same run_dir resumes where it stopped."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .net import (
    SPRITE_PRESETS,
    UPSAMPLER_PRESETS,
    SpriteUNet,
    Upsampler,
    config_dict,
    sprite_from_dict,
    upsampler_from_dict,
)
from .weights import export_weights, load_weights, save_checkpoint


@dataclass
class TrainConfig:
    data_dir: Path = Path(".cache/builtin-data")
    run_dir: Path = Path("runs/builtin")
    export: Path | None = None  # also write EMA weights here at every checkpoint
    init_from: Path | None = None  # exported weights to start from when run_dir has no checkpoint
    preset: str = "S"
    batch: int = 64
    lr: float = 5e-4
    warmup: int = 300
    ema: float = 0.999
    cfg_drop: float = 0.1  # share of captions replaced by the null text (enables CFG)
    up_every: int = 3  # one upsampler step per this many generator steps
    up_batch: int = 16
    up_crop: int = 16  # upsampler trains on 16 px -> 128 px crops: cheap, same receptive field
    max_steps: int = 10**9
    max_minutes: float = 10**9
    cooldown_minutes: float = 0.0  # the last minutes of max_minutes: lr falls linearly to 10 %
    log_every: int = 50
    ckpt_minutes: float = 5.0
    sample_minutes: float = 15.0
    threads: int = 2
    bf16: bool = True  # autocast: ~1.8x faster on this AVX512-BF16 CPU (measured), fp32 weights
    seed: int = 0


SAMPLE_PROMPTS = [
    "a red apple", "a cat", "a dog face", "a yellow banana", "a blue car", "a rocket",
    "a pizza", "a smiling face", "a tree", "a house", "a sun", "a heart",
    "an orange", "a green frog", "a birthday cake", "a guitar",
]


def load_data(data_dir: Path) -> dict:
    """Everything training reads, as tensors in memory (about 0.8 GB)."""
    cap = np.load(data_dir / "captions.npz")
    lo = np.load(data_dir / "sprites32.npy")  # (N, 32, 32, 4) uint8 premultiplied
    hi = np.load(data_dir / "sprites256.npy", mmap_mode="r")  # (N, 256, 256, 4)
    return dict(
        emb=torch.from_numpy(cap["emb"]),  # (M, T, 384) f16
        mask=torch.from_numpy(cap["mask"]),  # (M, T) bool
        icon=torch.from_numpy(cap["icon"]).long(),  # (M,)
        lo=to_model_space(torch.from_numpy(lo)),  # (N, 4, 32, 32) in [-1, 1]
        hi=hi,
    )


def to_model_space(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 4) uint8 -> (N, 4, H, W) float in [-1, 1]."""
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters(), strict=True):
            e.lerp_(p, 1 - decay)
        for e, b in zip(ema.buffers(), model.buffers(), strict=True):
            e.copy_(b)


def upsampler_batch(data: dict, cfg: TrainConfig, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random aligned crops: input (B, 4, c, c) from 32 px, target (B, 4, 8c, 8c) from 256 px.
    The input gets a little noise so the net tolerates the generator's imperfect 32 px output."""
    n = data["lo"].shape[0]
    idx = torch.randint(n, (cfg.up_batch,), generator=g).tolist()
    c = cfg.up_crop
    xs, ys = [], []
    for i in idx:
        oy, ox = torch.randint(0, 32 - c + 1, (2,), generator=g).tolist()
        xs.append(data["lo"][i, :, oy : oy + c, ox : ox + c])
        hi = np.array(data["hi"][i, 8 * oy : 8 * (oy + c), 8 * ox : 8 * (ox + c)])  # copy
        ys.append(to_model_space(torch.from_numpy(hi)[None])[0])
    x = torch.stack(xs)
    x = x + 0.03 * torch.rand(x.shape[0], 1, 1, 1, generator=g) * torch.randn(x.shape, generator=g)
    return x, torch.stack(ys)


def learning_rate(cfg: TrainConfig, run_step: int, run_minutes: float) -> float:
    """Warm-up at the start of every run (a resumed optimiser or a fresh one alike), constant,
    then, with a time budget, a linear cool-down to 10 % over its last `cooldown_minutes`."""
    lr = cfg.lr * min(1.0, (run_step + 1) / cfg.warmup)
    if cfg.cooldown_minutes > 0:
        left = cfg.max_minutes - run_minutes
        if left < cfg.cooldown_minutes:
            lr *= 0.1 + 0.9 * max(0.0, left) / cfg.cooldown_minutes
    return lr


def threads_for_load(max_threads: int) -> int:
    """One thread when the machine is oversubscribed: a low-priority 2-thread process loses most
    of its time waiting at barriers for the descheduled thread. Measured at load ~8 on 2 cores,
    nice 19, bf16: 1 thread 34-41 samples/s, 2 threads 5-14."""
    import os

    busy = os.getloadavg()[0] > 1.5 * (os.cpu_count() or 1)
    return 1 if busy else max_threads


def build_or_resume(cfg: TrainConfig) -> dict:
    ckpt_path = cfg.run_dir / "ckpt.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        sprite, up = sprite_from_dict(ck["sprite_config"]), upsampler_from_dict(ck["up_config"])
        sprite_ema, up_ema = sprite_from_dict(ck["sprite_config"]), upsampler_from_dict(ck["up_config"])
        for m, k in ((sprite, "sprite"), (up, "up"), (sprite_ema, "sprite_ema"), (up_ema, "up_ema")):
            m.load_state_dict(ck[k])
        state = dict(step=ck["step"], samples=ck["samples"], seconds=ck["seconds"])
    elif cfg.init_from is not None and cfg.init_from.exists():
        # No checkpoint (a fresh clone, a new machine): go on from the shipped EMA weights, with a
        # fresh optimiser (the warm-up covers its empty moments) and the step count they carry.
        sprite, up, info = load_weights(cfg.init_from)
        sprite_ema, up_ema, _ = load_weights(cfg.init_from)
        sprite.train(), up.train()
        ck = None
        state = dict(step=info.get("step", 0), samples=info.get("samples", 0), seconds=float(info.get("train_seconds", 0)))
        print(json.dumps({"init_from": str(cfg.init_from), **state}), flush=True)
    else:
        torch.manual_seed(cfg.seed)
        sprite, up = SpriteUNet(SPRITE_PRESETS[cfg.preset]), Upsampler(UPSAMPLER_PRESETS[cfg.preset])
        sprite_ema, up_ema = SpriteUNet(sprite.cfg), Upsampler(up.cfg)
        sprite_ema.load_state_dict(sprite.state_dict()), up_ema.load_state_dict(up.state_dict())
        ck, state = None, dict(step=0, samples=0, seconds=0.0)
    opt = torch.optim.AdamW(sprite.parameters(), lr=cfg.lr, weight_decay=0.0)
    opt_up = torch.optim.AdamW(up.parameters(), lr=cfg.lr, weight_decay=0.0)
    if ck is not None:
        opt.load_state_dict(ck["opt"]), opt_up.load_state_dict(ck["opt_up"])
    return dict(sprite=sprite, up=up, sprite_ema=sprite_ema.eval(), up_ema=up_ema.eval(),
                opt=opt, opt_up=opt_up, **state)


def checkpoint(s: dict, cfg: TrainConfig) -> None:
    save_checkpoint(cfg.run_dir / "ckpt.pt", dict(
        sprite_config=config_dict(s["sprite"].cfg), up_config=config_dict(s["up"].cfg),
        sprite=s["sprite"].state_dict(), up=s["up"].state_dict(),
        sprite_ema=s["sprite_ema"].state_dict(), up_ema=s["up_ema"].state_dict(),
        opt=s["opt"].state_dict(), opt_up=s["opt_up"].state_dict(),
        step=s["step"], samples=s["samples"], seconds=s["seconds"],
    ))
    if cfg.export is not None:
        info = dict(step=s["step"], samples=s["samples"], train_seconds=round(s["seconds"]))
        export_weights(s["sprite_ema"], s["up_ema"], cfg.export, info)


def write_samples(s: dict, cfg: TrainConfig, prompts_emb: tuple) -> Path:
    from .pipeline import sprite_grid

    out = cfg.run_dir / "samples" / f"step_{s['step']:07d}.png"
    sprite_grid(s["sprite_ema"], s["up_ema"], prompts_emb, out)
    return out


def generator_step(s: dict, cfg: TrainConfig, data: dict, g: torch.Generator, decay: float) -> float:
    """One optimiser step of the sprite generator (with caption dropout for CFG); its loss."""
    idx = torch.randint(data["icon"].shape[0], (cfg.batch,), generator=g)
    ctx, mask = data["emb"][idx].float(), data["mask"][idx].clone()  # (B, T, 384), (B, T)
    drop = torch.rand(cfg.batch, generator=g) < cfg.cfg_drop
    if drop.any():
        nctx, nmask = s["sprite"].null_text(int(drop.sum()), ctx.shape[1])
        ctx[drop], mask[drop] = nctx.detach(), nmask
    x0 = data["lo"][data["icon"][idx]]  # (B, 4, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        loss = s["sprite"].loss(x0, ctx, mask, generator=g)
    s["opt"].zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(s["sprite"].parameters(), 1.0)
    s["opt"].step()
    ema_update(s["sprite_ema"], s["sprite"], decay)
    return loss.item()


def upsampler_step(s: dict, cfg: TrainConfig, data: dict, g: torch.Generator, decay: float) -> float:
    """One optimiser step of the 8x upsampler (L1 on sprite crops); its loss."""
    x, y = upsampler_batch(data, cfg, g)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        up_loss = (s["up"](x).float() - y).abs().mean()
    s["opt_up"].zero_grad(set_to_none=True)
    up_loss.backward()
    s["opt_up"].step()
    ema_update(s["up_ema"], s["up"], decay)
    return up_loss.item()


def train(cfg: TrainConfig) -> dict:
    torch.set_num_threads(threads_for_load(cfg.threads))
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    data = load_data(cfg.data_dir)
    s = build_or_resume(cfg)
    from .text import TextEncoder

    prompts_emb = TextEncoder().encode(SAMPLE_PROMPTS)
    g = torch.Generator().manual_seed(cfg.seed + s["step"])  # a resumed run draws fresh batches
    log = (cfg.run_dir / "log.jsonl").open("a")
    t_start = t_log = t_ckpt = t_sample = time.time()
    losses, up_losses, samples_since = [], [], 0
    step0 = s["step"]
    while s["step"] < cfg.max_steps and (time.time() - t_start) / 60 < cfg.max_minutes:
        # 1. generator step on a batch of (caption, sprite) pairs; 2. now and then an upsampler step
        lr = learning_rate(cfg, s["step"] - step0, (time.time() - t_start) / 60)
        for grp in s["opt"].param_groups + s["opt_up"].param_groups:
            grp["lr"] = lr
        decay = min(cfg.ema, (1 + s["step"]) / (10 + s["step"]))
        losses.append(generator_step(s, cfg, data, g, decay))
        if s["step"] % cfg.up_every == 0:
            up_losses.append(upsampler_step(s, cfg, data, g, decay))
        s["step"] += 1
        s["samples"] += cfg.batch
        samples_since += cfg.batch
        now = time.time()
        # 3. log, checkpoint, sample grid
        if s["step"] % cfg.log_every == 0:
            s["seconds"] += now - t_log
            rec = dict(step=s["step"], samples=s["samples"], seconds=round(s["seconds"], 1),
                       loss=float(np.mean(losses)), up_loss=float(np.mean(up_losses or [0])),
                       samples_per_s=round(samples_since / (now - t_log), 1), lr=lr)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), flush=True)
            losses, up_losses, samples_since, t_log = [], [], 0, now
        if s["step"] % 10 == 0:
            torch.set_num_threads(threads_for_load(cfg.threads))
        if (now - t_ckpt) / 60 > cfg.ckpt_minutes:
            checkpoint(s, cfg)
            t_ckpt = now
        if (now - t_sample) / 60 > cfg.sample_minutes:
            write_samples(s, cfg, prompts_emb)
            t_sample = now
    checkpoint(s, cfg)
    write_samples(s, cfg, prompts_emb)
    return dict(steps=s["step"] - step0, step=s["step"])
