"""Seconds per image of whole pipelines through the engine, per family and acceleration option set,
against plain diffusers in the same run and against the FLOP floor.

Every pipeline is whole (transformer, text encoder(s), VAE) and built in code with random weights
(nothing is downloaded): at full size from the released configs (below) on a GPU, or from the tiny
test components with --tiny (CPU, what CI runs). Each option set gets freshly built modules from
the same weight seed, so the sets compute on identical weights. For each family:

    plain diffusers   the pipeline called directly: prompt, size, steps, one generator
    engine            the same through DiffusersEngine.generate (its per-image work included:
                      sizes, progress callback, PIL conversion); then each option set through it

FLOPs per image are counted once per family with torch.utils.flop_counter.FlopCounterMode over a
whole plain pipeline call; the floor is FLOPs / the GPU's dense bf16 peak (bench/gpu_step.py's
table, --gpu). `floor` is floor seconds / measured seconds: 100 % would be the hardware's limit.

    GPU:  .venv/bin/python bench/gpu_e2e.py [--gpu h100-sxm] [--families qwen_image,zimage,flux]
          [--size 1024] [--repeats 3] [--options engine,first_block,max_batch]
    CPU:  .venv/bin/python bench/gpu_e2e.py --tiny      (64x64 tiny models; no floor on CPU)
    Any:  .venv/bin/python bench/gpu_e2e.py --check-full  (full-size pipelines on the meta device:
          parameter counts, proves the configs build; no memory, no compute)"""

from __future__ import annotations

import argparse
import gc
import inspect
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_step import PEAK_BF16  # noqa: E402

from wanimage.core.job import make_job  # noqa: E402
from wanimage.engines.base import no_progress  # noqa: E402
from wanimage.engines.diffusers import FAMILIES  # noqa: E402
from wanimage.engines.diffusers.config import (
    parallel_degree,  # noqa: E402
    parse_config,  # noqa: E402
)
from wanimage.engines.diffusers.engine import DiffusersEngine  # noqa: E402
from wanimage.engines.diffusers.loader import pipeline_class  # noqa: E402
from wanimage.engines.diffusers.parallel import rank_devices  # noqa: E402
from wanimage.engines.diffusers.ranks import ParallelEngine  # noqa: E402
from wanimage.types import Mode  # noqa: E402

PROMPT = ("A cozy reading corner by a rain-streaked window, warm lamp light, a cat asleep on a knitted "
          "blanket, shelves of old books, soft film grain")


@dataclass(frozen=True)
class Family:
    name: str  # engine family
    pipeline: str
    steps: int
    keys: dict  # sampling keys of the engine config (the released model's defaults)
    direct: dict  # the same sampling arguments for a direct pipeline call


BENCH = {
    "qwen_image": Family("qwen_image", "QwenImagePipeline", 50, {"true_cfg": 4.0, "negative_prompt": " "},
                         {"true_cfg_scale": 4.0, "negative_prompt": " "}),
    "zimage": Family("zimage", "ZImagePipeline", 9, {"guidance": 0.0}, {"guidance_scale": 0.0}),
    "flux": Family("flux", "FluxPipeline", 50, {"guidance": 3.5}, {"guidance_scale": 3.5}),
}


def option_sets(tiny: bool, device: str) -> dict[str, dict]:
    """Name -> engine config keys. --tiny compiles with the eager backend (inductor on two CPU
    cores takes minutes and measures the C compiler, not the option)."""
    compile_keys = {"compile": True, **({"compile_backend": "eager"} if tiny else {})}
    quant = "int8" if not device.startswith("cuda") else "fp8_dynamic"
    return {
        "engine": {},
        "first_block 0.08": {"cache": "first_block", "cache_threshold": 0.08},
        "taylorseer 5": {"cache": "taylorseer", "cache_interval": 5, "cache_warmup_steps": 3},
        "cache_dit 0.08": {"cache": "cache_dit", "cache_threshold": 0.08, "cache_front_blocks": 1 if tiny else 8},
        "compile": compile_keys,
        "compile + first_block": {**compile_keys, "cache": "first_block", "cache_threshold": 0.08},
        f"{quant} transformer": {"quantize": quant},
        "max_batch 2 (n=2)": {"max_batch": 2},
        "ulysses 2 (2 devices)": {"ulysses_degree": 2},  # --tiny: two CPU ranks (the path, not a speed)
    }


