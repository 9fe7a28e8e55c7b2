"""backend = "openvino" (engines/diffusers/openvino_backend.py) on tiny random-weight SD components:
every mode through DiffusersEngine with the UNet, the CLIP text encoder and TAESD converted to
OpenVINO, the same seed giving the same pixels, images close to the torch backend's, the IR cached
beside pulled weights so a restart does not convert, and clear errors naming the key. Nothing is
downloaded."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from PIL import Image

from wanimage.core.job import make_job
from wanimage.engines.base import GenerationJob, no_progress
from wanimage.engines.diffusers import FAMILIES, engines_from_configs
from wanimage.engines.diffusers import openvino_backend as ovb
from wanimage.engines.diffusers.acceleration import check_device
from wanimage.engines.diffusers.config import AccelerationError, EngineConfigError, parse_config
from wanimage.engines.diffusers.engine import DiffusersEngine
from wanimage.engines.diffusers.loader import PipelinePool
from wanimage.engines.diffusers.tiny import tiny_cpu_speedups
from wanimage.errors import ModelUnavailable
from wanimage.types import Box, Mode

ROLES = {role: "tiny:sd" for role in ("text_to_image", "edit", "inpaint", "refine")}
FAST = {"steps": 2, "max_generate_pixels": 64 * 48, "reference_pixels": 48 * 48, "vae": "tiny:taesd"}


@pytest.fixture(scope="module", autouse=True)
def tiny_and_fast():
    with tiny_cpu_speedups():
        yield


def config(**overrides):
    return parse_config({"models": {"m": {"family": "sd", **ROLES, **FAST, **overrides}}})["m"]


def make_engine(pool: PipelinePool | None = None, **overrides) -> DiffusersEngine:
    return DiffusersEngine("wan2.7-image", config(**overrides), FAMILIES["sd"], pool=pool)


@pytest.fixture(scope="module")
def ov_engine() -> DiffusersEngine:
    return make_engine(backend="openvino", dtype="float32")


@pytest.fixture(scope="module")
def torch_engine() -> DiffusersEngine:
    return make_engine()  # tiny components compute in float32


def job(mode: Mode, width=100, height=70, n=1, seed=7, prompt="a red apple on a table", **kw) -> GenerationJob:
    return make_job("wan2.7-image", mode, prompt, width, height, n, seed, **kw)


def photo(w=120, h=90, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def pixels(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=np.int16)


def test_the_pipelines_modules_run_in_openvino_and_are_shared_by_every_role(ov_engine):
    pipe = ov_engine.pipeline("text_to_image")
    assert isinstance(pipe.unet, ovb.OVUNet) and isinstance(pipe.text_encoder, ovb.OVTextEncoder)
    assert isinstance(pipe.vae.decoder, ovb.OVPart) and isinstance(pipe.vae.encoder, ovb.OVPart)
    for role in ("edit", "inpaint", "refine"):  # from_pipe: one converted copy for all four roles
        other = ov_engine.pipeline(role)
        assert other.unet is pipe.unet and other.text_encoder is pipe.text_encoder and other.vae is pipe.vae
    assert not ovb.flushes_denormals()
    ov_engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)  # compiled at their first call
    for module in (pipe.unet, pipe.text_encoder, pipe.vae.decoder):  # latency settings, denormals flushed
        assert module.compiled.get_property("PERFORMANCE_HINT") == "LATENCY"
        assert module.compiled.get_property("CPU_DENORMALS_OPTIMIZATION") is True
    # ... in the plugin's threads only: the caller's thread computes as before (IEEE denormals)
    assert not ovb.flushes_denormals()


def test_text_to_image_same_seed_same_pixels_and_close_to_torch(ov_engine, torch_engine):
    images = ov_engine.generate(job(Mode.TEXT_TO_IMAGE, n=2), no_progress)
    assert [im.size for im in images] == [(100, 70)] * 2
    ov_engine.pool.release_buffers()  # as before a translator loads: the next call allocates them again
    again = ov_engine.generate(job(Mode.TEXT_TO_IMAGE, n=2), no_progress)
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(images, again, strict=True))
    alone = ov_engine.generate(job(Mode.TEXT_TO_IMAGE, seed=8), no_progress)[0]
    assert np.array_equal(pixels(alone), pixels(images[1]))  # image i == a run with seed + i
    assert not np.array_equal(pixels(images[0]), pixels(images[1]))
    reference = torch_engine.generate(job(Mode.TEXT_TO_IMAGE, n=2), no_progress)
    diff = np.mean([np.abs(pixels(a) - pixels(b)).mean() for a, b in zip(images, reference, strict=True)])
    # measured 0.00 (0-255) here; OpenVINO's float32 kernels may round differently from torch's elsewhere
    assert diff < 1.0, diff


def test_default_precision_stays_close_to_torch_float32(torch_engine):
    """dtype "auto": OpenVINO's own precision (bfloat16 on CPUs that compute it natively)."""
    engine = make_engine(backend="openvino")
    image = engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    reference = torch_engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    assert np.array_equal(pixels(image), pixels(engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]))
    diff = np.abs(pixels(image) - pixels(reference)).mean()
    assert diff < 3.0, diff  # measured 0.30-0.34 with bfloat16 on an AVX512-BF16 CPU


