"""Engine factories from an engine config file or parsed model configs: one DiffusersEngine per
model id, sharing loaded pipelines (PipelinePool), or a context-parallel ParallelEngine."""

from __future__ import annotations

from pathlib import Path

from ..base import EngineFactory
from .acceleration import check_device
from .config import EngineConfigError, ModelConfig, load_config, parallel_degree
from .engine import DiffusersEngine
from .families import FAMILIES
from .loader import PipelinePool
from .parallel import rank_devices
from .ranks import ParallelEngine
from .translate import LlmEndpoint


def load_engines(config_path: Path, device: str = "cpu", devices: list[str] | None = None,
                 hardware_checks: bool = True, llm: LlmEndpoint | None = None) -> dict[str, EngineFactory]:
    """model id -> factory building its DiffusersEngine, from the engine config file."""
    return engines_from_configs(load_config(config_path), device, devices=devices, hardware_checks=hardware_checks,
                                llm=llm)


def engines_from_configs(configs: dict[str, ModelConfig], device: str = "cpu", preset: str | None = None,
                         devices: list[str] | None = None, hardware_checks: bool = True,
                         llm: LlmEndpoint | None = None) -> dict[str, EngineFactory]:
    """model id -> factory building its DiffusersEngine from parsed ModelConfigs (a config file's
    or a preset's: presets.py); `preset` names the preset in `describe()`. `devices`
    (WANIMAGE_DEVICES) is where a context-parallel model puts its ranks (parallel.py).
    `hardware_checks=False` where the engines run on other machines (a Ray driver or API
    replica without GPUs): each engine still checks its device where it is built. `llm`: the
    thinking-mode LLM, which translates Chinese prompts for CLIP families (translate.py)."""
    for model, cfg in configs.items():  # FP8 / flash attention on a CPU stops start-up, with the fix
        if hardware_checks:
            check_device(cfg, cfg.device or device, f"models.{model}", devices)
    spread = [m for m, c in configs.items() if parallel_degree(c) > 1]
    if len(spread) > 1:
        raise EngineConfigError(f"models {', '.join(spread)}: context parallelism for one model per server process "
                                "(its ranks form the process's one torch.distributed group); serve the others "
                                "from a second server")
    pool = PipelinePool()  # models on the same checkpoint share one loaded copy

    def factory(model: str) -> EngineFactory:
        cfg = configs[model]
        if parallel_degree(cfg) > 1:
            return _parallel_factory(model, cfg, device, devices, pool, preset)
        return EngineFactory(lambda: DiffusersEngine(model, cfg, FAMILIES[cfg.family], device, pool, preset=preset,
                                                     llm=llm))

    return {model: factory(model) for model in configs}


def _parallel_factory(model: str, cfg: ModelConfig, device: str, devices: list[str] | None, pool: PipelinePool,
                      preset: str | None) -> EngineFactory:
    """A context-parallel model: one engine whose ranks take the devices (not one per device)."""

    def build() -> ParallelEngine:
        ranks = rank_devices(cfg, cfg.device or device, devices, f"models.{model}")
        return ParallelEngine(model, cfg, FAMILIES[cfg.family], ranks, pool, preset)

    # Ray Serve reserves `gpus` per replica; engines/devices.py does not spread it, its ranks take the devices
    return EngineFactory(build, gpus=parallel_degree(cfg), spans_devices=True)
