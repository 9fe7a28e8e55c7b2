"""The presets table (engines/diffusers/presets.py): every preset resolves to a valid engine
config whose pipeline classes exist in the pinned diffusers; its download size is what the
selection keeps from the published file trees (tests/fixtures/hub/); the docs' preset table is
the one `wanimage presets --markdown` prints; serving a preset needs its pulled folders, and a
config file overrides its keys. Nothing is downloaded."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from wanimage.config import Settings
from wanimage.engines.diffusers import FAMILIES
from wanimage.engines.diffusers.config import ROLES, parse_config
from wanimage.engines.diffusers.loader import pipeline_class
from wanimage.engines.diffusers.models_dir import write_manifest
from wanimage.engines.diffusers.preset_config import PresetNotReady, preset_configs
from wanimage.engines.diffusers.presets import (
    OPTIONAL,
    PIPELINE_FOLDERS,
    PRESETS,
    REPOS,
    engine_config,
    find,
    fits,
    served_ids,
)
from wanimage.engines.diffusers.repo_files import (
    select_component_files,
    select_files,
    select_model_files,
)
from wanimage.engines.factories import engine_factories
from wanimage.types import MODELS, QWEN_MODELS, WAN_MODELS

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "hub"


def fixture(repo: str) -> dict:
    return json.loads((FIXTURES / (repo.replace("/", "--") + ".json")).read_text())


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_a_valid_engine_config_of_existing_pipelines(name):
    preset = PRESETS[name]
    configs = parse_config(engine_config(preset, lambda repo: f"/models/{repo}"), f"preset {name}")
    assert set(configs) == set(served_ids(preset)) and set(WAN_MODELS) <= set(configs)
    assert (set(QWEN_MODELS) <= set(configs)) == (name == "qwen-image")  # the open weights those ids name
    assert preset.family in FAMILIES and set(preset.roles) <= set(ROLES)
    for cfg in configs.values():
        assert cfg.family == preset.family
        for role, ckpt in cfg.roles.items():
            cls = pipeline_class(ckpt.pipeline or FAMILIES[cfg.family].pipelines[role])  # exists in diffusers 0.42.1
            assert cls.__name__.endswith("Pipeline")
            required = tuple(arg for arg, param in inspect.signature(cls.__init__).parameters.items()
                             if arg != "self" and arg not in OPTIONAL and param.default is inspect.Parameter.empty)
            assert PIPELINE_FOLDERS[cls.__name__] == required  # what a serve without the weights names
            assert ckpt.source == f"/models/{preset.roles[role].repo}"
            assert ckpt.variant == REPOS[preset.roles[role].repo].variant
    assert configs["wan2.7-image-pro"].steps == preset.pro.get("steps", preset.settings.get("steps"))


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_names_its_licence_size_memory_and_speed_source(name):
    preset = PRESETS[name]
    assert preset.licences and all(REPOS[r].licence_url.startswith("https://") for r in preset.repos)
    assert preset.download_bytes > 0 and preset.memory_bytes > 0 and preset.memory_note
    assert preset.speed == "unmeasured" or preset.speed_source, "a speed figure needs its source"
    assert preset.device in ("cpu", "cuda")


def test_the_documented_presets_are_there_with_a_cpu_real_one():
    assert {"sd-turbo", "sdxl", "sdxl-turbo", "z-image-turbo", "flux2-klein-4b", "flux1-schnell", "flux1-dev",
            "qwen-image"} <= set(PRESETS)
    cpu = [p for p in PRESETS.values() if p.device == "cpu"]
    assert [p.name for p in cpu] == ["sd-turbo", "sdxs-512"] and {p.family for p in cpu} == {"sd"}
    for p in cpu:
        assert set(p.roles) == {"text_to_image", "edit", "inpaint", "refine"}
        assert p.settings["dtype"] == "auto" and p.settings["steps"] == 1  # bfloat16 where the CPU has it
    assert PRESETS["sdxl"].roles["inpaint"].repo == "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    assert PRESETS["qwen-image"].roles["edit"].repo == "Qwen/Qwen-Image-Edit-2511"
    flux = PRESETS["flux1-schnell"].roles
    assert flux["edit"].repo.endswith("Kontext-dev") and flux["inpaint"].repo.endswith("Fill-dev")
    assert flux["inpaint"].steps == 50 and flux["inpaint"].guidance == 30.0  # Fill's own, not schnell's 4


@pytest.mark.parametrize("repo", REPOS)
def test_download_size_is_the_selection_over_the_published_tree(repo):
    tree = fixture(repo)
    kind = REPOS[repo].kind
    selected = (select_files(tree["files"], tree["model_index"], REPOS[repo].variant) if kind == "pipeline"
                else select_component_files(tree["files"]) if kind == "component" else select_model_files(tree["files"]))
    size = sum(tree["files"][f] for f in selected)
    assert abs(REPOS[repo].download_bytes - size) <= 0.01 * size, f"{repo}: table {REPOS[repo].download_bytes}, tree {size}"


def test_what_fits_follows_gpu_memory_else_ram():
    sd, qwen = PRESETS["sd-turbo"], PRESETS["qwen-image"]
    assert fits(sd, None, 16 * 10**9) and fits(sd, None, 4 * 10**9) and not fits(sd, None, 2 * 10**9)  # 3.3 GB
    assert not fits(qwen, None, 10**12)  # no GPU: a GPU preset never fits, whatever the RAM
    assert fits(qwen, 141 * 10**9, 0) and not fits(qwen, 24 * 10**9, 0)


def test_unknown_preset_names_the_presets():
    with pytest.raises(KeyError, match="sd-turbo"):
        find("stable-cascade")


def test_docs_preset_table_is_the_generated_one():
    from wanimage.cli.presets import markdown_table

    doc = (ROOT / "docs" / "diffusers.md").read_text()
    begin, end = "<!-- presets:begin (wanimage presets --markdown) -->\n", "<!-- presets:end -->"
    assert begin in doc and end in doc
    assert doc.split(begin)[1].split(end)[0] == markdown_table() + "\n"


# ------------------------------------------------------------------------------ serving


def pulled(models: Path, repo: str, files: dict[str, bytes]) -> Path:
    folder = models / repo.replace("/", "--")
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    write_manifest(folder, repo, None, "test", list(files))
    return folder


def test_serving_a_preset_without_its_weights_names_the_files_and_the_pull_command(tmp_path):
    with pytest.raises(PresetNotReady) as err:
        preset_configs("sd-turbo", tmp_path / "models", tmp_path / "models")
    message = str(err.value)
    assert "stabilityai/sd-turbo: not pulled" in message
    for part in ("model_index.json", "unet/", "vae/", "text_encoder/", "tokenizer/", "scheduler/"):
        assert part in message
    assert message.rstrip().endswith("wanimage pull sd-turbo")
    with pytest.raises(PresetNotReady, match=r"wanimage pull sd-turbo --models-dir /elsewhere"):
        preset_configs("sd-turbo", Path("/elsewhere"), tmp_path / "models")


def test_a_short_file_is_named_and_a_complete_pull_serves(tmp_path):
    folder = pulled(tmp_path, "stabilityai/sd-turbo", {"model_index.json": b"{}", "unet/w.safetensors": b"x" * 10})
    (folder / "unet/w.safetensors").write_bytes(b"x" * 3)  # truncated after the pull
    with pytest.raises(PresetNotReady, match=r"1 file\(s\) missing or short .*unet/w.safetensors"):
        preset_configs("sd-turbo", tmp_path, tmp_path)
    (folder / "unet/w.safetensors").write_bytes(b"x" * 10)
    configs = preset_configs("sd-turbo", tmp_path, tmp_path)
    assert configs[MODELS[0]].roles["text_to_image"].source == str(folder)
    assert configs[MODELS[0]].steps == 1 and configs[MODELS[1]].steps == 4


def test_a_config_file_overrides_the_preset(tmp_path):
    pulled(tmp_path, "stabilityai/sd-turbo", {"model_index.json": b"{}"})
    override = tmp_path / "engines.toml"
    override.write_text('[defaults]\nsteps = 2\n\n[models."wan2.7-image-pro"]\nsteps = 6\nrefine_strength = 0.4\n'
                        'text_to_image = "/somewhere/else"\n')
    configs = preset_configs("sd-turbo", tmp_path, tmp_path, override)
    assert configs[MODELS[0]].steps == 2 and configs[MODELS[0]].guidance == 0.0
    pro = configs[MODELS[1]]
    assert pro.steps == 6 and pro.refine_strength == 0.4 and pro.roles["text_to_image"].source == "/somewhere/else"
    assert pro.roles["edit"].source == str(tmp_path / "stabilityai--sd-turbo")


def test_the_default_stays_the_built_in_model(tmp_path, monkeypatch):
    monkeypatch.delenv("WANIMAGE_PRESET", raising=False)
    factories = engine_factories(Settings(data_dir=tmp_path))
    assert set(factories) == set(MODELS)
    assert len({id(f) for f in factories.values()}) == 1 and type(factories[MODELS[0]]).__name__ == "BuiltinFactory"


def test_wanimage_preset_env_selects_the_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("WANIMAGE_PRESET", "sd-turbo")
    with pytest.raises(SystemExit, match="stabilityai/sd-turbo: not pulled"):
        engine_factories(Settings(data_dir=tmp_path))


def test_a_gpu_preset_on_a_cpu_machine_runs_in_place_without_offload(tmp_path):
    from wanimage.engines.diffusers.preset_config import on_device

    pulled(tmp_path, "Qwen/Qwen-Image", {"model_index.json": b"{}"})
    pulled(tmp_path, "Qwen/Qwen-Image-Edit-2511", {"model_index.json": b"{}"})
    configs = preset_configs("qwen-image", tmp_path, tmp_path)
    assert configs[MODELS[0]].offload == "model"
    assert {c.offload for c in on_device(configs, "cpu").values()} == {"none"}
    assert on_device(configs, "cuda") is configs


def test_clip_presets_pull_a_translator_and_say_they_do_not_read_chinese():
    from wanimage.cli.presets import rows

    table = {r["name"]: r for r in rows("/nonexistent", None, 0)}
    for name in ("sd-turbo", "sdxl-turbo", "sdxl", "flux1-schnell", "flux1-dev"):
        assert not table[name]["reads_chinese"] and table[name]["translator"] == "Helsinki-NLP/opus-mt-zh-en"
        assert "Helsinki-NLP/opus-mt-zh-en" in PRESETS[name].repos  # `wanimage pull NAME` fetches it
        config = engine_config(PRESETS[name], lambda repo: f"/models/{repo}")
        assert config["models"]["wan2.7-image"]["translator"] == "/models/Helsinki-NLP/opus-mt-zh-en"
    for name in ("qwen-image", "z-image-turbo", "flux2-klein-4b"):
        assert table[name]["reads_chinese"] and table[name]["translator"] is None
    tree = fixture("Helsinki-NLP/opus-mt-zh-en")["files"]
    assert select_model_files(tree) == ["README.md", "config.json", "generation_config.json", "pytorch_model.bin",
                                        "source.spm", "target.spm", "tokenizer_config.json", "vocab.json"]


def test_cpu_presets_pull_a_tiny_autoencoder_and_a_config_key_keeps_the_full_vae(tmp_path):
    from wanimage.cli.presets import markdown_table, rows

    assert PRESETS["sd-turbo"].vae == "madebyollin/taesd" and PRESETS["sdxl-turbo"].vae == "madebyollin/taesdxl"
    assert PRESETS["sdxs-512"].vae is None  # its own vae/ is already tiny
    for name in ("sd-turbo", "sdxl-turbo"):
        preset = PRESETS[name]
        assert preset.vae in preset.repos  # `wanimage pull NAME` fetches it
        assert REPOS[preset.vae].kind == "component" and REPOS[preset.vae].licence == "MIT"
        config = engine_config(preset, lambda repo: f"/models/{repo}")
        assert {t["vae"] for t in config["models"].values()} == {f"/models/{preset.vae}"}
    table = {r["name"]: r for r in rows("/nonexistent", None, 0)}
    assert table["sd-turbo"]["vae"] == "madebyollin/taesd"
    assert "[madebyollin/taesd](https://huggingface.co/madebyollin/taesd): tiny autoencoder" in markdown_table()
    # pulled with it: served through it; `vae = "full"` in a config file keeps the SD VAE
    sd = pulled(tmp_path, "stabilityai/sd-turbo", {"model_index.json": b"{}"})
    taesd = pulled(tmp_path, "madebyollin/taesd", {"config.json": b"{}", "diffusion_pytorch_model.safetensors": b"x"})
    assert preset_configs("sd-turbo", tmp_path, tmp_path)[MODELS[0]].vae == str(taesd)
    override = tmp_path / "engines.toml"
    override.write_text('[defaults]\nvae = "full"\n')
    assert {c.vae for c in preset_configs("sd-turbo", tmp_path, tmp_path, override).values()} == {"full"}
    assert sd.is_dir()


def test_a_preset_pulled_before_it_named_a_tiny_autoencoder_serves_with_the_full_vae(tmp_path, caplog):
    pulled(tmp_path, "stabilityai/sd-turbo", {"model_index.json": b"{}"})
    with caplog.at_level("WARNING"):
        configs = preset_configs("sd-turbo", tmp_path, tmp_path)
    assert {c.vae for c in configs.values()} == {None}
    assert "madebyollin/taesd is not pulled" in caplog.text and "wanimage pull sd-turbo" in caplog.text


def test_tiny_autoencoder_selection_keeps_the_diffusers_copy_only():
    tree = fixture("madebyollin/taesd")["files"]
    assert select_component_files(tree) == ["README.md", "config.json", "diffusion_pytorch_model.safetensors"]
    with pytest.raises(ValueError, match="config.json"):
        select_component_files(["taesd_decoder.safetensors"])


@pytest.mark.parametrize("value", ["float64", "fp16", "half"])
def test_an_unknown_dtype_is_refused_with_the_choices(value):
    from wanimage.engines.diffusers.config import EngineConfigError

    with pytest.raises(EngineConfigError, match=r"dtype: one of auto, bfloat16, float16, float32"):
        parse_config({"models": {"wan2.7-image": {"family": "sd", "text_to_image": "tiny:sd", "dtype": value}}})


def test_auto_dtype_is_bfloat16_on_cuda_and_on_cpus_with_native_bfloat16(monkeypatch):
    import torch

    from wanimage.engines.diffusers import dtypes

    assert dtypes.native_bfloat16("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    assert dtypes.native_bfloat16("processor\t: 0\nflags\t\t: fpu avx2 amx_tile amx_bf16\n")
    assert not dtypes.native_bfloat16("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert dtypes.native_bfloat16("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")  # arm64
    for native, want in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(dtypes, "cpu_has_bfloat16", lambda native=native: native)
        assert dtypes.resolve_dtype("auto", "cpu") == dtypes.resolve_dtype(None, "cpu") == want
        assert dtypes.resolve_dtype("float32", "cpu") == torch.float32  # asked for: kept
        assert dtypes.resolve_dtype(None, "cuda") == torch.bfloat16


def test_sdxs_preset_serves_every_mode_from_a_pulled_folder_whose_vae_is_tiny(tmp_path):
    """IDKiro/sdxs-512-0.9 holds an AutoencoderTiny in vae/: a tiny SD pipeline saved that way
    and pulled (manifest) serves text-to-image, edits and box edits with it, in one step."""
    from dataclasses import replace

    import numpy as np
    from diffusers import AutoencoderTiny, StableDiffusionPipeline
    from PIL import Image

    from wanimage.core.job import make_job
    from wanimage.engines.base import no_progress
    from wanimage.engines.diffusers.engine import DiffusersEngine
    from wanimage.engines.diffusers.tiny import tiny_component, tiny_cpu_speedups, tiny_pipeline
    from wanimage.types import Box, Mode

    tiny = tiny_pipeline(StableDiffusionPipeline, "sd")
    folder = tmp_path / "IDKiro--sdxs-512-0.9"
    StableDiffusionPipeline(**{**tiny.components, "vae": tiny_component("taesd", "vae")}).save_pretrained(folder)
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    write_manifest(folder, "IDKiro/sdxs-512-0.9", None, "test", files)
    configs = preset_configs("sdxs-512", tmp_path, tmp_path)
    assert {c.steps for c in configs.values()} == {1} and {c.vae for c in configs.values()} == {None}
    cfg = replace(configs[MODELS[0]], max_generate_pixels=64 * 48)
    engine = DiffusersEngine(MODELS[0], cfg, FAMILIES["sd"], preset="sdxs-512")
    src = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    with tiny_cpu_speedups():
        assert isinstance(engine.pipeline("text_to_image").vae, AutoencoderTiny)
        out = engine.generate(make_job(MODELS[0], Mode.TEXT_TO_IMAGE, "a red apple", 64, 48, 1, 3), no_progress)
        assert out[0].size == (64, 48)
        edit = engine.generate(make_job(MODELS[0], Mode.EDIT, "make it blue", 64, 48, 1, 3, images=[src]), no_progress)
        assert edit[0].size == (64, 48)
        boxed = engine.generate(make_job(MODELS[0], Mode.EDIT, "a ball", 64, 48, 1, 3, images=[src],
                                         boxes=[[Box(8, 8, 32, 32)]]), no_progress)[0]
    inside = np.zeros((48, 64), dtype=bool)
    inside[8:32, 8:32] = True
    assert np.array_equal(np.asarray(boxed)[~inside], np.asarray(src)[~inside])


def test_sd_turbo_runs_on_openvino_with_int8_where_installed_and_a_config_can_say_otherwise(tmp_path, monkeypatch,
                                                                                              caplog):
    """The preset's backend is OpenVINO: its UNet int8_hybrid (int8 convolutions, int8 MatMul
    weights) and its text encoder's weights int8, NNCF on the IR (without nncf installed they are
    off, with a warning saying what to install); channels_last, a torch layout, gives way; a config
    file's `quantize = "none"` or `backend = "torch"` wins (on torch the UNet's kind is torchao's int8)."""
    from wanimage.engines.diffusers import preset_config

    pulled(tmp_path, "stabilityai/sd-turbo", {"model_index.json": b"{}"})
    configs = preset_configs("sd-turbo", tmp_path, tmp_path)
    assert {(c.backend, c.channels_last) for c in configs.values()} == {("openvino", False)}
    assert all(c.quantize == {"unet": "int8_hybrid", "text_encoder": "int8", "vae": "int8_hybrid"}
               for c in configs.values())
    override = tmp_path / "engines.toml"
    override.write_text('[defaults]\nquantize = "none"\n')
    assert {c.quantize.get("unet") for c in preset_configs("sd-turbo", tmp_path, tmp_path, override).values()} == {None}
    override.write_text('[defaults]\nbackend = "torch"\n')
    configs = preset_configs("sd-turbo", tmp_path, tmp_path, override)
    assert {(c.backend, c.channels_last, c.quantize.get("unet")) for c in configs.values()} == {("torch", True, "int8")}
    monkeypatch.setattr(preset_config, "_installed", lambda package: package != "nncf")
    with caplog.at_level("WARNING"):
        configs = preset_configs("sd-turbo", tmp_path, tmp_path)
    assert {(c.backend, bool(c.quantize)) for c in configs.values()} == {("openvino", False)}
    assert "nncf is not installed" in caplog.text and "pip install 'wanimage[openvino]'" in caplog.text


