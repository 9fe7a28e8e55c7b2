"""Model id -> EngineFactory, from the settings: which engine serves each of the two model ids
(the registry builds them on first use). Adding an engine touches this file and the engine's own
package only."""

from __future__ import annotations

from functools import partial

from ..config import Settings
from ..types import MODELS
from .base import Engine, EngineFactory
from .devices import on_devices
from .registry import EngineRegistry
from .summary import builtin_summary

NOT_INSTALLED = (
    "no model is installed: the built-in model's weights (src/wanimage/weights/builtin.safetensors) "
    "are missing from this installation"
)


class BuiltinFactory(EngineFactory):
    """Loads the built-in model (seconds: torch, transformers, the text encoder). `wanimage
    models` describes it without loading (`heavy`, `describe_unloaded`)."""

    def __init__(self, device: str) -> None:
        super().__init__(partial(_load_builtin, device), heavy=True, describe_unloaded=partial(_builtin_row, device),
                         reads_chinese_words=True)


def _load_builtin(device: str) -> Engine:
    try:  # imported here: torch and the model load with the engine, not with the server's settings
        from .builtin import load_builtin_engine
    except ImportError as exc:
        raise ImportError(f"{NOT_INSTALLED} ({exc})") from exc
    return load_builtin_engine(device=device)


def _builtin_row(device: str) -> dict:
    from .builtin.identity import CAPABILITIES, NAME  # not the engine: describing it loads no torch

    return {"engine": NAME, "modes": sorted(m.value for m in CAPABILITIES.modes),
            "summary": builtin_summary(None, device)}


def _builtin(settings: Settings) -> BuiltinFactory:
    return BuiltinFactory(settings.device)


def _diffusers(settings: Settings, hardware_checks: bool = True) -> dict[str, EngineFactory]:
    """Model id -> factory, from the engine config file (docs/diffusers.md). A malformed file
    stops start-up with its message; a missing checkpoint marks only its model unavailable."""
    if settings.engine_config is None:
        raise SystemExit("engine diffusers needs an engine config file: set WANIMAGE_ENGINE_CONFIG "
                         "(see examples/engines.toml and docs/diffusers.md)")
    from .diffusers import load_engines
    from .diffusers.config import EngineConfigError

    try:
        factories = load_engines(settings.engine_config, device=settings.device, devices=settings.device_list(),
                                 hardware_checks=hardware_checks, llm=_llm(settings))
    except (EngineConfigError, FileNotFoundError) as exc:  # AccelerationError included
        raise SystemExit(str(exc)) from exc
    unknown = set(factories) - set(MODELS)
    if unknown:
        raise SystemExit(f"{settings.engine_config}: unknown model ids {sorted(unknown)}; use {', '.join(MODELS)}")
    return factories


def _preset(settings: Settings, hardware_checks: bool = True) -> dict[str, EngineFactory]:
    """Both model ids from a preset (WANIMAGE_PRESET / serve --preset) over the folders `wanimage
    pull` wrote, the engine config file's keys on top; weights not on disk stop start-up with
    the missing files and the pull command (docs/diffusers.md)."""
    from .diffusers import engines_from_configs
    from .diffusers.config import EngineConfigError
    from .diffusers.preset_config import PresetNotReady, on_device, preset_configs, preset_device
    from .diffusers.presets import find

    default_dir = Settings.model_fields["data_dir"].default / "models"  # where a bare `wanimage pull` writes
    try:
        preset = find(settings.preset)
        configs = preset_configs(settings.preset, settings.resolved_models_dir(), default_dir, settings.engine_config)
    except KeyError as exc:
        raise SystemExit(exc.args[0]) from exc
    except (PresetNotReady, EngineConfigError, FileNotFoundError) as exc:
        raise SystemExit(str(exc)) from exc
    device = preset_device(preset, settings.device)
    return engines_from_configs(on_device(configs, device), device, preset=settings.preset,
                                devices=settings.device_list(), hardware_checks=hardware_checks, llm=_llm(settings))


def _llm(settings: Settings):
    """The thinking-mode LLM, which also translates Chinese prompts for CLIP checkpoints."""
    from .diffusers.translate import LlmEndpoint

    if not settings.thinking_llm_url:
        return None
    key = settings.thinking_llm_key.get_secret_value() if settings.thinking_llm_key else None
    return LlmEndpoint(settings.thinking_llm_url, settings.thinking_llm_model, key,
                       settings.thinking_llm_timeout_seconds)


def _remote(settings: Settings) -> dict[str, EngineFactory]:
    """Remote model ids (docs/remote.md): both from WANIMAGE_REMOTE_URL, else those whose table in
    the engine config file says engine = "remote". A malformed table stops start-up."""
    from .remote import RemoteConfigError, factories_for, load_remote, settings_config

    try:
        if settings.remote_url:
            key = settings.remote_api_key.get_secret_value() if settings.remote_api_key else None
            cfg = settings_config(settings.remote_url, settings.remote_model, key, settings.remote_timeout_seconds,
                                  settings.remote_max_concurrency, settings.remote_health_interval_seconds)
            return factories_for({model: cfg for model in MODELS})
        return load_remote(settings.engine_config) if settings.engine_config else {}
    except (RemoteConfigError, FileNotFoundError) as exc:
        raise SystemExit(str(exc)) from exc


def engine_factories(settings: Settings, *, hardware_checks: bool = True) -> dict[str, EngineFactory]:
    """Model id -> factory. Ids that share one factory object share one engine instance (and,
    on Ray, one deployment). Remote model ids (docs/remote.md) take precedence per id.
    `hardware_checks=False`: the engines will run elsewhere (Ray replicas), so what this
    machine's devices can run is not checked here but by each engine where it is built."""
    remote = _remote(settings)
    if settings.engine == "remote" and not remote:
        raise SystemExit("engine remote needs WANIMAGE_REMOTE_URL, or tables with engine = \"remote\" in "
                         "WANIMAGE_ENGINE_CONFIG (docs/remote.md)")
    if settings.remote_url or settings.engine == "remote" or set(remote) == set(MODELS):
        return remote
    if settings.engine not in ("builtin", "diffusers") and not settings.preset:
        raise SystemExit(f"unknown engine {settings.engine!r}; this version serves: builtin, diffusers, remote")
    # WANIMAGE_DEVICES: one engine (and its pipelines) per device behind each model id (devices.py)
    local = on_devices(settings.device_list(),
                       lambda d: _local(settings.model_copy(update={"device": d}), hardware_checks))
    return {**local, **remote}


def _local(settings: Settings, hardware_checks: bool = True) -> dict[str, EngineFactory]:
    """The engines of this process on settings.device: a preset's, the config file's, or built-in."""
    if settings.preset:
        return _preset(settings, hardware_checks)
    if settings.engine == "diffusers":
        return _diffusers(settings, hardware_checks)
    factory = _builtin(settings)  # one engine instance serves both model ids
    return {model: factory for model in MODELS}


def build_registry(settings: Settings) -> EngineRegistry:
    return EngineRegistry(engine_factories(settings))
