"""Seconds per denoising step of each family's full-size denoiser, against the FLOP floor.

Each model's transformer (SDXL: UNet) is built in code with random weights and its released
config (the class defaults for Qwen-Image, FLUX.2-dev, Z-Image and Wan 2.1-14B; FLUX.1-dev =
defaults + guidance_embeds=True; FLUX.2-klein-4B and the SDXL UNet written out below), so it does
the same arithmetic as the real checkpoint and nothing is downloaded. A step is what the pipeline
runs per denoising step: the denoiser's forward on random latents and random prompt embeddings
(`forwards` times for true CFG, or one forward at batch 2 for SDXL's batched CFG); the scheduler
update is a few element-wise ops and is left out.

FLOPs per forward are measured with torch.utils.flop_counter.FlopCounterMode on the full model
built on the `meta` device (shapes only: no memory, no compute), so they are exact for the
config on any machine. The floor of a step is FLOPs x forwards / the GPU's dense bf16 peak.

    GPU:  .venv/bin/python bench/gpu_step.py [--gpu h100-sxm] [--sizes 1024,2048] [--steps 5]
          [--models qwen_image,flux1_dev,...] [--no-compile]
          full size, bf16, eager and torch.compile, at each size: s/step and floor/measured.
    CPU:  .venv/bin/python bench/gpu_step.py --cpu      (what runs without a GPU)
          full-size parameter and FLOP counts and the floor on the named GPU; then each model
          cut to one block (float32, 128x128, 32 text tokens) really runs one step on CPU,
          with its own FLOP count, to check the code path. No GPU timing is measured."""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

PEAK_BF16 = {  # dense bf16 TFLOP/s (vendor datasheets, no sparsity)
    "h100-sxm": 989.0, "h100-pcie": 756.0, "h200": 989.0, "a100": 312.0, "l40s": 362.0, "rtx4090": 165.0,
    "b200": 2250.0,
}

SDXL_UNET = {  # stabilityai/stable-diffusion-xl-base-1.0, unet/config.json
    "sample_size": 128, "in_channels": 4, "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (320, 640, 1280), "layers_per_block": 2, "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048, "transformer_layers_per_block": (1, 2, 10), "use_linear_projection": True,
    "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816, "norm_num_groups": 32,
}
FLUX2_KLEIN_4B = {  # black-forest-labs/FLUX.2-klein-4B, transformer/config.json (Qwen3-4B: 3 x 2560)
    "num_layers": 5, "num_single_layers": 20, "num_attention_heads": 24, "attention_head_dim": 128,
    "joint_attention_dim": 7680, "guidance_embeds": False,
}


@dataclass
class Spec:
    name: str
    cls: str
    config: dict
    one_block: dict  # config overrides for the CPU check: one transformer block
    inputs: Callable  # (width, height, text_tokens, batch, device, dtype) -> forward kwargs
    text_tokens: int  # prompt embedding length the pipeline passes
    forwards: int = 1  # forwards per step (true CFG runs the denoiser twice)
    batch: int = 1  # batch of one forward (SDXL batches its CFG pair)
    note: str = ""
    extra: dict = field(default_factory=dict)

    def build(self, one_block: bool = False):
        import diffusers

        cfg = {**self.config, **(self.one_block if one_block else {})}
        return getattr(diffusers, self.cls)(**cfg).eval().requires_grad_(False)


def _t(shape, device, dtype):
    return torch.randn(shape, device=device, dtype=dtype)


def qwen_inputs(w, h, txt, b, device, dtype):
    rows, cols = h // 16, w // 16
    return {"hidden_states": _t((b, rows * cols, 64), device, dtype),
            "encoder_hidden_states": _t((b, txt, 3584), device, dtype),
            "encoder_hidden_states_mask": torch.ones((b, txt), device=device, dtype=torch.long),
            "timestep": torch.full((b,), 0.5, device=device, dtype=dtype),
            "img_shapes": [[(1, rows, cols)]] * b, "return_dict": False}


def flux_inputs(w, h, txt, b, device, dtype):
    rows, cols = h // 16, w // 16
    img_ids = torch.zeros((rows * cols, 3), device=device, dtype=dtype)
    return {"hidden_states": _t((b, rows * cols, 64), device, dtype),
            "encoder_hidden_states": _t((b, txt, 4096), device, dtype),
            "pooled_projections": _t((b, 768), device, dtype),
            "timestep": torch.full((b,), 0.5, device=device, dtype=dtype),
            "img_ids": img_ids, "txt_ids": torch.zeros((txt, 3), device=device, dtype=dtype),
            "guidance": torch.full((b,), 3.5, device=device, dtype=torch.float32), "return_dict": False}