def test_box_edits_keep_every_pixel_outside_the_boxes(ov_engine):
    src, boxes = photo(), [Box(10, 10, 60, 50)]
    out = ov_engine.generate(job(Mode.EDIT, 120, 90, images=[src], boxes=[boxes]), no_progress)[0]
    inside = np.zeros((90, 120), dtype=bool)
    inside[10:50, 10:60] = True
    assert np.array_equal(pixels(out)[~inside], pixels(src)[~inside])
    assert not np.array_equal(pixels(out)[inside], pixels(src)[inside])
    again = ov_engine.generate(job(Mode.EDIT, 120, 90, images=[src], boxes=[boxes]), no_progress)[0]
    assert np.array_equal(pixels(out), pixels(again))


def test_edits_and_sets(ov_engine):
    edit = ov_engine.generate(job(Mode.EDIT, images=[photo()]), no_progress)[0]
    assert edit.size == (100, 70)
    assert np.array_equal(pixels(edit), pixels(ov_engine.generate(job(Mode.EDIT, images=[photo()]), no_progress)[0]))
    sets = ov_engine.generate(job(Mode.IMAGE_TO_IMAGE_SET, n=2, images=[photo()],
                                  prompt="image 1: a cat. image 2: the cat asleep"), no_progress)
    assert [im.size for im in sets] == [(100, 70)] * 2
    text_sets = ov_engine.generate(job(Mode.TEXT_TO_IMAGE_SET, n=2, prompt="image 1: a cat. image 2: the cat asleep"),
                                   no_progress)
    assert [im.size for im in text_sets] == [(100, 70)] * 2


def test_errors_name_the_key():
    with pytest.raises(EngineConfigError, match=r"backend = \"openvino\": converts the sd family's modules only, not "
                                                r"the sdxl family's"):
        parse_config({"models": {"m": {"family": "sdxl", "text_to_image": "tiny:sdxl", "backend": "openvino"}}})
    with pytest.raises(EngineConfigError, match=r"backend: one of torch, openvino, got 'tensorrt'"):
        config(backend="tensorrt")
    with pytest.raises(EngineConfigError, match=r"backend = \"openvino\": compile act on torch modules"):
        config(backend="openvino", compile=True)
    with pytest.raises(AccelerationError, match=r"backend = \"openvino\" runs on the CPU; this model runs on cuda"):
        check_device(config(backend="openvino"), "cuda", "models.m")
    from wanimage.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match=r"UNets conditioned on the timestep and the text only; this one also "
                                               r"takes time_cond_proj_dim: use backend = \"torch\""):
        ovb.check_unet({"time_cond_proj_dim": 256, "addition_embed_type": None})  # an LCM UNet


