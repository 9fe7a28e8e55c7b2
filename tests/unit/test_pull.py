"""`wanimage pull`: the file selection against published repository trees (tests/fixtures/hub/),
and whole pulls of a tiny Stable Diffusion pipeline saved with `save_pretrained`, through the
real huggingface_hub client against a Hub on loopback (tests/support/fake_hub.py): HF_ENDPOINT,
resume after a cut, the free-disk check, gated and missing repositories, `--to DIR` then
`--from DIR`, and the pulled copy serving images. Nothing leaves the machine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.fake_hub import FakeHub
from tests.support.tiny_marian import tiny_marian
from wanimage.cli import main
from wanimage.engines.diffusers.models_dir import MANIFEST, ModelsDir
from wanimage.engines.diffusers.presets import REPOS
from wanimage.engines.diffusers.repo_files import NotAPipeline, components, select_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hub"
TREES = sorted(p for p in FIXTURES.glob("*.json") if json.loads(p.read_text())["model_index"])  # pipelines
OTHER_FORMATS = (".bin", ".ckpt", ".msgpack", ".onnx", ".onnx_data", ".pt", ".pth", ".gguf", ".xml")


def tree(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# ----------------------------------------------------------------------------- selection


@pytest.mark.parametrize("path", TREES, ids=lambda p: p.stem)
def test_selection_keeps_one_format_one_variant_and_only_the_pipeline_s_folders(path):
    t = json.loads(path.read_text())
    variant = REPOS[t["repo"]].variant
    selected = select_files(t["files"], t["model_index"], variant)
    folders = {f.split("/")[0] for f in selected if "/" in f}
    assert folders <= set(components(t["model_index"]))
    assert all("/" in f or f in ("model_index.json", "README.md", "LICENSE", "LICENSE.md") for f in selected)
    assert not [f for f in selected if f.endswith(OTHER_FORMATS) or f.rsplit("/", 1)[-1].startswith("openvino_")]
    weights = [f for f in selected if f.endswith(".safetensors")]
    for folder in {f.split("/")[0] for f in weights}:
        names = [f for f in weights if f.startswith(folder + "/")]
        tagged = [f for f in names if f".{variant}." in f or f".{variant}-" in f] if variant else []
        assert not variant or tagged == names, f"{folder}: mixed variants {names}"
        assert variant or not [f for f in names if ".fp16" in f]
    for comp in components(t["model_index"]):  # every component that has weights keeps them
        if any(f.startswith(comp + "/") and f.endswith(".safetensors") for f in t["files"]):
            assert any(f.startswith(comp + "/") for f in weights), comp


def test_sd_turbo_fp16_selection_exactly():
    t = tree("stabilityai--sd-turbo")
    assert select_files(t["files"], t["model_index"], "fp16") == [
        "LICENSE.md", "README.md", "model_index.json", "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json", "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"]
    plain = select_files(t["files"], t["model_index"], None)
    assert "unet/diffusion_pytorch_model.safetensors" in plain and not [f for f in plain if "fp16" in f]
    assert "sd_turbo.safetensors" not in plain  # the single-file original at the root


def test_sharded_weights_come_with_their_index_and_safetensors_win_over_bin():
    qwen = tree("Qwen--Qwen-Image")
    picked = select_files(qwen["files"], qwen["model_index"])
    shards = [f for f in picked if f.startswith("transformer/diffusion_pytorch_model-")]
    assert len(shards) == 9 and "transformer/diffusion_pytorch_model.safetensors.index.json" in picked
    inpaint = tree("diffusers--stable-diffusion-xl-1.0-inpainting-0.1")
    picked = select_files(inpaint["files"], inpaint["model_index"], "fp16")
    assert [f for f in picked if f.startswith("unet/")] == ["unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors"]
    base = tree("stabilityai--stable-diffusion-xl-base-1.0")
    picked = select_files(base["files"], base["model_index"], "fp16")
    assert not {"vae_1_0", "vae_decoder", "vae_encoder"} & {f.split("/")[0] for f in picked}
    assert sum(base["files"][f] for f in picked) < sum(base["files"].values()) / 10


def test_a_repository_without_model_index_is_refused():
    with pytest.raises(NotAPipeline, match="model_index.json"):
        select_files(["flux1-dev.safetensors", "ae.safetensors"], None)


# ----------------------------------------------------------------------------- pulls


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    """A tiny SD pipeline as a Hub repository holds one: plain and fp16 safetensors, .bin
    copies, and a single-file checkpoint at the root that no pipeline loads."""
    from diffusers import StableDiffusionPipeline

    from wanimage.engines.diffusers.tiny import tiny_pipeline

    root = tmp_path_factory.mktemp("hub") / "sd-turbo"
    pipe = tiny_pipeline(StableDiffusionPipeline, "sd")
    pipe.save_pretrained(root, variant="fp16")
    pipe.save_pretrained(root)
    pipe.save_pretrained(root, safe_serialization=False)
    (root / "sd_turbo.safetensors").write_bytes(b"\0" * 50_000)
    return root


@pytest.fixture(scope="module")
def taesd_repo(tmp_path_factory) -> Path:
    """madebyollin/taesd as the Hub holds it: the diffusers copy (safetensors and .bin) beside the
    original-format encoder and decoder files, which `from_pretrained` does not read."""
    from wanimage.engines.diffusers.tiny import tiny_component

    root = tmp_path_factory.mktemp("hub") / "taesd"
    vae = tiny_component("taesd", "vae")
    vae.save_pretrained(root)
    vae.save_pretrained(root, safe_serialization=False)
    for half in ("encoder", "decoder"):
        (root / f"taesd_{half}.safetensors").write_bytes(b"\0" * 20_000)
    (root / "README.md").write_text("# TAESD\n")
    return root


@pytest.fixture
def hub(tiny_repo, taesd_repo, monkeypatch):
    import huggingface_hub.constants

    translator = tiny_marian(tiny_repo.parent / "opus-mt-zh-en") if not (tiny_repo.parent / "opus-mt-zh-en").exists() \
        else tiny_repo.parent / "opus-mt-zh-en"
    running = FakeHub({"stabilityai/sd-turbo": tiny_repo, "black-forest-labs/FLUX.1-dev": tiny_repo,
                       "Helsinki-NLP/opus-mt-zh-en": translator, "madebyollin/taesd": taesd_repo},
                      gated={"black-forest-labs/FLUX.1-dev"}).start()
    monkeypatch.setenv("HF_ENDPOINT", running.url)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 4096)  # small files resume too
    yield running
    running.stop()


def pull(*args: str) -> int:
    return main(["--log-level", "error", "pull", *args])


def test_pull_to_dir_then_from_dir_round_trips_and_serves_images(hub, tiny_repo, tmp_path, capsys, monkeypatch):
    """With `quantize = "none"` from the engine config the pull and the engine read: one conversion
    child, no calibration (the calibrated kinds' pull is test_openvino_backend.py's int8_hybrid test)."""
    carry, models = tmp_path / "carry", tmp_path / "models"
    overrides = tmp_path / "engines.toml"
    overrides.write_text('[defaults]\nquantize = "none"\n')
    monkeypatch.setenv("WANIMAGE_ENGINE_CONFIG", str(overrides))
    assert pull("sd-turbo", "--to", str(carry)) == 0
    out = capsys.readouterr().out
    assert f"from {hub.url}" in out and "variant fp16" in out and f"--from {carry}" in out
    folder = carry / "stabilityai--sd-turbo"
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in got and "sd_turbo.safetensors" not in got
    assert not [f for f in got if f.endswith(".bin") or f.endswith("model.safetensors")], got  # fp16 only
    manifest = json.loads((folder / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(f for f in got if f != MANIFEST)
    taesd = json.loads((carry / "madebyollin--taesd" / MANIFEST).read_text())  # pulled with the preset
    assert sorted(taesd["files"]) == ["README.md", "config.json", "diffusion_pytorch_model.safetensors"]

    assert pull("sd-turbo", "--from", str(carry), "--models-dir", str(models)) == 0
    out = capsys.readouterr().out
    assert "installed" in out
    # the preset runs on OpenVINO here: its IR is made now, in a child process, not at the server's first start
    assert "openvino: converting unet, text_encoder of" in out and "openvino: converted in" in out
    ir = models / "stabilityai--sd-turbo" / ".cache" / "openvino"
    assert sorted(p.name.split("-")[0] for p in ir.iterdir()) == ["text_encoder", "unet"]
    assert ModelsDir(models).status("stabilityai/sd-turbo").on_disk
    assert pull("sd-turbo", "--models-dir", str(models)) == 0  # nothing to fetch or convert again
    out = capsys.readouterr().out
    assert "already on disk" in out and "converting" not in out

    from wanimage.core.job import make_job
    from wanimage.engines.base import no_progress
    from wanimage.engines.diffusers import FAMILIES
    from wanimage.engines.diffusers.engine import DiffusersEngine
    from wanimage.engines.diffusers.preset_config import preset_configs
    from wanimage.types import Mode

    cfg = preset_configs("sd-turbo", models, models, overrides)["wan2.7-image"]
    engine = DiffusersEngine("wan2.7-image", cfg, FAMILIES["sd"])
    image = engine.generate(make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, "a red apple", 64, 48, 1, 3), no_progress)[0]
    assert image.size == (64, 48)
    assert engine.describe()["roles"][0]["on_disk"] is True and engine.describe()["disk_bytes"] > 0
    assert type(engine.pipeline("text_to_image").vae).__name__ == "AutoencoderTiny"  # the pulled TAESD decodes
    assert engine.describe()["vae"]["checkpoint"] == str(models / "madebyollin--taesd")
    assert engine.describe()["vae"]["on_disk"] is True


def test_a_cut_mid_file_resumes_with_a_range_request(hub, tmp_path):
    hub.byte_budget, hub.outage = 200_000, False
    assert pull("sd-turbo", "--to", str(tmp_path)) == 0
    assert [r for r in hub.requests if " bytes=" in r and r.startswith("GET")], "no Range request: not resumed"
    assert ModelsDir(tmp_path).status("stabilityai/sd-turbo").on_disk


def test_an_outage_leaves_no_manifest_and_the_same_command_finishes(hub, tmp_path, capsys, monkeypatch):
    import huggingface_hub.file_download

    monkeypatch.setattr(huggingface_hub.file_download.time, "sleep", lambda s: None)  # its retry pauses
    hub.byte_budget, hub.outage = 300_000, True
    assert pull("sd-turbo", "--to", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "could not be reached" in err and "--from DIR" in err
    status = ModelsDir(tmp_path).status("stabilityai/sd-turbo")
    assert not status.on_disk and status.missing == ["(not pulled)"]
    hub.byte_budget = None
    assert pull("sd-turbo", "--to", str(tmp_path)) == 0
    assert ModelsDir(tmp_path).status("stabilityai/sd-turbo").on_disk


def test_not_enough_disk_is_refused_before_anything_downloads(hub, tmp_path, capsys):
    hub.sizes["stabilityai/sd-turbo"] = {"unet/diffusion_pytorch_model.fp16.safetensors": 10**16}  # 10 PB claimed
    assert pull("sd-turbo", "--to", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "10000000.00 GB to download but" in err and "free" in err
    assert not [r for r in hub.requests if "unet/diffusion_pytorch_model" in r]


def test_a_gated_repository_names_its_licence_page_and_hf_token(hub, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert pull("black-forest-labs/FLUX.1-dev", "--to", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "black-forest-labs/FLUX.1-dev is gated" in err and "no HF_TOKEN is set" in err
    assert "https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md" in err and "HF_TOKEN" in err


def test_an_unknown_repository_and_an_unknown_name_say_so(hub, tmp_path, capsys):
    assert pull("someone/nothing-here", "--to", str(tmp_path)) == 1
    assert "someone/nothing-here: no such repository on " + hub.url in capsys.readouterr().err
    assert pull("nothing", "--to", str(tmp_path)) == 1
    assert "neither a preset" in capsys.readouterr().err


def test_dry_run_lists_the_files_and_downloads_no_weights(hub, tmp_path, capsys):
    assert pull("sd-turbo", "--to", str(tmp_path), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in out and "sd_turbo.safetensors" not in out
    assert not [r for r in hub.requests if r.startswith("GET") and ".safetensors" in r]


def test_modelscope_without_its_package_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "modelscope", None)  # as if not installed
    assert pull("qwen-image", "--source", "modelscope", "--to", str(tmp_path)) == 1
    assert "pip install modelscope" in capsys.readouterr().err


def test_modelscope_refuses_a_repository_it_does_not_publish(tmp_path, capsys):
    assert pull("flux1-dev", "--source", "modelscope", "--to", str(tmp_path)) == 1
    assert "not published on modelscope.cn" in capsys.readouterr().err


def test_modelscope_pull_applies_the_same_selection(tiny_repo, tmp_path, capsys, monkeypatch):
    """The modelscope package faked at its boundary (no ModelScope server here): its file list
    and snapshot_download(allow_patterns) over the tiny repository; the same selection, the
    manifest, a folder that serves."""
    import fnmatch
    import shutil
    import types

    calls = []

    class HubApi:
        def get_model_files(self, model_id, revision="master", recursive=False):
            calls.append(("files", model_id, recursive))
            return [{"Path": p.relative_to(tiny_repo).as_posix(), "Size": p.stat().st_size, "Type": "blob"}
                    for p in sorted(tiny_repo.rglob("*")) if p.is_file()]

    def snapshot_download(model_id, revision=None, local_dir=None, allow_patterns=None):
        calls.append(("download", model_id, tuple(allow_patterns)))
        for p in tiny_repo.rglob("*"):
            rel = p.relative_to(tiny_repo).as_posix()
            if p.is_file() and any(fnmatch.fnmatch(rel, pat) for pat in allow_patterns):
                (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, Path(local_dir) / rel)
        return local_dir

    root, hub, api = types.ModuleType("modelscope"), types.ModuleType("modelscope.hub"), types.ModuleType("modelscope.hub.api")
    root.snapshot_download, api.HubApi = snapshot_download, HubApi
    for name, module in (("modelscope", root), ("modelscope.hub", hub), ("modelscope.hub.api", api)):
        monkeypatch.setitem(sys.modules, name, module)
    assert pull("sd-turbo", "--source", "modelscope", "--to", str(tmp_path)) == 1  # not published there
    assert "not published on modelscope.cn" in capsys.readouterr().err
    assert pull("stabilityai/sd-turbo-copy", "--source", "modelscope", "--variant", "fp16", "--to", str(tmp_path)) == 0
    downloads = [c for c in calls if c[0] == "download"]
    assert downloads[-1][1] == "stabilityai/sd-turbo-copy"
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in downloads[-1][2]
    assert not [f for f in downloads[-1][2] if f.endswith(".bin") or f == "sd_turbo.safetensors"]
    status = ModelsDir(tmp_path).status("stabilityai/sd-turbo-copy")
    assert status.on_disk and json.loads((status.path / MANIFEST).read_text())["source"] == "modelscope"