# ----------------------------------------------------------------------------- building


def full_components(family: str) -> dict:
    """Full-size modules from the released configs (random weights) with the tiny tokenizers and
    schedulers (byte-level tokenizers give valid ids for the big vocabularies)."""
    from diffusers import (
        AutoencoderKL,
        AutoencoderKLQwenImage,
        FluxTransformer2DModel,
        QwenImageTransformer2DModel,
        ZImageTransformer2DModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen3Config,
        Qwen3Model,
        T5Config,
        T5EncoderModel,
    )

    from wanimage.engines.diffusers import tiny

    small = dict(tiny.TINY[family]())  # tokenizers, scheduler
    flux_vae = dict(  # black-forest-labs/FLUX.1-dev vae/config.json (Z-Image uses the same VAE)
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
        latent_channels=16, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
        use_post_quant_conv=False, sample_size=1024)
    ids = tiny.QWEN_ID
    if family == "qwen_image":  # Qwen/Qwen-Image: Qwen2.5-VL-7B text encoder
        config = Qwen2_5_VLConfig(
            text_config={"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                         "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
                         "rope_theta": 1000000.0, "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default",
                                                                   "type": "default"},
                         "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"]},
            vision_config={"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                           "out_hidden_size": 3584},
            hidden_size=3584, vocab_size=152064, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"], image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"], vision_token_id=ids["<|vision_pad|>"])
        return {**small, "transformer": QwenImageTransformer2DModel(), "vae": AutoencoderKLQwenImage(),
                "text_encoder": Qwen2_5_VLForConditionalGeneration(config)}
    if family == "zimage":  # Tongyi-MAI/Z-Image-Turbo: Qwen3-4B text encoder
        config = Qwen3Config(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                             num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
                             rope_theta=1000000.0, tie_word_embeddings=True,
                             bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"])
        transformer = ZImageTransformer2DModel()
        with torch.no_grad():  # allocated with torch.empty
            for pad in (transformer.x_pad_token, transformer.cap_pad_token):
                pad.fill_(1.0)
        return {**small, "transformer": transformer, "vae": AutoencoderKL(**flux_vae), "text_encoder": Qwen3Model(config)}
    if family == "flux":  # black-forest-labs/FLUX.1-dev: CLIP-L and T5-XXL
        clip = small["tokenizer"]
        clip_config = CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                     num_attention_heads=12, vocab_size=49408, projection_dim=768, hidden_act="quick_gelu",
                                     bos_token_id=clip.bos_token_id, eos_token_id=clip.eos_token_id,
                                     pad_token_id=clip.pad_token_id)
        t5 = T5Config(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                      feed_forward_proj="gated-gelu", decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
        return {**small, "transformer": FluxTransformer2DModel(guidance_embeds=True), "vae": AutoencoderKL(**flux_vae),
                "text_encoder": CLIPTextModel(clip_config), "text_encoder_2": T5EncoderModel(t5)}
    raise SystemExit(f"no full-size build for {family}; families: {', '.join(BENCH)}")


def build_pipeline(family: str, tiny: bool, device: str, dtype: torch.dtype):
    """A fresh whole pipeline with the weights of seed 0."""
    cls = pipeline_class(BENCH[family].pipeline)
    torch.manual_seed(0)
    if tiny:
        from wanimage.engines.diffusers import tiny as tiny_mod

        components = tiny_mod.TINY[family]()  # fresh modules (not the process-wide cache)
    else:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                components = full_components(family)
        finally:
            torch.set_default_dtype(previous)
    for module in components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    wanted = set(inspect.signature(cls.__init__).parameters)
    pipe = cls(**{k: v for k, v in components.items() if k in wanted})
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ----------------------------------------------------------------------------- measuring


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(run, device: str, repeats: int) -> float:
    run()  # warm-up (compilation, caches, allocator)
    times = []
    for _ in range(repeats):
        sync(device)
        began = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def engine_for(family: str, keys: dict, args, device: str, dtype: torch.dtype) -> DiffusersEngine:
    spec = BENCH[family]
    raw = {"family": family, "text_to_image": f"bench:{family}", "steps": args.steps or spec.steps,
           "max_generate_pixels": args.size * args.size, "dtype": str(dtype).removeprefix("torch."),
           "device": device, **spec.keys, **keys}
    if family == "qwen_image" and args.tiny:
        raw["true_cfg"] = 1.0  # tiny text encoders: no CFG, as in the tests
        raw.pop("negative_prompt", None)
    cfg = parse_config({"models": {"m": raw}})["m"]
    if parallel_degree(cfg) > 1:  # every rank builds the same random weights (seed 0) on its device
        devices = rank_devices(cfg, device, ["cpu"] * parallel_degree(cfg) if args.tiny else None, "models.m")
        return ParallelEngine("wan2.7-image", cfg, FAMILIES[family], devices,
                              build=partial(build_pipeline, family, args.tiny))
    engine = DiffusersEngine("wan2.7-image", cfg, FAMILIES[family], device)
    engine.loader.load = lambda cls, ckpt, role: build_pipeline(family, args.tiny, device, dtype)
    return engine


def direct_call(pipe, family: str, args):
    spec = BENCH[family]
    kw = dict(spec.direct)
    if family == "qwen_image" and args.tiny:
        kw = {"true_cfg_scale": 1.0}
    return lambda: pipe(prompt=PROMPT, width=args.size, height=args.size, num_inference_steps=args.steps or spec.steps,
                        generator=torch.Generator("cpu").manual_seed(0), **kw)


def measure_family(family: str, args, device: str, dtype: torch.dtype) -> list[tuple]:
    pipe = build_pipeline(family, args.tiny, device, dtype).to(device)
    call = direct_call(pipe, family, args)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        call()
    flops = counter.get_total_flops()
    plain = timed(call, device, args.repeats)
    rows = [(family, "plain diffusers", plain, 1.0, flops)]
    del pipe, call
    free()
    for name, keys in option_sets(args.tiny, device).items():
        if args.options and name.split()[0] not in args.options:
            continue
        try:
            engine = engine_for(family, keys, args, device, dtype)
        except ValueError as exc:  # an option this device cannot run: say so in the table
            rows.append((family, name, None, None, str(exc).replace("models.m.", "")))
            continue
        n = keys.get("max_batch", 1)
        job = make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, PROMPT, args.size, args.size, n, 0)
        seconds = timed(lambda e=engine, j=job: e.generate(j, no_progress), device, args.repeats) / n
        rows.append((family, name, seconds, seconds / plain, flops))
        engine.unload()
        if hasattr(engine, "close"):  # context parallelism: its follower processes
            engine.close()
        free()
    if family == "zimage" and args.http:
        rows.append(measure_http(family, args, device, dtype, plain, flops))
    return rows


