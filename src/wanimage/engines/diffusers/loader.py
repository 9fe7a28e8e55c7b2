"""Pipelines in memory: how one model's checkpoints become placed pipelines (PipelineLoader), and
the pool that keeps them (PipelinePool), shared by every model of one config file.

A pipeline is built from a loaded sibling of the same checkpoint when it can be (`from_pipe`: the
same modules, no second copy), else from tiny components or `from_pretrained` (a local directory
or a Hub id), then placed: dtype, device, offload, VAE tiling/slicing, attention slicing, compile,
all config switches. The pool unloads what has been idle for its `idle_unload_seconds`; its clock
is injectable so idleness is tested without waiting."""

from __future__ import annotations

import copy
import gc
import inspect
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ...errors import ModelUnavailable
from ...memory import release_free_memory
from .acceleration import accelerated, apply
from .config import Checkpoint, ModelConfig
from .dtypes import DTYPES, resolve_dtype  # noqa: F401 - re-exported for the engine and tests
from .streamed import preload_components
from .tiny import tiny_component, tiny_pipeline

log = logging.getLogger(__name__)


class PipelineLoader:
    """Builds and places the pipelines of one model id (its config, device and dtype)."""

    def __init__(self, model: str, cfg: ModelConfig, hub_hint: str, device: str, dtype: torch.dtype):
        self.model, self.cfg, self.hub_hint, self.device, self.dtype = model, cfg, hub_hint, device, dtype
        self.openvino = None  # backend = "openvino": converts the loaded modules (openvino_backend.py)
        if cfg.backend == "openvino":
            from .openvino_backend import OpenVinoBackend

            # int8: NNCF on the IR; steps and guidance: what an int8_hybrid UNet is calibrated on
            self.openvino = OpenVinoBackend(cfg.dtype, quantize=cfg.quantize, steps=cfg.steps, guidance=cfg.guidance)
            self.dtype = torch.float32  # torch weights load in float32 so they convert exactly

    def placement(self) -> tuple:
        """What, besides the checkpoint and class, makes two loaded pipelines different."""
        c = self.cfg
        accel = (c.compile, c.compile_mode, c.compile_backend, c.compile_dynamic, c.cache, c.cache_threshold,
                 c.cache_interval, c.cache_warmup_steps, c.cache_front_blocks, tuple(sorted(c.quantize.items())), c.attention_backend,
                 c.ulysses_degree, c.ring_degree, c.device_map)
        return (self.device, str(self.dtype), c.offload, self.vae_source(), c.vae_tiling, c.vae_slicing,
                c.attention_slicing, c.channels_last, accel, c.backend, c.dtype if self.openvino else None)

    def vae_source(self) -> str | None:
        """The tiny autoencoder in the VAE's place, or None for the checkpoint's own VAE."""
        return None if self.cfg.vae in (None, "full") else self.cfg.vae

    def tiny_vae(self):
        """The configured AutoencoderTiny, loaded in the model's dtype (None: keep the pipeline's VAE).
        It encodes too (img2img, inpaint), in the same latent space as the VAE it replaces."""
        source = self.vae_source()
        if source is None:
            return None
        if source.startswith("tiny:"):
            return tiny_component(source.removeprefix("tiny:"), "vae")
        from diffusers import AutoencoderTiny

        local = local_path(source)
        # TAESD publishes float32 files; a folder holding only the fp16 variant loads that
        only_fp16 = (local / "diffusion_pytorch_model.fp16.safetensors").is_file() and not (
            local / "diffusion_pytorch_model.safetensors").is_file()
        try:
            return AutoencoderTiny.from_pretrained(str(local) if local.exists() else source, dtype=self.dtype,
                                                   **({"variant": "fp16"} if only_fp16 else {}))
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise ModelUnavailable(
                f"model: {self.model} could not load its tiny autoencoder {source!r} (vae): {type(exc).__name__}: "
                f"{first}. Pull it (`wanimage pull madebyollin/taesd`), point `vae` at a local copy, or set "
                "vae = \"full\" to decode with the checkpoint's own VAE", field="model") from exc

    def streamed_quantization(self) -> dict[str, str]:
        """component -> torchao kind for the CPU loader (`quantize = "int8"` names the denoiser);
        none for OpenVINO, which converts float32 modules and compresses the IR's weights itself."""
        table = {} if self.openvino else dict(self.cfg.quantize)
        if "transformer" in table:
            table.setdefault("unet", table["transformer"])
        return table

    def build(self, cls_name: str, ckpt: Checkpoint, role: str, siblings: list):
        cls = pipeline_class(cls_name)
        started = time.monotonic()
        pipe = None
        for sibling in siblings if self.cfg.offload == "none" else []:
            try:
                pipe = self.share(cls, sibling)
                break
            except (ValueError, TypeError) as exc:  # the sibling lacks a component this class needs
                log.info("%s: %s cannot share %s's modules (%s)", self.model, cls_name, type(sibling).__name__, exc)
        if pipe is None:
            pipe = self.load(cls, ckpt, role)
            self.place(pipe)
            if self.device.startswith("cpu"):
                _trim_heap()
        pipe.set_progress_bar_config(disable=True)  # progress goes through the task, not stderr
        log.info("%s: loaded %s (%s) for %s in %.1fs", self.model, cls_name, ckpt.source, role,
                 time.monotonic() - started)
        return pipe

    def load(self, cls, ckpt: Checkpoint, role: str):
        vae = self.tiny_vae()
        if ckpt.is_tiny:
            # Tiny components are shared by the process: each pipeline gets its own scheduler (it
            # keeps the step index, and two devices' pipelines run at once), and its own modules
            # when acceleration options change them in place.
            private = accelerated(self.cfg)
            shared = tiny_pipeline(cls, ckpt.source.removeprefix("tiny:")).components
            if vae is not None:
                shared["vae"] = vae
            pipe = cls(**{k: copy.deepcopy(v) if k == "scheduler" or (private and isinstance(v, torch.nn.Module))
                          else v for k, v in shared.items()})
            if self.openvino:
                self.openvino.convert_pipeline(pipe, None, None, None, None)  # traced in memory, once per process
            return pipe
        kw = {"dtype": self.dtype}
        ready: dict = {}  # backend = "openvino": stand-ins loaded from cached IR
        if vae is not None:  # given, so from_pretrained does not load the checkpoint's VAE at all
            kw["vae"] = vae
        if ckpt.revision:
            kw["revision"] = ckpt.revision
        if ckpt.variant:
            kw["variant"] = ckpt.variant
        if self.cfg.device_map:  # components spread over the GPUs by accelerate
            kw["device_map"] = self.cfg.device_map
        elif ckpt.is_local and self.device.startswith("cpu"):  # weights once in RAM, in the compute dtype
            if self.openvino:  # cached IR: those modules never load in torch (None here, put in place below)
                ready = self.openvino.cached(local_path(ckpt.source), ckpt.variant,
                                             set(inspect.signature(cls.__init__).parameters) - set(kw))
                kw.update(dict.fromkeys(ready))
            wanted = set(inspect.signature(cls.__init__).parameters) - set(kw)
            streamed = preload_components(local_path(ckpt.source), ckpt.variant, self.dtype, set(kw),
                                          self.streamed_quantization(), self.cfg.channels_last)
            kw.update({k: v for k, v in streamed.items() if k in wanted})
        try:
            pipe = cls.from_pretrained(str(local_path(ckpt.source)) if ckpt.is_local else ckpt.source, **kw)
        except (OSError, ValueError) as exc:
            where = "local directory" if ckpt.is_local else "Hugging Face Hub id"
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise ModelUnavailable(
                f"model: {self.model} could not load its {role} checkpoint {ckpt.source!r} ({where}): "
                f"{type(exc).__name__}: {first}. Get it with `hf download "
                f"{ckpt.source if not ckpt.is_local else '<repo id> --local-dir ' + ckpt.source}` (accept "
                f"its licence on huggingface.co first if it is gated; {self.hub_hint}), or point "
                "the engine config at a local copy", field="model") from exc
        if self.openvino:
            for name, module in ready.items():
                setattr(pipe, name, module)
            self.convert(pipe, ckpt)
        return pipe

    def convert(self, pipe, ckpt: Checkpoint) -> None:
        """backend = "openvino": the pipeline's modules converted, their IR cached beside the weights
        (the pulled folder's, or the tiny autoencoder's own folder for its VAE)."""
        from .openvino_backend import vae_folders

        folder = local_path(ckpt.source) if ckpt.is_local else None
        self.openvino.convert_pipeline(pipe, folder, ckpt.variant, *vae_folders(folder, self.vae_source()))

    def share(self, cls, sibling):
        """A `cls` pipeline over `sibling`'s modules: no second copy in memory. The VAE is passed
        by hand, since from_pipe checks its type against the class's hint and drops a tiny
        autoencoder (or OpenVINO's stand-in), which made every role load the checkpoint again;
        the dtype is the sibling's own, since from_pipe otherwise casts the new pipeline, and
        with it the shared modules in place, to float32."""
        vae = {"vae": sibling.vae} if getattr(sibling, "vae", None) is not None else {}
        return cls.from_pipe(sibling, dtype=sibling.dtype, **vae)

    def place(self, pipe) -> None:
        """dtype, device, offload, VAE tiling/slicing, attention slicing, then acceleration.py's options."""
        if self.cfg.offload == "model":
            pipe.enable_model_cpu_offload(device=self.device)
        elif self.cfg.offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=self.device)
        elif self.cfg.device_map:
            pass  # placed by from_pretrained's device_map
        elif not (pipe.device.type == "cpu" and self.device == "cpu"):
            pipe.to(self.device)
        vae = getattr(pipe, "vae", None)
        if self.cfg.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if self.cfg.vae_slicing and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
        if self.cfg.attention_slicing and hasattr(pipe, "enable_attention_slicing"):
            pipe.enable_attention_slicing()
        if self.cfg.channels_last:  # oneDNN's convolutions without a layout change around each one
            for name in ("unet", "transformer", "vae"):
                module = getattr(pipe, name, None)
                if isinstance(module, torch.nn.Module):
                    module.to(memory_format=torch.channels_last)
        apply(pipe, self.cfg, self.device)  # caching, compile, quantization, attention backend


