"""OpenVINO as the CPU backend of the Stable Diffusion family (`backend = "openvino"`,
docs/diffusers.md "OpenVINO backend"), with the `openvino` package alone (no optimum-intel).

The pipeline stays diffusers' own (scheduler, callback, img2img and inpaint logic, the engine
around it); only its heavy modules run in OpenVINO:

    unet            the whole UNet2DConditionModel        -> OVUNet (a torch-module-shaped wrapper)
    text_encoder    the CLIP text model                    -> OVTextEncoder
    vae             its encoder and decoder submodules     -> OVPart inside a copy of the VAE object,
                                                              so .encode/.decode/.config stay diffusers'

Each is traced once with `openvino.convert_model` (from float32 weights) and saved as IR
(`model.xml` + weights in float16, as the pulled files are) under the checkpoint's folder, in
`.cache/openvino/<component>-<key>/` (`wanimage pull` and `folder_bytes` leave `.cache` alone). The
key covers the weight files (name, size, mtime), the openvino version and CONVERTER, so a restart
loads the IR without loading the torch weights at all, and new weights or a new converter convert
again. `quantize = { unet = "int8", text_encoder = "int8" }` compresses that component's IR weights
to int8 with NNCF (`nncf.compress_weights`, weight-only INT8_ASYM: per output channel, a float16
scale and a uint8 zero point, as optimum-intel's 8-bit export does; the MatMuls and embeddings, not
the convolutions: UNCOMPRESSED) before it is saved; that IR
lives in `<component>.int8-<key>/`, so a float16 IR is never read for int8 nor the other way. The
UNet's MatMuls at its two highest resolutions stay float16 as well (FLOAT16_LEVELS: compute-bound there). The
wrappers take and give float32 tensors; OpenVINO computes in its inference precision (`dtype`:
"auto" is OpenVINO's own choice, bfloat16 on CPUs that have it).

Shapes stay dynamic: one compiled model serves every size and batch. The UNet is traced at a latent
size that is not a multiple of its total downsampling, so the graph keeps diffusers'
`forward_upsample_size` path (upsample to the skip connection's size) and runs any size the torch
UNet runs."""

from __future__ import annotations

import contextlib
import copy
import gc
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import ModelUnavailable
from ...memory import madvise, release_free_memory
from .openvino_calibrate import Calibration, decoder_inputs, quantize_convolutions, unet_inputs

log = logging.getLogger(__name__)

CONVERTER = 1  # bump when the traced graphs change: IR cached by an older converter is rebuilt
PRECISIONS = {"bfloat16": "bf16", "float16": "f16", "float32": "f32"}  # dtype -> INFERENCE_PRECISION_HINT
CACHE = Path(".cache") / "openvino"
TEXT_ENCODERS = ("text_encoder",)
# quantize kind -> nncf.CompressWeightsMode of its MatMul and embedding weights (weight-only)
COMPRESSIONS = {"int8": "INT8_ASYM", "int8_hybrid": "INT8_ASYM"}
# kinds whose convolutions also run in int8, weights and activations, calibrated on inputs the
# pipeline makes (openvino_calibrate.py): the UNet's, and the VAE's decoder
CALIBRATED = ("int8_hybrid",)
Samples = Callable[[str, Any], "list | None"]  # (stem, float openvino.Model) -> its calibration inputs, or None
# Layers whose weights stay float16 when compressing: the CPU plugin folds int8 convolution weights
# back to float32 when it compiles (sd-turbo's UNet: 2.58 GB resident after compiling, 4.32 GB after
# a 512x512 call, against 0.39 and 2.16 GB with its MatMuls alone in int8 and 2.45 GB all float16),
# while it keeps MatMul weights in uint8. Part of the cache key.
UNCOMPRESSED = ("Convolution", "GroupConvolution")
# The UNet's MatMuls at its two highest resolutions stay float16 too: there a MatMul runs over
# 4096 or 1024 tokens (512x512) and is compute-bound, so int8 weights cost time to unpack (per-layer
# profile of sd-turbo's UNet: 69 of the 88 ms int8 added) and save little memory (their weights are
# 61M of the UNet's 300M MatMul parameters). Measured on sd-turbo, the IRs alternating in one process,
# 16 rounds: 0.958x the all-int8 UNet's CPU time, +67 MB of IR. Part of the cache key.
FLOAT16_LEVELS = 2
COMPRESSOR = 3  # bump when compress() changes: int8 IR made by an older one is rebuilt
CALIBRATOR = 3  # bump when openvino_calibrate.py changes what it measures: int8_hybrid IR is rebuilt
# an int8_hybrid UNet's conversion peak over its weights in float16: sd-turbo 11.7 / 1.73 GB, SDXS
# 4.4 / 0.64 GB (measured 7 Dec, the MatMul weights compressed before NNCF's statistics pass)
CALIBRATION_MEMORY = 8
# graphs traced from modules without a folder (tiny test checkpoints, Hub ids): once per module and process
_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# ------------------------------------------------------------------------ the calling thread's float mode