def measure_http(family: str, args, device: str, dtype: torch.dtype, plain: float, flops: int) -> tuple:
    """The same engine behind a real server on loopback: one synchronous DashScope request per
    image (validation, the worker queue, PNG encoding, provenance marks, the response), timed at
    the client. The API's smallest size is 768*768: --tiny asks that (the engine generates 64x64
    and resizes), full size asks --size."""
    import socket
    import tempfile
    import threading

    import httpx
    import uvicorn

    from wanimage.app import create_app
    from wanimage.config import Settings
    from wanimage.engines.registry import EngineRegistry
    from wanimage.types import MODELS

    engine = engine_for(family, {}, args, device, dtype)
    side = max(args.size, 768)
    with tempfile.TemporaryDirectory() as data, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        settings = Settings(data_dir=Path(data), port=port, workers=1)
        app = create_app(settings, EngineRegistry({m: (lambda: engine) for m in MODELS}))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": PROMPT}]}]},
                "parameters": {"size": f"{side}*{side}", "n": 1, "seed": 0}}

        def request():
            answer = httpx.post(f"{base}/api/v1/services/aigc/multimodal-generation/generation", json=body,
                                timeout=600)
            if answer.status_code != 200:
                raise SystemExit(f"HTTP {answer.status_code}: {answer.text[:300]}")

        try:
            seconds = timed(request, device, args.repeats)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    return (family, f"engine via HTTP ({side}x{side}, sync)", seconds, seconds / plain, flops)