def test_without_the_openvino_package_start_up_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    with pytest.raises(AccelerationError, match=r"models\.wan2\.7-image\.backend = \"openvino\" needs the openvino "
                                                r"package: `pip install 'wanimage\[openvino\]'`"):
        engines_from_configs({"wan2.7-image": config(backend="openvino")})


def mapped_kb(path) -> list[int]:
    """Resident kB of each mapping of `path` in this process (/proc/self/smaps)."""
    import os

    real, out, current = os.path.realpath(path), [], False
    for line in open("/proc/self/smaps"):
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:  # a mapping's first line
            current = len(head) == 6 and head[5] == real
        elif current and line.startswith("Rss:"):
            out.append(int(head[1]))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps and madvise: Linux")
def test_weight_pages_are_dropped_from_the_process_and_read_back_unchanged(tmp_path):
    import mmap

    data = np.random.default_rng(0).integers(0, 256, 4 << 20, dtype=np.uint8).tobytes()
    (tmp_path / "model.bin").write_bytes(data)
    with open(tmp_path / "model.bin", "rb") as f:
        view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # read-only and shared, as OpenVINO maps it
    assert view[:] == data and mapped_kb(tmp_path / "model.bin") == [4096]  # every page resident
    pages = ovb.WeightPages([tmp_path / "model.bin"])
    with pages.dropping():
        pass
    assert mapped_kb(tmp_path / "model.bin") == [0]
    assert view[:] == data  # faulted back in from the file
    view.close()


@pytest.fixture(scope="module")
def pulled(tmp_path_factory):
    """A pulled tiny SD folder (fp16 files) and TAESD beside it, served with backend = "openvino":
    its first start, watched (what converted in this process, whether a UNet or CLIP text
    encoder was built in torch here, which IR weight pages stayed resident after the call, the
    engine still serving), the image it drew, and the overrides that serve it. The IR its first
    start caches is shared by the tests below (a conversion child costs 20-30 s here)."""
    import gc
    import weakref

    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from wanimage.engines.diffusers.models_dir import folder_bytes
    from wanimage.engines.diffusers.tiny import tiny_component, tiny_pipeline

    root = tmp_path_factory.mktemp("pulled")
    tiny_pipeline(StableDiffusionPipeline, "sd").save_pretrained(root / "sd", variant="fp16")
    tiny_component("taesd", "vae").save_pretrained(root / "taesd")
    pulled_bytes = folder_bytes(root / "sd")
    roles = {role: {"checkpoint": str(root / "sd"), "variant": "fp16"} for role in ROLES}
    overrides = {**roles, "vae": str(root / "taesd"), "backend": "openvino", "dtype": "float32"}
    converted, convert = [], ovb.convert

    def tracked(name, module, folder, quantize=None, calibration=None):
        converted.append(weakref.ref(module))
        return convert(name, module, folder, quantize, calibration)

    def never(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__} built in torch in the server's process")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ovb, "convert", tracked)
        patch.setattr(UNet2DConditionModel, "__init__", never)
        patch.setattr(CLIPTextModel, "__init__", never)
        engine = make_engine(PipelinePool(), **overrides)
        first = engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    gc.collect()
    bins = [*(root / "sd" / ".cache").rglob("*.bin"), *(root / "taesd" / ".cache").rglob("*.bin")]
    return {"root": root, "overrides": overrides, "first": first, "converted": converted, "engine": engine,
            "resident": {str(b.relative_to(root)): mapped_kb(b) for b in bins},  # while the engine lives
            "bytes_before": pulled_bytes, "bytes_after": folder_bytes(root / "sd"),
            "cached": sorted(p.name.split("-")[0] for p in (root / "sd" / ".cache" / "openvino").iterdir()),
            "cached_vae": [p.name.split("-")[0] for p in (root / "taesd" / ".cache" / "openvino").iterdir()]}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps: Linux")
