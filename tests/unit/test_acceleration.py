"""Acceleration options (engines/diffusers/acceleration.py) and batching, through DiffusersEngine on
tiny random-weight components (nothing downloaded): each option runs and changes what it should,
stays within a stated difference of the plain output at the same seed, and is refused with the
fix on a device that cannot run it."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from wanimage.core.job import make_job
from wanimage.engines.base import no_progress
from wanimage.engines.diffusers import FAMILIES, engines_from_configs
from wanimage.engines.diffusers.config import AccelerationError, EngineConfigError, parse_config
from wanimage.engines.diffusers.engine import DiffusersEngine
from wanimage.engines.diffusers.tiny import tiny_cpu_speedups
from wanimage.types import Mode

BASE = {"family": "qwen_image", "text_to_image": "tiny:qwen_image", "steps": 10, "true_cfg": 1.0,
        "max_generate_pixels": 64 * 64}
# Stated tolerances (pixels, 0-255), measured on these tiny models at 64x64, 10 steps:
CACHE_MAX_DIFF = 4  # first-block cache at threshold 0.5 runs the blocks on 2 of 10 steps: measured max 1
BATCH_MAX_DIFF = 1  # batched vs one call per image: float rounding only (measured max 0-1)
INT8_MAX_DIFF = 8  # int8 weight-only: measured max 1, mean 0.05


@pytest.fixture(scope="module", autouse=True)
def tiny_and_fast():
    with tiny_cpu_speedups():
        yield


def config(**overrides):
    return parse_config({"models": {"m": {**BASE, **overrides}}})["m"]


def engine(**overrides) -> DiffusersEngine:
    return DiffusersEngine("wan2.7-image", config(**overrides), FAMILIES["qwen_image"])


def generate(eng: DiffusersEngine, n=1, seed=7) -> list[np.ndarray]:
    job = make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, "a red apple on a table", 64, 64, n, seed)
    return [np.asarray(im.convert("RGB"), dtype=np.int16) for im in eng.generate(job, no_progress)]


@pytest.fixture(scope="module")
def plain():
    return generate(engine(), n=3)


def count_block_runs(eng: DiffusersEngine) -> list[int]:
    """Runs of the last transformer block's attention (a skipped block does not run it)."""
    runs = [0]
    block = eng.pipeline("text_to_image").transformer.transformer_blocks[-1]
    block.attn.register_forward_pre_hook(lambda *_: runs.__setitem__(0, runs[0] + 1))
    return runs


# ---------------------------------------------------------------------------- step caching


def test_first_block_cache_skips_blocks_within_the_stated_difference(plain):
    eng = engine(cache="first_block", cache_threshold=0.5)
    runs = count_block_runs(eng)
    image = generate(eng)[0]
    assert 0 < runs[0] < 10  # some of the 10 steps ran only the first block
    diff = np.abs(image - plain[0])
    assert diff.max() <= CACHE_MAX_DIFF
    assert diff.mean() > 0  # skipped blocks change the output a little


def test_taylorseer_cache_runs_and_stays_close(plain):
    image = generate(engine(cache="taylorseer", cache_interval=3, cache_warmup_steps=2))[0]
    assert np.abs(image - plain[0]).max() <= CACHE_MAX_DIFF


def test_cache_leaves_other_engines_alone(plain):
    generate(engine(cache="first_block", cache_threshold=0.5))
    assert np.array_equal(generate(engine())[0], plain[0])  # tiny modules are shared: hooks went on a copy


def test_cache_dit_skips_z_image_blocks_within_the_stated_difference():
    """cache-dit's DBCache covers the family diffusers' hooks do not (Z-Image)."""
    zimage = {"family": "zimage", "text_to_image": "tiny:zimage", "steps": 10, "max_generate_pixels": 64 * 64}

    def make(**keys):
        return DiffusersEngine("wan2.7-image", parse_config({"models": {"m": {**zimage, **keys}}})["m"],
                               FAMILIES["zimage"])

    reference = generate(make())[0]
    eng = make(cache="cache_dit", cache_threshold=0.5, cache_warmup_steps=2)
    runs = [0]
    last = eng.pipeline("text_to_image").transformer.layers[-1]
    last.attention.register_forward_pre_hook(lambda *_: runs.__setitem__(0, runs[0] + 1))
    image = generate(eng)[0]
    assert 0 < runs[0] < 10  # cached steps skip the blocks after the first
    assert 0 < np.abs(image - reference).max() <= CACHE_MAX_DIFF