def flux2_inputs(joint: int, guidance: bool):
    def inputs(w, h, txt, b, device, dtype):
        rows, cols = h // 16, w // 16
        return {"hidden_states": _t((b, rows * cols, 128), device, dtype),
                "encoder_hidden_states": _t((b, txt, joint), device, dtype),
                "timestep": torch.full((b,), 0.5, device=device, dtype=dtype),
                "img_ids": torch.zeros((rows * cols, 4), device=device, dtype=dtype),
                "txt_ids": torch.zeros((txt, 4), device=device, dtype=dtype),
                "guidance": torch.full((b,), 4.0, device=device, dtype=torch.float32) if guidance else None,
                "return_dict": False}
    return inputs


def zimage_inputs(w, h, txt, b, device, dtype):
    return {"x": [_t((16, 1, h // 8, w // 8), device, dtype) for _ in range(b)],
            "t": torch.full((b,), 0.5, device=device, dtype=dtype),
            "cap_feats": [_t((txt, 2560), device, dtype) for _ in range(b)], "return_dict": False}


def wan_inputs(w, h, txt, b, device, dtype):
    return {"hidden_states": _t((b, 16, 1, h // 8, w // 8), device, dtype),
            "timestep": torch.full((b,), 500.0, device=device, dtype=dtype),
            "encoder_hidden_states": _t((b, txt, 4096), device, dtype), "return_dict": False}


def sdxl_inputs(w, h, txt, b, device, dtype):
    return {"sample": _t((b, 4, h // 8, w // 8), device, dtype),
            "timestep": torch.full((b,), 500.0, device=device, dtype=dtype),
            "encoder_hidden_states": _t((b, txt, 2048), device, dtype),
            "added_cond_kwargs": {"text_embeds": _t((b, 1280), device, dtype),
                                  "time_ids": torch.tensor([[h, w, 0, 0, h, w]] * b, device=device, dtype=dtype)},
            "return_dict": False}


SPECS = [
    Spec("qwen_image", "QwenImageTransformer2DModel", {}, {"num_layers": 1}, qwen_inputs, 128, forwards=2,
         note="true CFG (true_cfg_scale 4): 2 forwards"),
    Spec("flux1_dev", "FluxTransformer2DModel", {"guidance_embeds": True}, {"num_layers": 1, "num_single_layers": 1},
         flux_inputs, 512, note="guidance-distilled: 1 forward"),
    Spec("flux2_dev", "Flux2Transformer2DModel", {}, {"num_layers": 1, "num_single_layers": 1},
         flux2_inputs(15360, True), 512, note="guidance-distilled: 1 forward"),
    Spec("flux2_klein_4b", "Flux2Transformer2DModel", FLUX2_KLEIN_4B, {"num_layers": 1, "num_single_layers": 1},
         flux2_inputs(7680, False), 512, note="distilled klein: 1 forward (base klein with CFG: 2)"),
    Spec("zimage_turbo", "ZImageTransformer2DModel", {}, {"n_layers": 1, "n_refiner_layers": 1}, zimage_inputs, 128,
         note="Turbo, guidance 0: 1 forward"),
    Spec("wan2.1_14b", "WanTransformer3DModel", {}, {"num_layers": 1}, wan_inputs, 512, forwards=2,
         note="CFG (guidance 5): 2 forwards, num_frames=1"),
    Spec("sdxl_unet", "UNet2DConditionModel", SDXL_UNET,
         {"layers_per_block": 1, "transformer_layers_per_block": (1, 1, 1)}, sdxl_inputs, 77, batch=2,
         note="CFG batched: 1 forward at batch 2"),
]


# --------------------------------------------------------------------------- measuring


def flops_of(model, kwargs) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**kwargs)
    return counter.get_total_flops()


def meta_counts(spec: Spec, sizes: list[int], text_tokens: int | None = None,
                one_block: bool = False) -> tuple[int, dict[int, int]]:
    """(parameters, {size: FLOPs per forward}) of the full-size model, on the meta device."""
    with torch.device("meta"):
        model = spec.build(one_block)
    params = sum(p.numel() for p in model.parameters())
    txt = text_tokens or spec.text_tokens
    flops = {s: flops_of(model, spec.inputs(s, s, txt, spec.batch, "meta", torch.float32)) for s in sizes}
    del model
    return params, flops


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds_per_step(model, spec: Spec, size: int, device: str, dtype, steps: int, warmup: int,
                     text_tokens: int | None = None) -> float:
    kwargs = spec.inputs(size, size, text_tokens or spec.text_tokens, spec.batch, device, dtype)
    with torch.no_grad():
        for _ in range(warmup * spec.forwards):
            model(**kwargs)
        sync(device)
        t = time.perf_counter()
        for _ in range(steps * spec.forwards):
            model(**kwargs)
        sync(device)
    return (time.perf_counter() - t) / steps


def free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------ modes


def run_cpu(specs: list[Spec], sizes: list[int], gpu: str) -> None:
    peak = PEAK_BF16[gpu] * 1e12
    print(f"CPU mode: no GPU timing is measured. Full-size FLOPs are counted on the meta device; "
          f"floor = FLOPs x forwards / {PEAK_BF16[gpu]:.0f} TFLOP/s ({gpu} dense bf16).")
    head = f"{'model':<15} {'params':>8} {'fwd/step':>8}"
    for s in sizes:
        head += f" {f'TFLOP/fwd {s}²':>16} {f'floor s/step {s}²':>18}"
    print(head)
    for spec in specs:
        params, flops = meta_counts(spec, sizes)
        row = f"{spec.name:<15} {params / 1e9:>7.2f}B {spec.forwards:>8}"
        for s in sizes:
            row += f" {flops[s] / 1e12:>16.1f} {flops[s] * spec.forwards / peak:>18.3f}"
        print(row)
    print(f"text tokens per forward: {', '.join(f'{s.name} {s.text_tokens}' for s in specs)}; batch 2 for sdxl_unet")
    print()
    print("one-block check on CPU: float32, 128x128, 32 text tokens, 1 step after 1 warm-up")
    print(f"{'model':<15} {'params (1 block)':>16} {'GFLOP/fwd':>10} {'s/step (CPU)':>13}  note")
    for spec in specs:
        torch.manual_seed(0)
        t = time.perf_counter()
        model = spec.build(one_block=True)
        built = time.perf_counter() - t
        params = sum(p.numel() for p in model.parameters())
        flops = flops_of(model, spec.inputs(128, 128, 32, spec.batch, "cpu", torch.float32))
        step = seconds_per_step(model, spec, 128, "cpu", torch.float32, steps=1, warmup=1, text_tokens=32)
        print(f"{spec.name:<15} {params / 1e6:>15.0f}M {flops / 1e9:>10.1f} {step:>13.3f}  "
              f"{spec.note} (built in {built:.1f}s)")
        del model
        free()


def run_gpu(specs: list[Spec], sizes: list[int], gpu: str, steps: int, compile_too: bool,
            device: str = "cuda", one_block: bool = False) -> None:
    """Full size in bf16 on the GPU. `device="cpu", one_block=True` exercises this same path on a
    machine without one (float32: a check of the code, not a measurement)."""
    peak = PEAK_BF16[gpu] * 1e12
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"{device} (path check only)"
    print(f"device: {name} (peak taken as {gpu}: {PEAK_BF16[gpu]:.0f} TFLOP/s dense bf16), {dtype}, "
          f"{'one block per model, ' if one_block else ''}{steps} timed steps after warm-up; "
          "% = floor / measured, the share of peak reached")
    print(f"{'model':<15} {'size':>5} {'TFLOP/step':>10} {'floor s':>8} {'eager s':>8} {'eager %':>8} "
          f"{'compiled s':>10} {'compiled %':>10}")
    for spec in specs:
        params, flops = meta_counts(spec, sizes, one_block=one_block)
        torch.manual_seed(0)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                model = spec.build(one_block)
        except torch.OutOfMemoryError:
            print(f"{spec.name:<15} does not fit: {params / 1e9:.1f}B parameters")
            free()
            continue
        finally:
            torch.set_default_dtype(previous)
        compiled = torch.compile(model) if compile_too else None
        for s in sizes:
            floor = flops[s] * spec.forwards / peak
            cells = []
            for m in (model, compiled):
                if m is None:
                    cells.append("-")
                    continue
                try:
                    sec = seconds_per_step(m, spec, s, device, dtype, steps, warmup=2 if m is compiled else 1)
                    cells.append(f"{sec:.3f} {100 * floor / sec:.0f}%")
                except torch.OutOfMemoryError:
                    cells.append("OOM -")
                    free()
            e, c = (x.split() if x != "-" else ["-", "-"] for x in cells)
            print(f"{spec.name:<15} {s:>5} {flops[s] * spec.forwards / 1e12:>10.1f} {floor:>8.3f} "
                  f"{e[0]:>8} {e[1]:>8} {c[0]:>10} {c[1]:>10}")
        del model, compiled
        torch._dynamo.reset()
        free()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="no GPU: counts and a one-block CPU check")
    parser.add_argument("--gpu", default="h100-sxm", choices=sorted(PEAK_BF16), help="peak bf16 for the floor")
    parser.add_argument("--sizes", default="1024,2048")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--models", default=",".join(s.name for s in SPECS))
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--device", default="cuda", help="cpu with --one-block: check the GPU path without one")
    parser.add_argument("--one-block", action="store_true", help="one block per model (with --device cpu)")
    args = parser.parse_args()
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    wanted = args.models.split(",")
    specs = [s for s in SPECS if s.name in wanted]
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.device == "cpu" and not args.cpu:
        run_gpu(specs, sizes, args.gpu, args.steps, not args.no_compile, "cpu", args.one_block)
    elif args.cpu or not torch.cuda.is_available():
        if not args.cpu:
            print("no CUDA device: running the CPU mode")
        torch.set_num_threads(max(1, torch.get_num_threads()))
        run_cpu(specs, sizes, args.gpu)
    else:
        run_gpu(specs, sizes, args.gpu, args.steps, not args.no_compile)


if __name__ == "__main__":
    main()
