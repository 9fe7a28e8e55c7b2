"""`wanimage serve --preset NAME`: a preset's engine config over the pulled folders, checked
before anything loads, with a config file's keys on top.

Weights that are not on disk stop start-up at once, with the folders and files that are missing
and the exact `wanimage pull` command; nothing is downloaded on this path."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from . import presets
from .config import ModelConfig, parse_config, read_config_file
from .families import FAMILIES
from .models_dir import ModelsDir

log = logging.getLogger(__name__)


class PresetNotReady(FileNotFoundError):
    """The preset's weights are not (all) in the models directory."""


def expected_files(preset: presets.Preset, repo: str) -> list[str]:
    """What a pipeline of `repo` needs at least: model_index.json and one folder per required
    component of the classes its roles use (presets.PIPELINE_FOLDERS: no diffusers import)."""
    kind = presets.REPOS[repo].kind
    if kind == "model":  # the translator: a transformers model folder
        return ["config.json", "source.spm", "target.spm", "vocab.json", "pytorch_model.bin"]
    if kind == "component":  # a tiny autoencoder: one diffusers model
        return ["config.json", "diffusion_pytorch_model.safetensors"]
    names: dict[str, None] = {"model_index.json": None}
    for role, r in preset.roles.items():
        if r.repo != repo:
            continue
        for name in presets.PIPELINE_FOLDERS[r.pipeline or FAMILIES[preset.family].pipelines[role]]:
            names[name + "/"] = None
    return list(names)


def pull_command(name: str, models_dir: Path, default_dir: Path) -> str:
    where = "" if models_dir.resolve() == default_dir.resolve() else f" --models-dir {models_dir}"
    return f"wanimage pull {name}{where}"


def check_pulled(preset: presets.Preset, pulled: ModelsDir, command: str) -> None:
    lines = []
    for repo in preset.repos:
        status = pulled.status(repo)
        if status.on_disk or repo in preset.optional:  # preset_configs warns without them
            continue
        if status.missing == ["(not pulled)"]:
            need = ", ".join(expected_files(preset, repo))
            partial = f" ({status.bytes / 1e9:.2f} GB of an interrupted pull there)" if status.bytes else ""
            lines.append(f"  {repo}: not pulled{partial}; needs {status.path}/ with {need}")
        else:
            shown = ", ".join(status.missing[:5]) + (" ..." if len(status.missing) > 5 else "")
            lines.append(f"  {repo}: {len(status.missing)} file(s) missing or short in {status.path}: {shown}")
    if lines:
        size = sum(presets.REPOS[r].download_bytes for r in preset.repos if not pulled.status(r).on_disk
                   and r not in preset.optional)
        raise PresetNotReady(
            f"preset {preset.name}: weights not on disk in {pulled.root}\n" + "\n".join(lines)
            + f"\nDownload them ({size / 1e9:.1f} GB) with:\n  {command}")


def overlay(base: dict, file_data: dict) -> dict:
    """A config file's keys over the preset's: its [defaults] and then its model tables win."""
    defaults = file_data.get("defaults") or {}
    models = {m: dict(v) for m, v in base["models"].items()}
    for model, raw in (file_data.get("models") or {}).items():
        models[model] = {**models.get(model, {}), **defaults, **raw}
    for model in base["models"]:
        if model not in (file_data.get("models") or {}):
            models[model] = {**models[model], **defaults}
    return {"models": models}


def preset_configs(name: str, models_dir: Path, default_dir: Path,
                   config_file: Path | None = None) -> dict[str, ModelConfig]:
    """model id -> ModelConfig for `name` (KeyError for an unknown preset, PresetNotReady when its
    weights are not on disk, EngineConfigError for a bad config file on top)."""
    preset = presets.find(name)
    pulled = ModelsDir(models_dir)
    check_pulled(preset, pulled, pull_command(name, models_dir, default_dir))
    data = presets.engine_config(preset, lambda repo: str(pulled.path(repo)))
    if preset.translator and not pulled.status(preset.translator).on_disk:
        log.warning("preset %s: its translator %s is not pulled, so Chinese prompts reach its English-only text "
                    "encoder as written unless an LLM rewriter is set; `%s` fetches it", name, preset.translator,
                    pull_command(name, models_dir, default_dir))
        for table in data["models"].values():
            table.pop("translator", None)
    if preset.vae and not pulled.status(preset.vae).on_disk:
        log.warning("preset %s: its tiny autoencoder %s is not pulled, so the checkpoint's full VAE encodes and "
                    "decodes (several times slower on a CPU); `%s` fetches it", name, preset.vae,
                    pull_command(name, models_dir, default_dir))
        for table in data["models"].values():
            table.pop("vae", None)
    file_data = read_config_file(config_file) if config_file is not None else {}
    data = overlay(data, file_data)
    missing = set()  # the package each backend's int8 needs, where it is not installed
    for model, table in data["models"].items():
        own = {**(file_data.get("defaults") or {}), **((file_data.get("models") or {}).get(model) or {})}
        if table.get("backend") == "openvino" and "backend" not in own and not _installed("openvino"):
            missing.add("openvino")  # the preset's own choice falls back to torch; a config file's is refused later
            table["backend"] = "torch"
        openvino = table.get("backend") == "openvino"
        if openvino and "channels_last" not in own:  # a torch layout; OpenVINO replaces those modules
            table.pop("channels_last", None)
        if not openvino and "quantize" not in own and table.get("quantize"):
            # on torch, the preset's OpenVINO-only kind (int8 convolutions) is the weight-only int8 it
            # includes, and its VAE's (OpenVINO's int8 decoder) goes
            table["quantize"] = {c: "int8" if k == "int8_hybrid" else k for c, k in table["quantize"].items()
                                 if c != "vae"}
        package = "nncf" if openvino else "torchao"  # OpenVINO compresses its IR's weights with NNCF
        if table.get("quantize") and "quantize" not in own and not _installed(package):
            missing.add(package)
            table.pop("quantize")
    for package in sorted(missing):
        if package == "openvino":
            log.warning("preset %s: openvino is not installed, so it runs on torch (about 1.5x the CPU time per "
                        "image, docs/diffusers.md); `pip install 'wanimage[openvino]'` turns its OpenVINO backend on",
                        name)
            continue
        log.warning("preset %s: %s is not installed, so its int8 weights are off (more memory, about the same "
                    "speed); `%s` turns them on", name, package,
                    "pip install 'wanimage[openvino]'" if package == "nncf" else "pip install torchao==0.18.0")
    return parse_config(data, f"preset {name}" + (f" + {config_file}" if config_file else ""))


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def preset_device(preset: presets.Preset, device: str) -> str:
    """A GPU preset on the default device goes to CUDA when there is one."""
    if preset.device == "cuda" and device == "cpu":
        import torch

        if torch.cuda.is_available():
            return "cuda"
        log.warning("preset %s is made for a GPU (%.0f GB); this machine has none, it runs on the CPU",
                    preset.name, preset.memory_bytes / 1e9)
    return device


def on_device(configs: dict[str, ModelConfig], device: str) -> dict[str, ModelConfig]:
    """CPU offload means nothing without an accelerator: on the CPU every preset runs in place."""
    if not device.startswith("cpu"):
        return configs
    return {m: replace(c, offload="none") if c.offload != "none" and (c.device or device) == "cpu" else c
            for m, c in configs.items()}