def test_without_openvino_the_cpu_presets_run_on_torch_and_their_int8_needs_torchao(tmp_path, monkeypatch, caplog):
    from wanimage.engines.diffusers import preset_config

    pulled(tmp_path, "stabilityai/sd-turbo", {"model_index.json": b"{}"})
    monkeypatch.setattr(preset_config, "_installed", lambda package: package != "openvino")
    with caplog.at_level("WARNING"):
        configs = preset_configs("sd-turbo", tmp_path, tmp_path)
    assert {(c.backend, c.channels_last, c.quantize.get("unet")) for c in configs.values()} == {("torch", True, "int8")}
    assert "openvino is not installed, so it runs on torch" in caplog.text
    assert "pip install 'wanimage[openvino]'" in caplog.text
    monkeypatch.setattr(preset_config, "_installed", lambda package: package not in ("openvino", "torchao"))
    caplog.clear()
    with caplog.at_level("WARNING"):
        configs = preset_configs("sd-turbo", tmp_path, tmp_path)
    assert {(c.backend, c.quantize.get("unet")) for c in configs.values()} == {("torch", None)}
    assert "torchao is not installed" in caplog.text and "pip install torchao" in caplog.text
    override = tmp_path / "engines.toml"  # asked for in a config file, it is not dropped: start-up refuses later
    override.write_text('[defaults]\nbackend = "openvino"\n')
    assert {c.backend for c in preset_configs("sd-turbo", tmp_path, tmp_path, override).values()} == {"openvino"}