def test_after_a_call_no_ir_weight_page_stays_resident_and_no_torch_module_stays_alive(pulled):
    """The UNet and the text encoder convert in a child process: even the first start never builds
    them in torch here (their float32 weights and the tracer's graph are the child's); the fp16 IR
    weights OpenVINO keeps mapped beside its own copies are not counted in the process; the VAE,
    converted here, is freed."""
    assert pulled["first"].size == (100, 70)
    converted, resident = pulled["converted"], pulled["resident"]
    assert len(converted) == 1 and converted[0]() is None  # the VAE; the others in the child
    assert len(resident) == 4 and all(sum(kb) == 0 for kb in resident.values()), resident
    assert any(resident.values())  # mapped, as OpenVINO maps them, and nothing resident


def test_ir_is_cached_beside_the_pulled_weights_and_a_restart_does_not_convert(pulled, monkeypatch):
    assert pulled["cached"] == ["text_encoder", "unet"] and pulled["cached_vae"] == ["vae"]
    assert pulled["bytes_after"] == pulled["bytes_before"]  # `wanimage models` sizes the pulled files only

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(ovb, "convert", no_conversion)
    monkeypatch.setattr(ovb, "convert_in_child", no_conversion)
    restarted = make_engine(PipelinePool(), **pulled["overrides"])  # a new pool: nothing in memory
    again = restarted.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    assert np.array_equal(pixels(pulled["first"]), pixels(again))
    assert isinstance(restarted.pipeline("text_to_image").unet, ovb.OVUNet)


def test_shapes_compile_static_and_turn_dynamic_when_sizes_keep_changing():
    a, b, c = ((1, 4, 8, 8),), ((1, 4, 8, 12),), ((1, 4, 12, 8),)
    shapes = ovb.Shapes()
    assert shapes.plan(a) == a and shapes.plan(a) is None  # compiled for the first call's shapes, then kept
    assert shapes.plan(b) == b and shapes.plan(a) == a  # a size change recompiles, twice
    assert shapes.plan(c) == ()  # a third change within the window: one dynamic graph
    assert shapes.plan(a) is None and shapes.plan(b) is None  # and it stays
    spread = ovb.Shapes()
    for shape in (a, b, a, b, a):  # changes further apart than the window: static each time
        assert spread.plan(shape) == shape
        for _ in range(ovb.Shapes.WINDOW):
            assert spread.plan(shape) is None


def test_a_size_change_recompiles_for_the_new_shapes_with_the_same_pixels():
    engine = make_engine(backend="openvino", dtype="float32")
    assert engine.describe()["bytes"] == 0  # nothing loaded yet
    first = engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    unet_weights = engine.pipeline("text_to_image").unet.weight_bytes()
    assert unet_weights > 0 and engine.describe()["bytes"] > unet_weights  # `wanimage models` counts OpenVINO's
    unet = engine.pipeline("text_to_image").unet
    assert all(port.get_partial_shape().is_static for port in unet.compiled.inputs)
    compiled = unet.compiled
    assert engine.generate(job(Mode.TEXT_TO_IMAGE, width=70, height=100), no_progress)[0].size == (70, 100)
    assert unet.compiled is not compiled and all(p.get_partial_shape().is_static for p in unet.compiled.inputs)
    again = engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    assert np.array_equal(pixels(first), pixels(again))