class PipelinePool:
    """Loaded pipelines, shared by the engines of one config file: two model ids on the same
    checkpoint hold one copy. One lock serialises jobs and loads (pipelines are not thread-safe,
    and one accelerator runs one job at a time anyway); a reaper thread unloads what has been
    idle for its idle_unload_seconds. Keys are (source, revision, variant, class, placement).
    `clock` (monotonic seconds) measures idleness; the reaper thread still ticks in real time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self._entries: dict[tuple, list] = {}  # key -> [pipe, last_used, idle_seconds]
        self._reaper: threading.Thread | None = None

    def get(self, key: tuple, build, idle_seconds: float):
        with self.lock:
            entry = self._entries.get(key)
            if entry is None:
                source, placement = key[0], key[-1]
                siblings = [e[0] for k, e in self._entries.items() if k[0] == source and k[-1] == placement]
                entry = self._entries[key] = [build(siblings), 0.0, idle_seconds]
                if idle_seconds > 0 and self._reaper is None:
                    self._reaper = threading.Thread(target=self._run_reaper, name="diffusers-unload", daemon=True)
                    self._reaper.start()
            entry[1] = self.clock()
            return entry[0]

    def release_buffers(self) -> None:
        """Every loaded pipeline's compiled modules (OpenVINO's) hand back the work buffers they keep
        between calls: before something large loads beside them (the translator), so that the
        process's peak is not the two together. Without the pool's lock (the translator loads
        outside a job, holding its own lock; a job may translate under the pool's): each module
        waits only for its own call in progress, and the next call allocates the buffers again."""
        seen: set[int] = set()
        for pipe, *_ in list(self._entries.values()):
            for component in pipe.components.values():
                for module in component.modules() if isinstance(component, torch.nn.Module) else ():
                    release = getattr(module, "release_buffers", None)
                    if release is not None and id(module) not in seen:
                        seen.add(id(module))
                        release()

    def touch(self, since: float) -> None:
        """Pipelines used by a job that began at `since` (pool clock) count as used now that it ended."""
        now = self.clock()
        for entry in self._entries.values():
            if entry[1] >= since:
                entry[1] = now

    def peek(self, key: tuple):
        entry = self._entries.get(key)
        return entry[0] if entry else None

    def drop(self, key: tuple) -> None:
        with self.lock:
            if self._entries.pop(key, None) is not None:
                _free()

    def reap(self) -> list[tuple]:
        """Unload every pipeline idle for at least its idle_unload_seconds; returns their keys."""
        with self.lock:
            now = self.clock()
            idle = [k for k, e in self._entries.items() if e[2] > 0 and now - e[1] >= e[2]]
            for k in idle:
                log.info("unloading %s (%s), idle for %.0fs", k[3], k[0], now - self._entries[k][1])
                del self._entries[k]
            if idle:
                _free()
            return idle

    def _run_reaper(self) -> None:
        while True:
            with self.lock:
                periods = [e[2] for e in self._entries.values() if e[2] > 0]
                if not periods:
                    self._reaper = None
                    return
            time.sleep(min(periods) / 4 + 0.01)
            if not self.lock.acquire(blocking=False):
                continue  # a job is running: nothing is idle
            try:
                self.reap()
            finally:
                self.lock.release()


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _trim_heap() -> None:
    """Hand the heap that loading freed (file buffers, conversions) back to the system: glibc keeps
    it otherwise, and on a CPU that RAM is what the images need next (measured: 0.07 GB less peak
    RSS for sd-turbo; docs/diffusers.md, "CPU arithmetic and memory")."""
    gc.collect()
    release_free_memory()


def module_bytes(pipe, seen: set[int]) -> int:
    """Bytes of parameters and buffers of the pipeline's modules not already in `seen`, and of the
    compiled OpenVINO models among them (which hold their weights outside torch)."""
    total = 0
    for comp in getattr(pipe, "components", {}).values():
        if isinstance(comp, torch.nn.Module) and id(comp) not in seen:
            seen.add(id(comp))
            total += sum(tensor_bytes(t) for t in (*comp.parameters(), *comp.buffers()))
            total += sum(m.weight_bytes() for m in comp.modules() if hasattr(m, "weight_bytes"))
    return total


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a tensor holds; a torchao quantized weight (a tensor subclass) is its int8 data and
    scales, not numel x the dtype it computes in."""
    flatten = getattr(t, "__tensor_flatten__", None)
    if flatten is None:
        return t.numel() * t.element_size()
    names, _ = flatten()
    return sum(tensor_bytes(getattr(t, name)) for name in names)


def pipeline_class(name: str):
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None:
        raise ValueError(f"diffusers {diffusers.__version__} has no pipeline class {name!r}")
    return cls


def local_path(source: str) -> Path:
    return Path(source).expanduser()
