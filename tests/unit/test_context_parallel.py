"""Context parallelism of one image over two CPU ranks (engines/diffusers/parallel.py, ranks.py):
diffusers' Ulysses attention over gloo, with a real follower process, on tiny random-weight
Qwen-Image. The image equals the unparallel one at the same seed, each rank runs half of the
image tokens, a cancel stops every rank, a follower that dies fails the call with its rank named
(no hang) and the next call starts the ranks again; what cannot run is refused with the fix."""

from __future__ import annotations

import multiprocessing
import os
import signal

import numpy as np
import pytest
from PIL import Image

from wanimage.core.job import make_job
from wanimage.engines.base import Canceled, no_progress
from wanimage.engines.diffusers import FAMILIES, engines_from_configs
from wanimage.engines.diffusers.config import AccelerationError, EngineConfigError, parse_config
from wanimage.engines.diffusers.engine import DiffusersEngine
from wanimage.engines.diffusers.ranks import ParallelRankFailed
from wanimage.engines.diffusers.tiny import tiny_cpu_speedups
from wanimage.types import Mode

BASE = {"family": "qwen_image", "text_to_image": "tiny:qwen_image", "edit": "tiny:qwen_image", "steps": 4,
        "true_cfg": 1.0, "max_generate_pixels": 64 * 64}
# Stated tolerance (pixels, 0-255): Ulysses reorders no sum inside attention, only where the heads
# are computed; measured max 0 on these tiny models at 64x64, 4 steps (float32 max 1e-4 / 255)
PARALLEL_MAX_DIFF = 1


def config(**overrides):
    return parse_config({"models": {"m": {**BASE, **overrides}}})["m"]


def generate(eng, seed=7, n=1, progress=no_progress, images=()) -> list[np.ndarray]:
    mode = Mode.EDIT if images else Mode.TEXT_TO_IMAGE
    job = make_job("wan2.7-image", mode, "a red apple on a table", 64, 64, n, seed, images=list(images))
    return [np.asarray(im.convert("RGB"), dtype=np.int16) for im in eng.generate(job, progress)]


REFERENCE = Image.radial_gradient("L").resize((64, 64)).convert("RGB")


@pytest.fixture(scope="module")
def speedups():
    with tiny_cpu_speedups():
        yield


@pytest.fixture(scope="module")
def plain_engine(speedups):
    return DiffusersEngine("m", config(), FAMILIES["qwen_image"])


@pytest.fixture(scope="module")
def plain(plain_engine):
    return generate(plain_engine, n=2)


@pytest.fixture(scope="module")
def parallel(speedups):
    """One ParallelEngine over cpu,cpu for the module (starting the follower takes seconds)."""
    factory = engines_from_configs({"m": config(ulysses_degree=2)}, "cpu", devices=["cpu", "cpu"])["m"]
    engine = factory()
    yield engine
    engine.close()


def image_tokens_seen(engine) -> list[int]:
    """Sequence lengths of the image stream reaching rank 0's attention (after diffusers' split)."""
    seen: list[int] = []
    attention = engine.pipeline("text_to_image").transformer.transformer_blocks[0].attn
    attention.register_forward_pre_hook(lambda _m, _a, kw: seen.append(kw["hidden_states"].shape[1]),
                                        with_kwargs=True)
    return seen


@pytest.mark.slow
def test_ulysses_over_two_cpu_ranks_gives_the_unparallel_image(plain, parallel):
    seen = image_tokens_seen(parallel)
    images = generate(parallel, n=2)
    for got, want in zip(images, plain, strict=True):
        assert np.abs(got - want).max() <= PARALLEL_MAX_DIFF
    # 64x64 -> 16x16 tiny latents -> 64 packed tokens, of which rank 0 runs half at every step
    assert seen and set(seen) == {32}
    described = parallel.describe()
    assert described["devices"] == ["cpu", "cpu"] and described["device"] == "cpu,cpu"
    assert described["context_parallel"] == {"ulysses_degree": 2, "ring_degree": 1, "ranks": 2, "running": True}


@pytest.mark.slow
def test_an_edit_sends_its_reference_image_to_every_rank(plain_engine, parallel):
    want = generate(plain_engine, images=[REFERENCE])[0]
    assert np.abs(generate(parallel, images=[REFERENCE])[0] - want).max() <= PARALLEL_MAX_DIFF