def test_cache_dit_model_with_a_from_pipe_sibling_runs_both_roles(plain):
    """The refine pipeline shares the cached transformer (from_pipe): both calls run."""
    eng = engine(cache="cache_dit", cache_threshold=0.5, cache_warmup_steps=2, refine="tiny:qwen_image",
                 refine_strength=0.5, max_generate_pixels=48 * 48)
    assert len(generate(eng)) == 1


def test_cache_values_are_checked_where_the_config_is_parsed():
    with pytest.raises(EngineConfigError, match="cache: one of none, first_block, taylorseer, cache_dit"):
        config(cache="teacache")
    with pytest.raises(EngineConfigError, match="cache_threshold"):
        config(cache="first_block", cache_threshold=0)


# ---------------------------------------------------------------------------- compilation


def test_regional_compile_compiles_the_repeated_blocks_and_warms_up(plain, caplog):
    with caplog.at_level(logging.INFO, logger="wanimage.engines.diffusers.engine"):
        eng = engine(compile=True, compile_backend="eager", preload=True, warmup_sizes=["64*64"])
    transformer = eng.pipeline("text_to_image").transformer
    assert all(b._compiled_call_impl is not None for b in transformer.transformer_blocks)
    assert getattr(transformer, "_compiled_call_impl", None) is None  # regional: not the whole model
    assert "compiled for 64x64" in caplog.text
    assert np.array_equal(generate(eng)[0], plain[0])  # the eager backend changes no arithmetic


def test_warmup_sizes_need_compile_and_preload():
    with pytest.raises(EngineConfigError, match="set compile = true and preload = true"):
        config(warmup_sizes=["1024*1024"])
    with pytest.raises(EngineConfigError, match="1024\\*1024"):
        config(compile=True, preload=True, warmup_sizes=["big"])


# ---------------------------------------------------------------------------- quantization


def test_int8_weight_only_loads_and_runs_on_cpu(plain):
    eng = engine(quantize="int8")
    linear = eng.pipeline("text_to_image").transformer.transformer_blocks[0].attn.to_q
    assert "Int8" in type(linear.weight).__name__  # torchao's int8 weight tensor
    image = generate(eng)[0]
    assert np.abs(image - plain[0]).max() <= INT8_MAX_DIFF


def test_quantize_per_component_table():
    eng = engine(quantize={"transformer": "none", "text_encoder": "int8"})
    pipe = eng.pipeline("text_to_image")
    assert "Int8" not in type(pipe.transformer.transformer_blocks[0].attn.to_q.weight).__name__
    assert any("Int8" in type(m.weight).__name__ for m in pipe.text_encoder.modules()
               if isinstance(m, torch.nn.Linear))
    with pytest.raises(EngineConfigError, match="unknown component 'unet_2'"):
        config(quantize={"unet_2": "int8"})
    with pytest.raises(EngineConfigError, match=r"quantize\.vae: only backend = \"openvino\" quantizes the VAE"):
        config(quantize={"vae": "int8"})
    with pytest.raises(EngineConfigError, match="int8, int8_dynamic, fp8, fp8_dynamic"):
        config(quantize="int4")


@pytest.mark.parametrize("kind", ["fp8", "fp8_dynamic"])
def test_fp8_is_refused_on_cpu_with_the_alternative(kind):
    with pytest.raises(AccelerationError, match="FP8 runs on NVIDIA GPUs .* use \"int8\" there"):
        engine(quantize=kind)


# ---------------------------------------------------------------------------- attention backend


def test_flash_attention_is_refused_on_cpu_naming_the_package():
    with pytest.raises(AccelerationError, match="runs on CUDA GPUs and this model runs on cpu") as err:
        engine(attention_backend="flash")
    assert "flash-attn" in str(err.value)


def test_missing_attention_package_is_named_even_on_a_gpu_device():
    from wanimage.engines.diffusers.acceleration import check_device

    with pytest.raises(AccelerationError, match="sageattention package is not installed"):
        check_device(config(attention_backend="sage", device="cuda:0"), "cuda:0", "models.m")


def test_unknown_attention_backend_lists_the_known_ones():
    with pytest.raises(AccelerationError, match="unknown backend 'fast'.*native"):
        engine(attention_backend="fast")


def test_native_attention_backend_runs_on_cpu(plain):
    eng = engine(attention_backend="_native_math")
    assert np.abs(generate(eng)[0] - plain[0]).max() <= BATCH_MAX_DIFF