def free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def print_table(rows: list[tuple], peak_tflops: float | None, label: str) -> None:
    print(f"| family | options | s / image | x plain diffusers | floor / measured ({label}) |")
    print("|---|---|---|---|---|")
    for family, name, seconds, ratio, flops in rows:
        if seconds is None:
            print(f"| {family} | {name} | refused: {flops} | | |")
            continue
        floor = f"{flops / (peak_tflops * 1e12) / seconds:.0%}" if peak_tflops else "n/a"
        print(f"| {family} | {name} | {seconds:.3f} | {ratio:.2f} | {floor} |")


def check_full(families: list[str]) -> None:
    """Full-size pipelines on the meta device: parameter counts per component."""
    for family in families:
        with torch.device("meta"):
            components = full_components(family)
        sizes = {k: sum(p.numel() for p in v.parameters()) / 1e9 for k, v in components.items()
                 if isinstance(v, torch.nn.Module)}
        print(f"{family}: " + ", ".join(f"{k} {b:.2f} B" for k, b in sizes.items()) + f"; total {sum(sizes.values()):.1f} B")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random components on CPU (CI)")
    parser.add_argument("--check-full", action="store_true", help="build the full-size pipelines on meta only")
    parser.add_argument("--families", default=",".join(BENCH))
    parser.add_argument("--gpu", default="h100-sxm", choices=sorted(PEAK_BF16), help="for the FLOP floor")
    parser.add_argument("--size", type=int, default=None, help="square side (default 1024; --tiny 64)")
    parser.add_argument("--steps", type=int, default=None, help="default: the model's (--tiny: 4)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--options", type=lambda v: {o.strip() for o in v.split(",") if o.strip()}, default=None,
                        help="only these option sets, by first word (engine,first_block,taylorseer,cache_dit,"
                             "compile,fp8_dynamic,int8,max_batch,ulysses); default: all")
    parser.add_argument("--no-http", dest="http", action="store_false",
                        help="skip the Z-Image request through a real server")
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = set(families) - set(BENCH)
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}; choose from {', '.join(BENCH)}")
    if args.check_full:
        return check_full(families)
    if args.tiny:
        from wanimage.engines.diffusers.tiny import tiny_cpu_speedups

        args.size, args.steps, device, dtype = args.size or 64, args.steps or 4, "cpu", torch.float32
        speedups = tiny_cpu_speedups()
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA GPU here: run with --tiny (CPU, tiny models) or --check-full")
        import contextlib

        args.size, device, dtype = args.size or 1024, "cuda", torch.bfloat16
        speedups = contextlib.nullcontext()
    with speedups:
        rows = [row for family in families for row in measure_family(family, args, device, dtype)]
    where = f"{torch.cuda.get_device_name()} vs {args.gpu} peak" if device == "cuda" else "CPU: no peak"
    print(f"{args.size}x{args.size}, {'tiny components, ' if args.tiny else ''}median of {args.repeats}")
    print_table(rows, None if args.tiny else PEAK_BF16[args.gpu], where)


if __name__ == "__main__":
    main()
