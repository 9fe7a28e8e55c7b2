"""backend = "openvino" (engines/diffusers/openvino_backend.py) on tiny random-weight SD components:
every mode through DiffusersEngine with the UNet, the CLIP text encoder and TAESD converted to
OpenVINO, the same seed giving the same pixels, images close to the torch backend's, the IR cached
beside pulled weights so a restart does not convert, and clear errors naming the key. Nothing is
downloaded."""

from __future__ import annotations

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


def test_text_to_image_same_seed_same_pixels_and_close_to_torch(ov_engine, torch_engine):
    images = ov_engine.generate(job(Mode.TEXT_TO_IMAGE, n=2), no_progress)
    assert [im.size for im in images] == [(100, 70)] * 2
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


def test_ir_is_cached_beside_the_pulled_weights_and_a_restart_does_not_convert(tmp_path, monkeypatch):
    from diffusers import StableDiffusionPipeline

    from wanimage.engines.diffusers.models_dir import folder_bytes
    from wanimage.engines.diffusers.tiny import tiny_component, tiny_pipeline

    tiny_pipeline(StableDiffusionPipeline, "sd").save_pretrained(tmp_path / "sd", variant="fp16")
    tiny_component("taesd", "vae").save_pretrained(tmp_path / "taesd")
    pulled = folder_bytes(tmp_path / "sd")
    roles = {role: {"checkpoint": str(tmp_path / "sd"), "variant": "fp16"} for role in ROLES}
    overrides = {**roles, "vae": str(tmp_path / "taesd"), "backend": "openvino", "dtype": "float32"}
    first = make_engine(PipelinePool(), **overrides).generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "sd" / ".cache" / "openvino").iterdir())
    assert cached == ["text_encoder", "unet"]
    assert [p.name.split("-")[0] for p in (tmp_path / "taesd" / ".cache" / "openvino").iterdir()] == ["vae"]
    assert folder_bytes(tmp_path / "sd") == pulled  # `wanimage models` sizes the pulled files only

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(ovb, "convert", no_conversion)
    restarted = make_engine(PipelinePool(), **overrides)  # a new pool: nothing in memory
    again = restarted.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    assert np.array_equal(pixels(first), pixels(again))
    assert isinstance(restarted.pipeline("text_to_image").unet, ovb.OVUNet)


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps: Linux")
def test_after_a_call_no_ir_weight_page_stays_resident_and_no_torch_module_stays_alive(tmp_path, monkeypatch):
    """The fp16 IR weights OpenVINO keeps mapped beside its own copies are not counted in the
    process, and the float32 torch modules converted at the first start are freed."""
    import gc
    import weakref

    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from wanimage.engines.diffusers.tiny import tiny_component, tiny_pipeline

    tiny_pipeline(StableDiffusionPipeline, "sd").save_pretrained(tmp_path / "sd", variant="fp16")
    tiny_component("taesd", "vae").save_pretrained(tmp_path / "taesd")
    roles = {role: {"checkpoint": str(tmp_path / "sd"), "variant": "fp16"} for role in ROLES}
    overrides = {**roles, "vae": str(tmp_path / "taesd"), "backend": "openvino", "dtype": "float32"}
    converted, convert = [], ovb.convert

    def tracked(name, module, folder):
        converted.append(weakref.ref(module))
        return convert(name, module, folder)

    monkeypatch.setattr(ovb, "convert", tracked)
    engine = make_engine(PipelinePool(), **overrides)
    engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)
    gc.collect()
    assert len(converted) == 3 and all(ref() is None for ref in converted)  # unet, text encoder, vae
    bins = [*(tmp_path / "sd" / ".cache").rglob("*.bin"), *(tmp_path / "taesd" / ".cache").rglob("*.bin")]
    assert len(bins) == 4 and all(sum(mapped_kb(b)) == 0 for b in bins), {b.name: mapped_kb(b) for b in bins}
    assert any(mapped_kb(b) for b in bins)  # mapped, as OpenVINO maps them, and nothing resident

    def never(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__} built in torch on a restart")

    monkeypatch.setattr(UNet2DConditionModel, "__init__", never)  # a restart from the cached IR: the UNet
    monkeypatch.setattr(CLIPTextModel, "__init__", never)  # and the text encoder never load in torch
    restarted = make_engine(PipelinePool(), **overrides)
    assert restarted.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0].size == (100, 70)