def test_a_failed_conversion_names_the_component_and_what_to_do(tmp_path):
    """The child's failure reaches the user as a model error with its last words, not a stack trace."""
    from diffusers import StableDiffusionPipeline

    from wanimage.engines.diffusers.tiny import tiny_pipeline

    tiny_pipeline(StableDiffusionPipeline, "sd").save_pretrained(tmp_path / "sd")
    (tmp_path / "sd" / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    backend = ovb.OpenVinoBackend("float32")
    with pytest.raises(ModelUnavailable) as caught:
        backend.ensure_ir(tmp_path / "sd", None, {"unet"})
    message = caught.value.message
    assert "could not convert unet" in message and 'backend = "torch"' in message, message
    assert not any((tmp_path / "sd" / ".cache" / "openvino").glob("unet-*/model.xml"))


# ------------------------------------------------------------------ quantize = "int8": NNCF on the IR

INT8 = {"unet": "int8", "text_encoder": "int8"}


def ir_weight_types(xml) -> set[str]:
    """Element types of the IR's weight constants (`Const` layers stored in the .bin)."""
    import xml.etree.ElementTree as ET

    return {layer.find("data").get("element_type") for layer in ET.parse(xml).getroot().iter("layer")
            if layer.get("type") == "Const" and layer.find("data").get("size") not in (None, "0")}


def weight_sources(xml, op_type: str, named: str = "") -> set[str]:
    """Element types of the constants feeding the weight input of each `op_type` layer whose name
    matches the regular expression `named` (through the Convert / Subtract / Multiply / Reshape of a
    decompression); activations x activations skipped."""
    import openvino as ov

    out = set()
    for op in ov.Core().read_model(str(xml)).get_ops():
        if op.get_type_name() != op_type or not re.search(named, op.get_friendly_name()):
            continue
        node = op.input_value(1).get_node()
        for _ in range(6):
            if node.get_type_name() in ("Constant", "Parameter") or node.get_input_size() == 0:
                break
            node = node.input_value(0).get_node()
        if node.get_type_name() == "Constant":
            out.add(node.get_element_type().get_type_name())
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps: Linux")
def test_int8_compresses_the_irs_weights_in_a_cache_of_its_own(pulled, torch_engine):
    """quantize = int8 per component: the UNet's and the text encoder's IR hold uint8 weights (NNCF's
    INT8_ASYM; the UNet's convolutions stay float16) in `<component>.int8-<key>`, beside (never instead of) the float16 IR; the images keep
    their size and stay close to torch's, and the IR's mapped pages are still dropped after a call."""
    root, overrides, plain = pulled["root"], pulled["overrides"], pulled["first"]  # the float16 IR's image
    engine = make_engine(PipelinePool(), **overrides, quantize=INT8)
    image = engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    assert image.size == (100, 70)
    cache = root / "sd" / ".cache" / "openvino"
    folders = {p.name.split("-")[0]: p for p in cache.iterdir()}
    assert sorted(folders) == ["text_encoder", "text_encoder.int8", "unet", "unet.int8"]
    for name in ("unet", "text_encoder"):
        assert "u8" in ir_weight_types(folders[f"{name}.int8"] / "model.xml"), name
        assert "u8" not in ir_weight_types(folders[name] / "model.xml"), name  # the float16 IR, untouched
    unet_int8 = folders["unet.int8"] / "model.xml"
    # the tiny UNet has two levels: its highest-resolution one keeps float16 MatMuls (FLOAT16_LEVELS,
    # compute-bound there), its lowest and the middle block are int8
    assert weight_sources(unet_int8, "MatMul", r"\.(down_blocks\.0|up_blocks\.1)\.") == {"f16"}
    assert weight_sources(unet_int8, "MatMul", r"\.(down_blocks\.1|up_blocks\.0|mid_block)\.") == {"u8"}
    # convolutions stay float16: OpenVINO's CPU plugin would fold int8 ones to float32 (UNCOMPRESSED)
    assert weight_sources(folders["unet.int8"] / "model.xml", "Convolution") == {"f16"}
    assert "u8" not in ir_weight_types(next((root / "taesd" / ".cache" / "openvino").iterdir()) / "decoder.xml")
    reference = torch_engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    assert np.abs(pixels(image) - pixels(reference)).mean() < 3.0  # measured 0.20 (the float16 IR: 0.04)
    assert not np.array_equal(pixels(image), pixels(plain))  # the int8 IR ran, not the float16 one
    bins = list((folders["unet.int8"]).glob("*.bin")) + list(folders["text_encoder.int8"].glob("*.bin"))
    assert bins and all(mapped_kb(b) and sum(mapped_kb(b)) == 0 for b in bins)  # WeightPages, compressed IR
    restarted = make_engine(PipelinePool(), **overrides, quantize=INT8)  # from the int8 cache, no conversion
    assert np.array_equal(pixels(restarted.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]), pixels(image))
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == sorted(folders)