def flushes_denormals() -> bool:
    """Whether this thread flushes denormal float32 results to zero (the CPU's FTZ flag)."""
    tiny = np.finfo(np.float32).tiny
    return bool(np.float32(tiny) / np.float32(2) == 0)


@contextlib.contextmanager
def denormals_flushed():
    """FTZ/DAZ on in this thread while the block runs, its previous mode back after.

    CPU_DENORMALS_OPTIMIZATION sets the flags in the thread that compiles, and the plugin's workers
    take them from the thread that calls infer; set by the plugin alone they stayed on in that
    thread (and the threads it starts) for the rest of the process, changing every later numpy and
    torch result there (hypothesis refuses to run in such a process: the e2e fuzz test failed)."""
    before = flushes_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


# ------------------------------------------------------------------------ the IR's weight pages


class WeightPages:
    """The pages of IR weight files (`.bin`) that OpenVINO has memory-mapped, dropped from this
    process while it runs a model.

    OpenVINO's CPU plugin keeps the IR's float16 weights mapped beside its own bfloat16 copies
    (repacked at the first call of each shape) for the compiled model's whole life, so every weight
    counted twice in the resident set: the sd-turbo UNet alone 3.88 GB (1.73 GB of mapped float16
    file pages + 1.73 GB of its copy + work memory). The mapping is read-only and shared with the
    file, so `madvise(MADV_DONTNEED)` on it only unmaps the pages from this process: the file stays
    in the page cache (reclaimable, as the torch loader's reads leave it, streamed.py), and a page
    read again faults back in from the file, unchanged. Dropped every `period` seconds while a call
    runs and once when it ends, the UNet peaks at 2.19 GB (docs/diffusers.md "OpenVINO backend").
    Linux only (/proc/self/maps); elsewhere a no-op."""

    MADV_DONTNEED = 4

    def __init__(self, files: list[Path], period: float = 0.05):
        self.files = {os.path.realpath(f) for f in files}
        self.period = period

    def ranges(self) -> list[tuple[int, int]]:
        """(start, length) of each read-only mapping of the files now (re-read on each call: a
        range is only ever dropped while the compiled model that maps it is alive and in use)."""
        try:
            lines = Path("/proc/self/maps").read_text().splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5] in self.files and "w" not in parts[1]:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi - lo))
        return out

    def drop(self, ranges: list[tuple[int, int]]) -> None:
        advise = madvise()
        for start, length in ranges if advise else []:
            advise(start, length, self.MADV_DONTNEED)

    @contextlib.contextmanager
    def dropping(self):
        """While the block runs (one inference), the mapped weight pages are dropped every period."""
        ranges = self.ranges() if self.files else []
        if not ranges or madvise() is None:
            yield
            return
        done = threading.Event()

        def loop():
            while not done.wait(self.period):
                self.drop(ranges)

        thread = threading.Thread(target=loop, name="openvino-weight-pages", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.drop(ranges)


# ------------------------------------------------------------------------ torch-shaped wrappers


class Shapes:
    """Which input shapes a module is compiled for: static, the shapes of its latest call, as
    FastSD CPU runs OpenVINO (measured on the AMX Xeon: the UNet 9 %, the text encoder and TAESD's
    decoder 8 % less CPU time per call than one dynamic graph, docs/diffusers.md "OpenVINO
    backend"), recompiled when a call brings other shapes (sd-turbo's UNet: about 3.5 s, the old
    one freed first so memory holds one copy). When shapes keep changing (SWITCHES changes within
    WINDOW calls: clients asking several sizes) it compiles one dynamic graph for every shape
    and keeps it."""

    SWITCHES, WINDOW = 3, 20

    def __init__(self):
        self.current: tuple | None = None  # the shapes compiled for; () once dynamic
        self.calls = 0
        self.switched_at: list[int] = []  # call numbers of the recent recompiles

    def plan(self, shapes: tuple) -> tuple | None:
        """The shapes to compile for before this call (() for dynamic), or None to keep the compiled one."""
        self.calls += 1
        if self.current == () or shapes == self.current:
            return None
        if self.current is not None:
            self.switched_at = [c for c in self.switched_at if c > self.calls - self.WINDOW] + [self.calls]
        self.current = () if len(self.switched_at) >= self.SWITCHES else shapes
        return self.current


def ov_shape(shape: tuple):
    import openvino as ov

    return ov.PartialShape(list(shape))


class OVModule(torch.nn.Module):
    """An OpenVINO model behind a torch module's face: .config, .dtype and .device as the pipeline
    reads them (float32 on the CPU), float32 tensors in and out. Compiled at its first call, for
    that call's input shapes (Shapes), from the IR file or an in-memory ov.Model."""

    def __init__(self, core, source, device_config: dict, config: Any = None):
        super().__init__()
        self.core, self.source, self.device_config = core, source, device_config
        self.shapes = Shapes()
        self.compiled = self.request = None
        self.lock = threading.Lock()  # one infer request: calls (and recompiles) one at a time
        # the IR weight file this model maps, dropped from the process while it runs
        self.pages = WeightPages([source.with_suffix(".bin")]) if isinstance(source, Path) else WeightPages([])
        if config is not None:
            self.config = config
        # a tensor for diffusers' dtype/device lookups (ModelMixin.dtype reads the first one it finds)
        self.register_buffer("_probe", torch.zeros(()), persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def weight_bytes(self) -> int:
        """Its weights' bytes once compiled (0 before the first call): the IR's weight file, whose
        int8 and float16 constants the CPU plugin copies one for one (float16 into bfloat16)."""
        if self.compiled is None:
            return 0
        if isinstance(self.source, Path):
            return self.source.with_suffix(".bin").stat().st_size
        return sum(op.get_byte_size() for op in self.source.get_ops() if op.get_type_name() == "Constant")

    def compile_for(self, shapes: tuple) -> None:
        """Compile for these input shapes (() : every shape), the previous compiled model freed first."""
        self.compiled = self.request = None
        # an in-memory model is cloned: reshape() changes it in place, and a dynamic graph needs the original
        model = self.core.read_model(str(self.source)) if isinstance(self.source, Path) else self.source.clone()
        if shapes:
            model.reshape({port: ov_shape(shape) for port, shape in zip(model.inputs, shapes, strict=True)})
        elif self.shapes.calls > 1:
            log.info("openvino: %s called with %d different input shapes; one dynamic graph serves them all now "
                     "(about 9 %% slower per call than one compiled for a single shape)", type(self).__name__,
                     len(self.shapes.switched_at) + 1)
        # a static graph repacks its weights while compiling (a dynamic one at its first call): the
        # IR's mapped pages are dropped meanwhile, or they peak beside the copies (+1.2 GB for sd-turbo)
        with self.pages.dropping():
            self.compiled = self.core.compile_model(model, "CPU", self.device_config)
        del model
        self.request = self.compiled.create_infer_request()
        self.pages.drop(self.pages.ranges())

    def run(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        arrays = [np.ascontiguousarray(x.detach().cpu().numpy()) for x in inputs]
        with self.lock, denormals_flushed():
            shapes = self.shapes.plan(tuple(a.shape for a in arrays))
            if shapes is not None:
                self.compile_for(shapes)
            with self.pages.dropping():
                result = self.request.infer(arrays)
            return [torch.from_numpy(np.array(result[out])) for out in self.compiled.outputs]

    def release_buffers(self) -> None:
        """Hand back the work buffers the compiled model keeps between calls (146 MB for sd-turbo
        at 512x512, all modules); its next call allocates them again. Not after every call: faulting
        them in again cost 12 % of an image's CPU time (docs/diffusers.md "OpenVINO backend")."""
        with self.lock:
            if self.compiled is not None:
                self.compiled.release_memory()


class OVUNet(OVModule):
    """UNet2DConditionModel's call as the SD pipelines make it."""

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None, cross_attention_kwargs=None,
                added_cond_kwargs=None, return_dict: bool = True, **unused):
        if timestep_cond is not None or cross_attention_kwargs or any(v is not None for v in unused.values()):
            raise ModelUnavailable("model: backend = \"openvino\": this UNet call needs inputs the converted graph "
                                      "does not take (timestep_cond, adapters, ControlNet residuals); use backend = "
                                      "\"torch\" for this checkpoint")
        t = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1)[:1]  # one timestep for the batch
        out = self.run(sample.float(), t, encoder_hidden_states.float())[0]
        if not return_dict:
            return (out,)
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        return UNet2DConditionOutput(sample=out)


class OVTextEncoder(OVModule):
    """A CLIP text model: `(last_hidden_state,)` for the input ids."""

    warned = False

    def forward(self, input_ids, attention_mask=None, output_hidden_states=None, return_dict=None, **unused):
        if attention_mask is not None and not OVTextEncoder.warned:
            OVTextEncoder.warned = True
            log.warning("backend = \"openvino\": the text encoder's attention_mask is ignored (the graph reads "
                        "the ids only, as SD's CLIP does)")
        if output_hidden_states:
            raise ModelUnavailable("model: backend = \"openvino\": clip_skip (hidden states) is not converted; "
                                      "use backend = \"torch\"")
        return (self.run(input_ids.long())[0],)


class OVPart(OVModule):
    """A VAE's encoder or decoder: one tensor in, one out."""

    def forward(self, x, *unused):
        return self.run(x.float())[0]


# ------------------------------------------------------------------------------ conversion


class _UNetGraph(torch.nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class _TextGraph(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids):
        return self.encoder(input_ids, return_dict=False)[0]


def _example_unet(unet) -> dict:
    c = unet.config
    # 9x7 latents: not a multiple of the downsampling, so the traced graph keeps the upsample-to-size path
    return {"sample": torch.randn(1, c.in_channels, 9, 7), "timestep": torch.tensor([999.0]),
            "encoder_hidden_states": torch.randn(1, 77, c.cross_attention_dim)}


def _graphs(name: str, module) -> dict[str, tuple[torch.nn.Module, dict]]:
    """file stem -> (the torch module to trace, its example input) for one pipeline component."""
    if name == "unet":
        return {"model": (_UNetGraph(module), _example_unet(module))}
    if name in TEXT_ENCODERS:
        return {"model": (_TextGraph(module), {"input_ids": torch.zeros(1, 77, dtype=torch.long)})}
    latent = module.config.latent_channels
    return {"encoder": (module.encoder, {"x": torch.randn(1, 3, 64, 48)}),
            "decoder": (module.decoder, {"x": torch.randn(1, latent, 8, 6)})}


def convert(name: str, module, folder: Path | None, quantize: str | None = None,
            calibration: Samples | None = None) -> dict:
    """Trace the component to OpenVINO models: stem -> openvino.Model, its weights compressed to
    `quantize` (COMPRESSIONS) when given, then its convolutions quantized for a CALIBRATED kind
    (`calibration(stem, model)`: the inputs to measure, once the stem is traced; None leaves that
    stem's convolutions alone, e.g. a VAE's encoder); saved to `folder` as IR (written to a
    temporary folder, then renamed: two processes converting at once both finish)."""
    import openvino as ov

    if quantize in CALIBRATED and calibration is None:
        raise ValueError(f"quantize = {quantize!r} quantizes convolutions and needs calibration inputs")

    if folder is None and quantize in _TRACED.get(module, {}):
        return _TRACED[module][quantize]
    module = module.float().eval()  # float32 weights: the fp16 files convert exactly (IR stores float16)
    graphs = _graphs(name, module)
    keep = float16_scopes(name, module)
    owner = module if folder is None else None  # in memory: the cache's key
    del module  # to files: the float32 weights go once their graph is float16 (when the caller kept no reference)
    models = {}
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer's notes on shape checks it keeps as constants (CLIP's 77 tokens, batch < 64)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        for stem in list(graphs):
            graph, example = graphs.pop(stem)
            model = ov.convert_model(graph, example_input=example)
            del graph
            if folder is not None:
                model = float16(model)
            # MatMul weights to int8 first, then the convolutions calibrated (optimum-intel's order
            # for its hybrid mode): the statistics pass compiles int8 MatMul weights, not float32
            # copies of them, and measures the model as it will run
            model = compress(model, quantize, keep)
            samples = calibration(stem, model) if quantize in CALIBRATED else None
            if samples:
                model = quantize_convolutions(model, samples)
            models[stem] = model
            del model
    if folder is not None:
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for stem, model in models.items():
            ov.save_model(model, tmp / f"{stem}.xml", compress_to_fp16=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process wrote it first
            shutil.rmtree(tmp, ignore_errors=True)
        prefix = folder.name.rpartition("-")[0]  # `unet` or `unet.int8`: the other kind's IR stays
        for stale in folder.parent.glob(f"{prefix}-*"):  # IR of older weights or converters
            if stale != folder and ".tmp-" not in stale.name:
                shutil.rmtree(stale, ignore_errors=True)
    else:
        _TRACED.setdefault(owner, {})[quantize] = models
    return models


def float16(model):
    """The model with its float32 weights stored in float16, as save_model(compress_to_fp16=True)
    writes them, done before saving: the float32 constants (the torch module's memory, which they
    share) are released here, before NNCF compresses, not after."""
    from openvino._offline_transformations import compress_model_transformation

    compress_model_transformation(model)
    gc.collect()
    release_free_memory()
    return model


def float16_scopes(name: str, module) -> list[str]:
    """Node-name patterns (regular expressions) of the layers `compress` leaves float16 beyond
    UNCOMPRESSED: a UNet's down and up blocks at its FLOAT16_LEVELS highest resolutions, never its
    lowest (the traced graph names its nodes after the torch modules, e.g.
    `__module.unet.down_blocks.0.attentions...`)."""
    if name != "unet":
        return []
    levels = len(module.config.block_out_channels)
    kept = range(min(FLOAT16_LEVELS, levels - 1))
    if not kept:
        return []
    blocks = [f"down_blocks\\.{i}" for i in kept] + [f"up_blocks\\.{levels - 1 - i}" for i in kept]
    return [f".*\\.({'|'.join(blocks)})\\..*"]


def compress(model, quantize: str | None, keep: list[str] | tuple[str, ...] = ()):
    """The model with its MatMul and embedding (Gather) weights compressed in place by NNCF,
    weight-only: activations stay in the inference precision; convolutions stay float16
    (UNCOMPRESSED), and the layers whose names match a `keep` pattern. None: the model as it is."""
    if quantize is None:
        return model
    import nncf

    # float32 weights to float16 first, as save_model(compress_to_fp16=True) does for a float IR (it
    # skips a model NNCF has compressed): else the convolutions' weights are stored in float32
    float16(model)
    return nncf.compress_weights(model, mode=getattr(nncf.CompressWeightsMode, COMPRESSIONS[quantize]),
                                 ignored_scope=nncf.IgnoredScope(types=list(UNCOMPRESSED), patterns=list(keep),
                                                                 validate=False))


def cache_folder(root: Path | None, name: str, files: Path | None, variant: str | None,
                 quantize: str | None = None) -> Path | None:
    """Where a component's IR lives: `<root>/.cache/openvino/<name>[.<quantize>]-<key>`, the key
    from the weight files in `files` (a component folder), the variant, the compression, openvino's
    version and CONVERTER (and nncf's when it compresses)."""
    if root is None or files is None or not files.is_dir():
        return None
    import openvino as ov

    stats = sorted((p.relative_to(files).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in files.iterdir() if p.is_file() and not p.name.startswith("."))
    tools = [ov.__version__, CONVERTER]
    if quantize is not None:
        from importlib.metadata import version

        tools += [quantize, version("nncf"), UNCOMPRESSED, FLOAT16_LEVELS, COMPRESSOR]
        if quantize in CALIBRATED:
            tools += [CALIBRATOR]
    blob = json.dumps([*tools, name, variant, stats]).encode()
    stem = name if quantize is None else f"{name}.{quantize}"
    return root / CACHE / f"{stem}-{hashlib.sha1(blob).hexdigest()[:16]}"


# ------------------------------------------------------------------------------ the backend


class OpenVinoBackend:
    """Converts (or loads from cache) one pipeline's modules and puts the wrappers in their place."""

    def __init__(self, dtype_name: str | None, threads: int | None = None, quantize: dict | None = None,
                 steps: int | None = None, guidance: float | None = None):
        import openvino as ov

        self.core = ov.Core()
        self.quantize = dict(quantize or {})  # component -> COMPRESSIONS kind (`transformer`: the UNet)
        if "transformer" in self.quantize:
            self.quantize.setdefault("unet", self.quantize.pop("transformer"))
        self.steps, self.guidance = steps, guidance  # the model's, for a CALIBRATED UNet's sampling run
        # denormal floats flushed to zero (FTZ/DAZ) in the plugin's threads: sd-turbo's UNet 0.95 of
        # the CPU time with the same outputs (the IRs alternating in one process, 20 rounds, against
        # 0.986 for a second copy of the default: docs/diffusers.md "OpenVINO backend"); the
        # calling thread's own mode is kept (OVModule.run: denormals_flushed)
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "CPU_DENORMALS_OPTIMIZATION": "YES"}
        if dtype_name and dtype_name != "auto":
            self.config["INFERENCE_PRECISION_HINT"] = PRECISIONS[dtype_name]
        self.config["INFERENCE_NUM_THREADS"] = threads or torch.get_num_threads()

    def compile(self, cls, model_or_path, config: Any = None) -> OVModule:
        """`cls` around the IR file or ov.Model, compiled at its first call (OVModule)."""
        return cls(self.core, model_or_path, self.config, config)

    def wrap(self, name: str, module_or_config, models: dict):
        """The torch-shaped stand-in for component `name`."""
        if name == "unet":
            return self.compile(OVUNet, models["model"], module_or_config)
        if name in TEXT_ENCODERS:
            return self.compile(OVTextEncoder, models["model"], module_or_config)
        vae = copy.copy(module_or_config)  # the VAE object itself (tiny, and shared in tests): a copy
        vae._modules = dict(vae._modules)  # of its module table, so the original keeps its parts
        vae._modules["encoder"] = self.compile(OVPart, models["encoder"])
        vae._modules["decoder"] = self.compile(OVPart, models["decoder"])
        return vae

    # ----------------------------------------------------------------- pulled folders

    def ir_folders(self, folder: Path, variant: str | None, names: set[str]) -> dict[str, Path]:
        """component -> its IR's cache folder, for the UNet and text encoders of a pulled pipeline
        folder among `names` (whether or not the IR is there yet)."""
        out = {}
        for name in (n for n in ("unet", *TEXT_ENCODERS) if n in names and (folder / n / "config.json").is_file()):
            where = cache_folder(folder, name, folder / name, variant, self.quantize.get(name))
            if where is not None:
                out[name] = where
        return out

    def ensure_ir(self, folder: Path, variant: str | None, names: set[str], echo=None) -> dict[str, Path]:
        """The IR of the pulled folder's UNet and text encoders, converted where missing, all in one
        child process (convert_in_child): the float32 torch weights and the tracer's graphs never
        count in this process. `echo(str)`: where to say what is converted (the log otherwise)."""
        unet = self.ir_folders(folder, variant, names & {"unet"}).get("unet")
        if (unet is not None and not (unet / "model.xml").is_file() and self.quantize.get("unet") in CALIBRATED
                and not room_to_calibrate(folder, variant)):
            self.quantize["unet"] = "int8"  # its int8 MatMul weights without the int8 convolutions
        wanted = self.ir_folders(folder, variant, names)
        missing = {name: where for name, where in wanted.items() if not (where / "model.xml").is_file()}
        if "unet" in missing:
            check_unet(_config("unet", folder / "unet"))
        if missing:
            convert_in_child(folder, variant, {n: (self.quantize.get(n), w) for n, w in missing.items()}, echo,
                             steps=self.steps, guidance=self.guidance)
        return wanted

    def ensure_vae_ir(self, folder: Path | None, variant: str | None, vae_root: Path | None,
                      vae_files: Path | None, echo=None) -> Path | None:
        """The IR folder of a calibrated VAE (quantize.vae = "int8_hybrid": its decoder's inputs are
        latents the converted UNet makes), converted where missing in a child, as the UNet's:
        calibrating imports NNCF and runs the UNet, neither of which should count in the server's
        memory. None where the VAE is not calibrated (it converts in memory at load, in seconds)
        or its files are not in a folder (`vae_folders`)."""
        if self.quantize.get("vae") not in CALIBRATED or folder is None:
            return None
        where = cache_folder(vae_root, "vae", vae_files, None if vae_root != folder else variant, self.quantize["vae"])
        if where is None:
            return None
        if not all((where / f"{stem}.xml").is_file() for stem in ("encoder", "decoder")):
            irs = {n: str(p / "model.xml") for n, p in self.ir_folders(folder, variant, {"unet", *TEXT_ENCODERS}).items()}
            convert_in_child(folder, variant, {"vae": (self.quantize["vae"], where)}, echo, steps=self.steps,
                             guidance=self.guidance, vae=vae_files, irs=irs)
        return where

    def cached(self, folder: Path, variant: str | None, names: set[str]) -> dict:
        """Wrappers for the UNet and text encoders of a pulled pipeline folder, from their IR
        (converted first where it is missing): loaded without their torch weights (the VAE always
        loads in torch: its object wraps the parts)."""
        out = {}
        for name, where in self.ensure_ir(folder, variant, names).items():
            out[name] = self.wrap(name, _config(name, folder / name), {"model": where / "model.xml"})
            log.info("openvino: %s from %s", name, where)
        return out

    def convert_pipeline(self, pipe, folder: Path | None, variant: str | None, vae_root: Path | None,
                         vae_files: Path | None) -> None:
        """Every torch UNet / text encoder / VAE of `pipe` replaced by its OpenVINO stand-in,
        IR written to the folders' caches (None: converted in memory, e.g. tiny test checkpoints)."""
        for name in ("unet", *TEXT_ENCODERS, "vae"):
            module = getattr(pipe, name, None)
            if module is None or isinstance(module, OVModule) or isinstance(getattr(module, "decoder", None), OVPart):
                continue
            if name == "vae":
                where = cache_folder(vae_root, name, vae_files, None if vae_root != folder else variant,
                                     self.quantize.get(name))
            else:
                where = cache_folder(folder, name, None if folder is None else folder / name, variant,
                                     self.quantize.get(name))
            stems = ("encoder", "decoder") if name == "vae" else ("model",)
            if name == "unet":
                check_unet(module.config)
            if where is not None and all((where / f"{s}.xml").is_file() for s in stems):
                models = {s: where / f"{s}.xml" for s in stems}
            elif name == "vae" and (made := self.ensure_vae_ir(folder, variant, vae_root, vae_files)) is not None:
                models = {s: made / f"{s}.xml" for s in stems}
            else:
                log.info("openvino: converting %s (%s) once%s%s", name, type(module).__name__,
                         f", weights in {self.quantize[name]}" if name in self.quantize else "",
                         f"; IR cached in {where}" if where else "")
                models = convert(name, module, where, self.quantize.get(name), partial(self.samples, pipe, name, module))
                if where is not None:  # compile from the files: OpenVINO maps the weights
                    models = {s: where / f"{s}.xml" for s in stems}
            setattr(pipe, name, self.wrap(name, module if name == "vae" else module.config, models))


    def samples(self, pipe, name: str, module, stem: str, model) -> list | None:
        """Calibration inputs for component `name`'s `stem` (convert's `calibration`): the UNet's
        (converted first, while the text encoder is still torch's), the VAE's decoder's (made by
        the converted UNet and text encoder); None for the rest."""
        unet_config = module.config if name == "unet" else pipe.unet.config
        calibration = Calibration.of(pipe.tokenizer, pipe.text_encoder, pipe.scheduler, unet_config,
                                     self.steps, self.guidance)
        if name == "unet":
            return unet_inputs(model, calibration)
        if name == "vae" and stem == "decoder":
            def unet(inputs):
                with torch.no_grad():
                    return pipe.unet(*(torch.from_numpy(x) for x in inputs), return_dict=False)[0].numpy()

            return decoder_inputs(module, unet, calibration)
        return None


def room_to_calibrate(folder: Path, variant: str | None) -> bool:
    """Whether this machine has the memory an int8_hybrid UNet's conversion peaks at: about
    CALIBRATION_MEMORY times its weights in float16 (sd-turbo's 1.73 GB peaked at 11.7 GB, in
    NNCF's statistics pass). Where it has not, a warning says so and the UNet converts to int8
    weights alone (6.2 GB for sd-turbo), rather than the child being killed and the model left
    unservable."""
    from ...memory import available_bytes
    from .streamed import weight_file

    weights, free = weight_file(folder / "unet", variant), available_bytes()
    if weights is None or free is None:
        return True
    need = CALIBRATION_MEMORY * float16_bytes(weights)
    if free >= need:
        return True
    log.warning("openvino: the UNet's int8 convolutions (quantize.unet = \"int8_hybrid\") need about %.1f GB of "
                "memory to convert once and %.1f GB is available: converting it with int8 weights alone (about "
                "1.2-1.3x its time per image); a start with that memory free converts them", need / 1e9, free / 1e9)
    return False


def float16_bytes(file: Path) -> int:
    """A safetensors file's size were its weights float16: half a float32 file's (SDXS publishes
    float32 only), by the dtype of its first tensor; the size itself where the header cannot be read."""
    from safetensors import safe_open

    size = file.stat().st_size
    try:
        with safe_open(str(file), framework="np") as weights:
            first = next(iter(weights.keys()), None)
            dtype = weights.get_slice(first).get_dtype() if first is not None else None
    except Exception:  # not a safetensors header: counted as it is
        return size
    return size // 2 if dtype == "F32" else size


def convert_in_child(folder: Path, variant: str | None, jobs: dict[str, tuple[str | None, Path]], echo=None, *,
                     steps: int | None = None, guidance: float | None = None, vae: Path | None = None,
                     irs: dict[str, str] | None = None) -> None:
    """Convert components of a pulled folder to IR in a process of its own (`python -m
    wanimage.engines.diffusers.openvino_convert`), one after the other: `jobs` is component ->
    (quantize kind or None, IR folder). Tracing holds the float32 module and its graph (sd-turbo's
    UNet peaks at several GB), which a server (or `wanimage pull`) should not keep: the child gives
    every page back when it exits. Its output (NNCF's tables and progress bars) goes to the log."""
    say = echo or log.info
    spec = [[name, quantize or "", str(where)] for name, (quantize, where) in jobs.items()]
    cmd = [sys.executable, "-m", "wanimage.engines.diffusers.openvino_convert", str(folder), json.dumps(spec)]
    if variant:
        cmd += ["--variant", variant]
    cmd += [f"--steps={steps}"] if steps else []
    cmd += [f"--guidance={guidance}"] if guidance is not None else []
    cmd += ["--vae", str(vae), "--irs", json.dumps(irs or {})] if vae is not None else []
    package_root = str(Path(__file__).resolve().parents[3])  # the folder holding `wanimage`, as imported here
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    calibrated = any(q in CALIBRATED for q, _ in jobs.values())
    say(f"openvino: converting {', '.join(f'{n} ({q})' if q else n for n, (q, _) in jobs.items())} of {folder} "
        "once, in a child process (" + ("int8 convolutions are calibrated first: 4 to 7 minutes and 12 GB of "
        "memory for SD-Turbo's UNet on 2 cores" if calibrated else "a minute or two for SD-Turbo") +
        "); the IR is kept for every later start")
    started = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in (run.stdout + run.stderr).splitlines():
        log.debug("openvino convert: %s", line)
    missing = [name for name, (_, where) in jobs.items() if not any(where.glob("*.xml"))]  # a VAE's: two
    if run.returncode != 0 or missing:
        tail = " | ".join(line.strip() for line in (run.stderr or run.stdout).strip().splitlines()[-3:])
        killed = " (killed: out of memory?)" if run.returncode in (-9, 137) else ""
        raise ModelUnavailable(f"model: backend = \"openvino\" could not convert {', '.join(missing or jobs)} of "
                               f"{folder}: exit {run.returncode}{killed}: {tail or 'no output'}; use backend = "
                               "\"torch\" or check the pulled files", field="model")
    say(f"openvino: converted in {time.monotonic() - started:.0f}s")


def convert_ahead(configs: dict, echo=print) -> int:
    """`wanimage pull`: the IR of every pulled checkpoint that a `backend = "openvino"` model of
    `configs` (model id -> ModelConfig) serves, converted now, each in a child process, so that no
    server start converts. The number of checkpoint folders looked at."""
    seen = set()
    for cfg in configs.values():
        if cfg.backend != "openvino":
            continue
        backend = OpenVinoBackend(cfg.dtype, quantize=cfg.quantize, steps=cfg.steps, guidance=cfg.guidance)
        for ckpt in cfg.roles.values():
            key = (ckpt.source, ckpt.variant, tuple(sorted(backend.quantize.items())))
            if ckpt.is_tiny or not ckpt.is_local or key in seen:
                continue
            seen.add(key)
            folder = Path(ckpt.source).expanduser()
            backend.ensure_ir(folder, ckpt.variant, {"unet", *TEXT_ENCODERS}, echo)
            backend.ensure_vae_ir(folder, ckpt.variant, *vae_folders(folder, cfg.vae), echo)
    return len(seen)


def vae_folders(folder: Path | None, vae: str | None) -> tuple[Path | None, Path | None]:
    """(root, files) of the VAE a pipeline folder is served with: its own `vae/` (config `vae`
    None or "full"), else the tiny autoencoder's folder, which holds its IR cache too; (None,
    None) for one that is not a folder (a Hub id, "tiny:taesd"): converted in memory."""
    if vae in (None, "full"):
        return folder, None if folder is None else folder / "vae"
    local = Path(vae).expanduser()
    return (local, local) if local.is_dir() else (None, None)


def check_unet(config) -> None:
    """The graph takes (sample, timestep, text embeddings): a UNet that needs more is refused at load."""
    extra = [k for k in ("time_cond_proj_dim", "addition_embed_type", "class_embed_type", "encoder_hid_dim_type")
             if config.get(k) is not None]
    if extra:
        raise ModelUnavailable(f"model: backend = \"openvino\" converts UNets conditioned on the timestep and the "
                               f"text only; this one also takes {', '.join(extra)}: use backend = \"torch\"",
                               field="model")


def _config(name: str, folder: Path):
    """A component's config as its torch module would carry it, read from its config.json."""
    if not (folder / "config.json").is_file():
        return None
    if name == "unet":
        from diffusers.configuration_utils import FrozenDict

        return FrozenDict(json.loads((folder / "config.json").read_text()))
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(folder))