def test_a_ray_driver_without_gpus_defers_the_device_checks_to_the_replicas(tmp_path):
    """`serve --ray` builds the factories on the driver (and the API replicas), which may have
    no GPU: FP8 for cuda:0 is not refused there, but still where the engine is built."""
    from wanimage.config import Settings
    from wanimage.engines.factories import engine_factories

    path = tmp_path / "engines.toml"
    path.write_text('[models."wan2.7-image"]\nfamily = "qwen_image"\ntext_to_image = "tiny:qwen_image"\n'
                    'device = "cuda:0"\nquantize = "fp8"\n')
    settings = Settings(engine="diffusers", engine_config=path)
    with pytest.raises(SystemExit, match="FP8"):
        engine_factories(settings)  # one machine: start-up stops with the fix
    factory = engine_factories(settings, hardware_checks=False)["wan2.7-image"]
    with pytest.raises(AccelerationError, match="FP8"):
        factory()  # what a replica on this GPU-less machine would say


def test_one_models_attention_backend_is_not_every_models_default():
    """diffusers' set_attention_backend also sets the process-wide default; another model without
    a backend of its own (a context-parallel one refuses "_native_math") must not inherit it."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    before = _AttentionBackendRegistry._active_backend
    eng = engine(attention_backend="_native_math")
    generate(eng)
    assert _AttentionBackendRegistry._active_backend == before
    processors = [m.processor for m in eng.pipeline("text_to_image").transformer.modules() if hasattr(m, "processor")]
    assert processors and {getattr(p._attention_backend, "value", p._attention_backend) for p in processors} == {
        "_native_math"}  # while this model keeps its own


def test_start_up_refuses_what_the_device_cannot_run():
    """What engines/factories.py turns into a start-up message (SystemExit) for `wanimage serve`."""
    with pytest.raises(EngineConfigError, match="models.m.attention_backend"):
        engines_from_configs({"m": config(attention_backend="flash")}, "cpu")


# ---------------------------------------------------------------------------- context parallelism


def test_context_parallel_on_a_cpu_needs_the_cpu_ranks_listed():
    """The ranks themselves are tested in test_context_parallel.py."""
    with pytest.raises(AccelerationError, match="runs on 2 CUDA GPUs.*WANIMAGE_DEVICES=cpu,cpu"):
        engine(ulysses_degree=2)
    with pytest.raises(EngineConfigError, match="ulysses_degree and ring_degree"):
        config(ring_degree=0)


# ---------------------------------------------------------------------------- batching


def test_batched_equals_unbatched_within_tolerance(plain):
    eng = engine(max_batch=2)
    pipe = eng.pipeline("text_to_image")
    calls = []
    original = type(pipe).__call__

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("num_images_per_prompt", 1))
        return original(self, *args, **kwargs)

    type(pipe).__call__, restore = counting, original
    try:
        images = generate(eng, n=3)
    finally:
        type(pipe).__call__ = restore
    assert calls == [2, 1]  # 3 images in calls of at most max_batch
    for batched, alone in zip(images, plain, strict=True):
        assert np.abs(batched - alone).max() <= BATCH_MAX_DIFF


def test_image_i_of_a_batch_is_reproducible_alone_with_seed_plus_i(plain):
    alone = generate(engine(), n=1, seed=7 + 2)[0]
    assert np.abs(alone - plain[2]).max() == 0  # unbatched: exact
    assert np.abs(generate(engine(max_batch=3), n=3)[2] - alone).max() <= BATCH_MAX_DIFF


def test_max_batch_must_be_positive():
    with pytest.raises(EngineConfigError, match="max_batch"):
        config(max_batch=0)


# ---------------------------------------------------------------------------- several devices


def test_devices_give_one_engine_per_device_running_in_parallel(tmp_path):
    """WANIMAGE_DEVICES=cpu,cpu: each model id has one engine (own pipelines) per device, and two
    jobs run at the same time: job A's steps wait for job B to have started."""
    import threading

    from wanimage.config import Settings
    from wanimage.engines.devices import DeviceSpread
    from wanimage.engines.factories import engine_factories

    path = tmp_path / "engines.toml"
    path.write_text('[models."wan2.7-image"]\nfamily = "qwen_image"\ntext_to_image = "tiny:qwen_image"\n'
                    "steps = 3\ntrue_cfg = 1.0\nmax_generate_pixels = 4096\n")
    settings = Settings(engine="diffusers", engine_config=path, devices="cpu, cpu")
    assert settings.device_list() == ["cpu", "cpu"]
    spread = engine_factories(settings)["wan2.7-image"]()
    assert isinstance(spread, DeviceSpread) and len(spread.engines) == 2
    first, second = (e.pipeline("text_to_image") for e in spread.engines)
    assert first is not second and first.transformer is not None
    b_started = threading.Event()
    outcome = {}

    def run(name, wait_for=None):
        def progress(fraction, preview=None):
            if wait_for is None:
                b_started.set()
            elif not wait_for.wait(timeout=20):
                outcome["serialized"] = True
        job = make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, "an apple", 64, 64, 1, 1)
        outcome[name] = spread.generate(job, progress)

    a = threading.Thread(target=run, args=("a", b_started))
    a.start()
    run("b")
    a.join()
    assert "serialized" not in outcome and len(outcome["a"]) == len(outcome["b"]) == 1
    described = spread.describe()
    assert described["devices"] == ["cpu", "cpu"] and described["family"] == "qwen_image"


