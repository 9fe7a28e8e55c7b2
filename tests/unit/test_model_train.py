"""The built-in model's training loop on a tiny in-code dataset: checkpoints it resumes from,
exported weights it can go on from when the checkpoint is gone, and its learning-rate schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wanimage.model.train import TrainConfig, learning_rate, train
from wanimage.model.weights import load_weights


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Four random 'icons' with two captions each, in the files `wanimage data build` writes."""
    root = tmp_path_factory.mktemp("builtin-data")
    rng = np.random.default_rng(0)
    np.save(root / "sprites32.npy", rng.integers(0, 256, (4, 32, 32, 4), dtype=np.uint8))
    np.save(root / "sprites256.npy", rng.integers(0, 256, (4, 256, 256, 4), dtype=np.uint8))
    np.savez(root / "captions.npz", emb=rng.standard_normal((8, 16, 384)).astype(np.float16),
             mask=np.ones((8, 16), dtype=bool), icon=np.repeat(np.arange(4), 2))
    return root


def config(data, run_dir, **kw) -> TrainConfig:
    return TrainConfig(data_dir=data, run_dir=run_dir, preset="T", batch=4, up_batch=2, log_every=1,
                       threads=1, bf16=False, **kw)


def logged_steps(run_dir) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_train_resumes_from_its_checkpoint_and_exports(tiny_data, tmp_path):
    run, weights = tmp_path / "run", tmp_path / "w.safetensors"
    assert train(config(tiny_data, run, export=weights, max_steps=3)) == {"steps": 3, "step": 3}
    assert (run / "ckpt.pt").exists() and list((run / "samples").glob("step_*.png"))
    assert train(config(tiny_data, run, export=weights, max_steps=5)) == {"steps": 2, "step": 5}
    assert logged_steps(run) == [1, 2, 3, 4, 5]
    *_, info = load_weights(weights)
    assert info["step"] == 5 and info["samples"] == 20


def test_without_a_checkpoint_training_goes_on_from_exported_weights(tiny_data, tmp_path):
    first, weights = tmp_path / "first", tmp_path / "w.safetensors"
    train(config(tiny_data, first, export=weights, max_steps=4))
    # a new machine: the checkpoint is gone, the shipped weights are there
    second = tmp_path / "second"
    assert train(config(tiny_data, second, init_from=weights, export=weights, max_steps=6)) == {"steps": 2, "step": 6}
    assert logged_steps(second) == [5, 6]
    *_, info = load_weights(weights)
    assert info["step"] == 6


def test_learning_rate_warms_up_holds_then_cools_down_over_the_last_minutes():
    cfg = TrainConfig(lr=1e-3, warmup=10, max_minutes=100, cooldown_minutes=20)
    assert learning_rate(cfg, 0, 0) == pytest.approx(1e-4)
    assert learning_rate(cfg, 9, 1) == pytest.approx(1e-3)
    assert learning_rate(cfg, 500, 80) == pytest.approx(1e-3)
    assert learning_rate(cfg, 900, 90) == pytest.approx(1e-3 * 0.55)
    assert learning_rate(cfg, 999, 100) == pytest.approx(1e-4)
    assert learning_rate(TrainConfig(lr=1e-3, warmup=1), 10**6, 10**6) == pytest.approx(1e-3)


def test_training_curves_plot_the_log(tiny_data, tmp_path):
    from PIL import Image

    from wanimage.model.report import plot_curves

    run = tmp_path / "run"
    train(config(tiny_data, run, max_steps=3))
    out = plot_curves(run / "log.jsonl", tmp_path / "curves.png")
    assert Image.open(out).size == (900, 420)