@pytest.mark.slow
def test_cancel_stops_every_rank_and_the_group_stays_in_step(plain, parallel):
    steps = []

    def cancel_at_second_step(fraction, preview=None):
        steps.append(fraction)
        if len(steps) == 2:
            raise Canceled

    with pytest.raises(Canceled):
        generate(parallel, progress=cancel_at_second_step)
    assert len(steps) == 2  # the remaining steps were skipped on rank 0 (and the follower: next call works)
    assert np.abs(generate(parallel)[0] - plain[0]).max() <= PARALLEL_MAX_DIFF


@pytest.mark.slow
def test_a_follower_that_dies_fails_the_call_naming_it_then_the_ranks_restart(plain, parallel):
    follower = parallel.ranks.processes[0]

    def kill_follower_mid_call(fraction, preview=None):
        if follower.is_alive():
            os.kill(follower.pid, signal.SIGKILL)
            follower.join(10)

    with pytest.raises(ParallelRankFailed, match=r"rank 1 \(cpu\) exited with code -9"):
        generate(parallel, progress=kill_follower_mid_call)
    assert not parallel.ranks.started  # taken down, not hanging
    assert np.abs(generate(parallel)[0] - plain[0]).max() <= PARALLEL_MAX_DIFF  # started afresh
    assert parallel.ranks.processes[0].pid != follower.pid


@pytest.mark.slow
def test_an_error_on_a_follower_comes_back_with_its_text(plain, parallel):
    """A call only the follower runs (rank 0 sends it, then waits): its exception is the message."""
    parallel.pipeline("text_to_image")
    parallel.ranks.send(("call", "text_to_image", {"prompt": "x", "num_inference_steps": "many"}))
    with pytest.raises(ParallelRankFailed, match=r"rank 1 \(cpu\) failed: TypeError: "):
        parallel.ranks.collect("the pipeline call")
    assert not parallel.ranks.started
    assert np.abs(generate(parallel)[0] - plain[0]).max() <= PARALLEL_MAX_DIFF


@pytest.mark.slow
def test_close_stops_the_followers(parallel):
    """Last of the module's parallel tests: EngineRegistry.close() at app shutdown does this."""
    followers = list(parallel.ranks.processes)
    parallel.close()
    assert followers and not any(p.is_alive() for p in followers)
    import torch.distributed as dist

    assert not dist.is_initialized()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["flux", "flux2", "wan"])
def test_every_family_with_a_context_parallel_plan_runs_over_two_cpu_ranks(speedups, family):
    raw = {"family": family, "text_to_image": f"tiny:{family}", "steps": 3, "max_generate_pixels": 64 * 64,
           **({"call_kwargs": {"text_encoder_out_layers": [1]}} if family == "flux2" else {})}
    cfg = parse_config({"models": {"m": raw}})["m"]
    want = generate(DiffusersEngine("m", cfg, FAMILIES[family]))[0]
    parallel_cfg = parse_config({"models": {"m": {**raw, "ulysses_degree": 2}}})["m"]
    engine = engines_from_configs({"m": parallel_cfg}, "cpu", devices=["cpu", "cpu"])["m"]()
    try:
        assert np.abs(generate(engine)[0] - want).max() <= PARALLEL_MAX_DIFF
    finally:
        engine.close()


@pytest.mark.slow
def test_a_hung_follower_fails_the_call_within_the_timeout(speedups):
    """A follower that stops answering (SIGSTOP) mid-call: the collective's timeout ends the call."""
    import time

    engine = engines_from_configs({"m": config(ulysses_degree=2, parallel_timeout_seconds=3, preload=True)}, "cpu",
                                  devices=["cpu", "cpu"])["m"]()
    follower = engine.ranks.processes[0]

    def freeze_follower(fraction, preview=None):
        if follower.is_alive() and follower.pid not in frozen:
            os.kill(follower.pid, signal.SIGSTOP)
            frozen.append(follower.pid)

    frozen: list[int] = []
    began = time.monotonic()
    try:
        with pytest.raises(ParallelRankFailed, match=r"Timed out.*not answering: 1 \(cpu\)"):
            generate(engine, progress=freeze_follower)
        assert time.monotonic() - began < 30
        assert not follower.is_alive()  # killed, not left stopped
    finally:
        engine.close()