def test_ray_replicas_reserve_the_models_parallel_degree():
    from wanimage.engines.base import EngineFactory
    from wanimage.runners.ray_serve import ScalingConfig, replica_gpus

    plain_factory = engines_from_configs({"m": config()}, "cpu")["m"]
    assert plain_factory.gpus == 1
    assert replica_gpus(plain_factory, ScalingConfig(num_gpus=1)) == 1

    def not_built():
        raise AssertionError("not built")

    parallel_factory = EngineFactory(not_built, gpus=4)  # what a model with ulysses_degree = 2, ring_degree = 2 declares
    assert replica_gpus(parallel_factory, ScalingConfig(num_gpus=1)) == 4
    assert replica_gpus(parallel_factory, ScalingConfig(num_gpus=0)) == 0  # a CPU deployment


def test_cache_is_refused_for_families_without_diffusers_cache_hooks():
    with pytest.raises(EngineConfigError, match="no step-cache hooks for the zimage family"):
        parse_config({"models": {"m": {"family": "zimage", "text_to_image": "tiny:zimage", "cache": "first_block"}}})


# ---------------------------------------------------------------------------- the benchmark


def test_gpu_e2e_bench_runs_with_tiny_models_and_builds_the_full_configs():
    """bench/gpu_e2e.py keeps working without a GPU: --tiny times every option set against plain
    diffusers; --check-full builds the full-size pipelines on the meta device."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    bench = [sys.executable, str(root / "bench" / "gpu_e2e.py")]
    tiny = subprocess.run([*bench, "--tiny", "--families", "qwen_image,zimage", "--repeats", "1", "--steps", "2"],
                          capture_output=True, text=True, timeout=400, cwd=root)
    assert tiny.returncode == 0, tiny.stderr[-2000:]
    sets = ["plain diffusers", "engine", "first_block 0.08", "taylorseer 5", "cache_dit 0.08", "compile",
            "compile + first_block", "int8 transformer", "max_batch 2 (n=2)", "ulysses 2 (2 devices)"]
    rows = [line.split(" | ") for line in tiny.stdout.splitlines() if line.startswith("| qwen_image |")]
    assert [r[1] for r in rows] == sets and all(float(r[2]) > 0 for r in rows)
    rows = {r[1]: r[2] for r in (line.split(" | ") for line in tiny.stdout.splitlines())
            if r[0] == "| zimage"}
    assert list(rows) == [*sets, "engine via HTTP (768x768, sync)"]  # Z-Image also through a real server
    assert rows["first_block 0.08"].startswith("refused: ") and float(rows["cache_dit 0.08"]) > 0
    assert "no context-parallel plan for the zimage family" in rows["ulysses 2 (2 devices)"]
    assert float(rows["engine via HTTP (768x768, sync)"]) > 0
    full = subprocess.run([*bench, "--check-full", "--families", "zimage"], capture_output=True, text=True,
                          timeout=300, cwd=root)
    assert full.returncode == 0, full.stderr[-2000:]
    assert "zimage: transformer 6.15 B" in full.stdout


def test_device_map_needs_several_gpus():
    with pytest.raises(AccelerationError, match="spreads a model's components over several GPUs.*offload = \"model\""):
        engine(device_map="balanced")
    with pytest.raises(AccelerationError, match="\"balanced\""):
        engine(device_map="auto")