def test_the_cache_key_covers_the_compression(tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"0" * 64)
    plain = ovb.cache_folder(tmp_path, "unet", tmp_path / "unet", "fp16")
    int8 = ovb.cache_folder(tmp_path, "unet", tmp_path / "unet", "fp16", "int8")
    assert plain != int8 and plain.name.startswith("unet-") and int8.name.startswith("unet.int8-")
    assert int8 == ovb.cache_folder(tmp_path, "unet", tmp_path / "unet", "fp16", "int8")


def u8_constants(module: ovb.OVModule) -> int:
    """uint8 constants of the graph OpenVINO's CPU plugin runs (its FullyConnected layers keep
    compressed weights in uint8 and decompress them as they compute)."""
    def info(op, key):
        return op.get_rt_info()[key].astype(str) if key in op.get_rt_info() else None

    return sum(info(op, "layerType") == "Const" and info(op, "outputPrecisions") == "u8"
               for op in module.compiled.get_runtime_model().get_ops())


def test_int8_in_memory_for_tiny_checkpoints(ov_engine, torch_engine):
    """A `tiny:` checkpoint (no folder): the compressed graph is traced in memory, `quantize = "int8"`
    (the denoiser, `transformer`) meaning the UNet alone."""
    engine = make_engine(backend="openvino", dtype="float32", quantize="int8")
    image = engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    ov_engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)  # modules compile at their first call's shape
    pipe, plain = engine.pipeline("text_to_image"), ov_engine.pipeline("text_to_image")
    assert u8_constants(pipe.unet) > 50 and u8_constants(plain.unet) < 5  # measured 111 and 1
    assert u8_constants(pipe.text_encoder) == u8_constants(plain.text_encoder)  # not asked: not compressed
    reference = torch_engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    assert image.size == (100, 70) and np.abs(pixels(image) - pixels(reference)).mean() < 3.0


def fake_quantized(model) -> dict[str, int]:
    """What the FakeQuantize ops of an openvino.Model feed (NNCF's static quantization: the
    consumer's input runs in int8), by the consumer's type, through reshapes."""
    from collections import Counter

    fed: Counter = Counter()
    for op in model.get_ops():
        if op.get_type_name() == "FakeQuantize":
            targets = [t.get_node() for t in op.output(0).get_target_inputs()]
            while targets and targets[0].get_type_name() == "Reshape":
                targets = [t.get_node() for t in targets[0].output(0).get_target_inputs()]
            fed.update(t.get_type_name() for t in targets)
    return dict(fed)