@pytest.mark.slow
def test_ranks_that_cannot_start_leave_the_model_unavailable_with_the_reason(speedups, tmp_path):
    from wanimage.engines.registry import EngineRegistry
    from wanimage.errors import ModelUnavailable

    missing = str(tmp_path / "no-such-checkpoint")
    factory = engines_from_configs({"m": config(ulysses_degree=2, text_to_image=missing)}, "cpu",
                                   devices=["cpu", "cpu"])["m"]
    with pytest.raises(ModelUnavailable, match=r"rank 1 \(cpu\) failed: FileNotFoundError: .*no-such-checkpoint"):
        EngineRegistry({"m": factory}).get("m")
    import torch.distributed as dist

    assert not dist.is_initialized()  # the group is gone, the follower stopped
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("wanimage-rank")]


# ---------------------------------------------------------------------------- refused, with the fix


def test_cpu_parallelism_needs_one_cpu_rank_listed_per_degree():
    with pytest.raises(AccelerationError, match="WANIMAGE_DEVICES=cpu,cpu"):
        engines_from_configs({"m": config(ulysses_degree=2)}, "cpu")
    with pytest.raises(AccelerationError, match="WANIMAGE_DEVICES=cpu,cpu"):
        DiffusersEngine("m", config(ulysses_degree=2), FAMILIES["qwen_image"])
    with pytest.raises(EngineConfigError, match="ulysses_degree and ring_degree"):
        config(ring_degree=0)


def test_ring_attention_is_refused_on_a_cpu_with_the_reason():
    with pytest.raises(AccelerationError, match="ring attention needs an attention backend that returns the log-sum-exp"):
        engines_from_configs({"m": config(ring_degree=2)}, "cpu", devices=["cpu", "cpu"])


def test_cuda_parallelism_without_gpus_names_what_is_missing():
    with pytest.raises(AccelerationError, match="needs 2 CUDA GPUs; this machine has 0"):
        engines_from_configs({"m": config(ulysses_degree=2, device="cuda")}, "cpu")


def test_families_without_a_context_parallel_plan_and_idle_unloading_are_refused():
    with pytest.raises(EngineConfigError, match="no context-parallel plan for the zimage family"):
        parse_config({"models": {"m": {"family": "zimage", "text_to_image": "tiny:zimage", "ulysses_degree": 2}}})
    with pytest.raises(EngineConfigError, match="idle_unload_seconds with context parallelism"):
        config(ulysses_degree=2, idle_unload_seconds=60)


def test_one_context_parallel_model_per_server_process():
    configs = {"wan2.7-image": config(ulysses_degree=2), "wan2.7-image-pro": config(ulysses_degree=2)}
    with pytest.raises(EngineConfigError, match="one model per server process"):
        engines_from_configs(configs, "cpu", devices=["cpu", "cpu"])


def test_a_parallel_model_is_one_engine_over_the_devices_not_one_per_device():
    from wanimage.engines.devices import on_devices

    factories = on_devices(["cpu", "cpu"], lambda d: engines_from_configs(
        {"wan2.7-image": config(ulysses_degree=2), "wan2.7-image-pro": config()}, d, devices=["cpu", "cpu"]))
    assert factories["wan2.7-image"].spans_devices
    assert factories["wan2.7-image"].gpus == 2
    assert not factories["wan2.7-image-pro"].spans_devices  # spread, one engine per device


def test_one_kind_of_parallelism_takes_prompts_of_any_length():
    """diffusers' "anything" modes: Qwen-Image's prompt embeddings are as long as the prompt."""
    from wanimage.engines.diffusers.parallel import context_parallel_config

    ulysses = context_parallel_config(config(ulysses_degree=2))
    ring = context_parallel_config(config(ring_degree=4))
    both = context_parallel_config(config(ulysses_degree=2, ring_degree=2))
    assert (ulysses.ulysses_anything, ulysses.ring_anything) == (True, False)
    assert (ring.ulysses_anything, ring.ring_anything) == (False, True)
    assert (both.ulysses_anything, both.ring_anything, both.mesh_shape) == (False, False, (2, 2))


def test_the_context_parallel_families_are_those_whose_denoiser_has_a_plan():
    import diffusers

    from wanimage.engines.diffusers.config import CP_FAMILIES

    denoisers = {"qwen_image": "QwenImageTransformer2DModel", "flux": "FluxTransformer2DModel",
                 "flux2": "Flux2Transformer2DModel", "wan": "WanTransformer3DModel",
                 "zimage": "ZImageTransformer2DModel", "sdxl": "UNet2DConditionModel", "sd": "UNet2DConditionModel"}
    assert set(denoisers) == set(FAMILIES)
    with_plan = {f for f, cls in denoisers.items() if getattr(getattr(diffusers, cls), "_cp_plan", None)}
    assert with_plan == set(CP_FAMILIES)