def test_int8_hybrid_runs_the_unets_convolutions_in_int8_calibrated_on_its_own_inputs(tmp_path, torch_engine,
                                                                                      monkeypatch):
    """quantize.unet = "int8_hybrid": NNCF's static quantization on the convolutions (their inputs
    and weights int8, ranges measured on UNet inputs the pipeline makes from its own prompts), the
    MatMuls' weights int8 as with "int8" and their inputs left alone; from a pulled folder in the
    converting child (its tokenizer, text encoder and scheduler) and in memory for a tiny checkpoint;
    the images stay close to torch's."""
    import openvino as ov
    from diffusers import StableDiffusionPipeline

    from wanimage.engines.diffusers.tiny import tiny_component, tiny_pipeline

    reference = pixels(torch_engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0])
    in_memory = make_engine(backend="openvino", dtype="float32", quantize={"unet": "int8_hybrid"})
    image = in_memory.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    fed = fake_quantized(in_memory.pipeline("text_to_image").unet.source)
    assert fed.get("Convolution", 0) >= 20 and "MatMul" not in fed  # measured 25 of the tiny UNet's 25
    assert np.abs(pixels(image) - reference).mean() < 3.0  # measured 0.72 (int8 weights alone: 0.13)
    assert not fake_quantized(in_memory.pipeline("text_to_image").vae.decoder.source)  # not asked

    tiny_pipeline(StableDiffusionPipeline, "sd").save_pretrained(tmp_path / "sd", variant="fp16")
    tiny_component("taesd", "vae").save_pretrained(tmp_path / "taesd")
    roles = {role: {"checkpoint": str(tmp_path / "sd"), "variant": "fp16"} for role in ROLES}
    pulled = dict(**roles, vae=str(tmp_path / "taesd"), backend="openvino", dtype="float32",
                  quantize={"unet": "int8_hybrid", "text_encoder": "int8", "vae": "int8_hybrid"})
    in_child, convert_in_child = [], ovb.convert_in_child
    monkeypatch.setattr(ovb, "convert_in_child", lambda folder, variant, jobs, *a, **kw: (
        in_child.extend(jobs), convert_in_child(folder, variant, jobs, *a, **kw)))
    said = []
    assert ovb.convert_ahead({"m": config(**pulled)}, echo=said.append) == 1  # `wanimage pull`: every IR, the VAE's too
    assert sum("converting" in line for line in said) == 2  # the UNet and text encoder in one child, then the VAE
    converted_by_pull = sorted(in_child)
    engine = make_engine(PipelinePool(), **pulled)
    image = engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    assert sorted(in_child) == converted_by_pull  # the server's first start converts nothing more
    folders = {p.name.split("-")[0]: p for p in (tmp_path / "sd" / ".cache" / "openvino").iterdir()}
    assert sorted(folders) == ["text_encoder.int8", "unet.int8_hybrid"]
    ir = folders["unet.int8_hybrid"] / "model.xml"
    assert fake_quantized(ov.Core().read_model(str(ir))).get("Convolution", 0) >= 20
    assert weight_sources(ir, "MatMul", r"\.(down_blocks\.1|up_blocks\.0|mid_block)\.") == {"u8"}
    # the tiny decoder's convolutions too (calibrated on latents the converted UNet made), not its encoder's
    assert sorted(in_child) == ["text_encoder", "unet", "vae"]  # calibration's NNCF and UNet runs: not here
    [vae] = (tmp_path / "taesd" / ".cache" / "openvino").iterdir()
    assert vae.name.startswith("vae.int8_hybrid-")
    assert fake_quantized(ov.Core().read_model(str(vae / "decoder.xml"))).get("Convolution", 0) >= 5
    assert not fake_quantized(ov.Core().read_model(str(vae / "encoder.xml")))
    assert np.abs(pixels(image) - reference).mean() < 3.0
    assert np.abs(pixels(engine.generate(job(Mode.EDIT, images=[photo()]), no_progress)[0])
                  - pixels(torch_engine.generate(job(Mode.EDIT, images=[photo()]), no_progress)[0])).mean() < 3.0


def test_without_the_memory_to_calibrate_the_unet_converts_with_int8_weights_and_says_so(tmp_path, monkeypatch,
                                                                                          caplog):
    """int8_hybrid's conversion peaks at about seven times the UNet's weights in float16 (11.7 GB
    for sd-turbo; the guard asks eight): where /proc/meminfo says less is available, the UNet is converted with int8
    weights alone and a warning names what it needs, rather than a conversion child killed for
    memory; with the memory, int8_hybrid. A float32 file counts half its size. (What is sent to
    the converting child, not the conversion itself.)"""
    from safetensors.numpy import save_file

    need = ovb.CALIBRATION_MEMORY * 2000  # 1000 float16 weights
    for dtype, variant in ((np.float16, "fp16"), (np.float32, None)):  # the same weights, either width
        folder = tmp_path / str(variant)
        (folder / "unet").mkdir(parents=True)
        (folder / "unet" / "config.json").write_text("{}")
        name = f"diffusion_pytorch_model{'.' + variant if variant else ''}.safetensors"
        save_file({"w": np.zeros(1000, dtype)}, str(folder / "unet" / name))
        jobs = []
        monkeypatch.setattr(ovb, "convert_in_child", lambda folder, variant, todo, *a, jobs=jobs, **kw: jobs.append(todo))
        caplog.clear()
        for free in (need - 1_000, need + 1_000):  # the header's bytes: under 1 000
            monkeypatch.setattr("wanimage.memory.available_bytes", lambda free=free: free)
            backend = ovb.OpenVinoBackend("auto", quantize={"unet": "int8_hybrid"})
            with caplog.at_level("WARNING"):
                wanted = backend.ensure_ir(folder, variant, {"unet"})
            assert wanted["unet"].name.startswith("unet.int8-" if free < need else "unet.int8_hybrid-")
        assert [{n: kind for n, (kind, _) in todo.items()} for todo in jobs] == [{"unet": "int8"},
                                                                                 {"unet": "int8_hybrid"}]
        assert caplog.text.count("need about") == 1 and "converting it with int8 weights alone" in caplog.text


def test_quantize_kinds_openvino_cannot_make_are_refused_by_name(monkeypatch):
    with pytest.raises(EngineConfigError, match=r"models\.m\.quantize\.unet = \"fp8\": backend = \"openvino\" "
                                                r"compresses weights to int8 or int8_hybrid only .*set quantize\.unet = \"int8\""):
        config(backend="openvino", quantize={"unet": "fp8", "text_encoder": "int8"})
    with pytest.raises(EngineConfigError, match=r"models\.m\.quantize\.transformer = \"int8_dynamic\": backend = "
                                                r"\"openvino\" compresses weights to int8 or int8_hybrid only"):
        config(backend="openvino", quantize="int8_dynamic")
    with pytest.raises(EngineConfigError, match=r"models\.m\.quantize\.text_encoder = \"int8_hybrid\": int8_hybrid "
                                                r"quantizes the UNet's convolutions, and the text encoder has none"):
        config(backend="openvino", quantize={"unet": "int8_hybrid", "text_encoder": "int8_hybrid"})
    with pytest.raises(EngineConfigError, match=r"models\.m\.quantize\.transformer = \"int8_hybrid\": OpenVINO's "
                                                r"kind .*set backend = \"openvino\""):
        config(quantize="int8_hybrid")
    with pytest.raises(EngineConfigError, match=r"models\.m\.quantize\.transformer: one of none, int8, .*"
                                                r"\(backend = \"openvino\": int8, int8_hybrid\)"):
        config(quantize="int4")
    with pytest.raises(EngineConfigError, match=r"models\.m\.quantize\.text_encoder_2: backend = \"openvino\" "
                                                r"compresses the unet's and the text_encoder's weights"):
        config(backend="openvino", quantize={"text_encoder_2": "int8"})
    monkeypatch.setitem(sys.modules, "nncf", None)  # `import nncf` raises ImportError
    with pytest.raises(AccelerationError, match=r"models\.wan2\.7-image\.quantize\.unet = \"int8\" with backend = "
                                                r"\"openvino\" needs the nncf package .*`pip install "
                                                r"'wanimage\[openvino\]'`"):
        engines_from_configs({"wan2.7-image": config(backend="openvino", quantize={"unet": "int8"})})
