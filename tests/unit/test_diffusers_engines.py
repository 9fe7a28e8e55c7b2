"""Every family x mode through DiffusersEngine on tiny random-weight components built in code
(engines/diffusers/tiny.py): exact sizes, seeds, exact pixels outside boxes, progress, previews,
cancellation, capability errors. Nothing is downloaded."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from wanimage.core.job import check_capabilities, make_job
from wanimage.engines.base import Canceled, GenerationJob, no_progress
from wanimage.engines.diffusers import FAMILIES
from wanimage.engines.diffusers.config import parse_config
from wanimage.engines.diffusers.engine import DiffusersEngine
from wanimage.engines.diffusers.loader import PipelinePool
from wanimage.engines.diffusers.tiny import tiny_cpu_speedups
from wanimage.errors import InvalidParameter
from wanimage.types import Box, Mode

ROLES = {
    "qwen_image": {"text_to_image": "tiny:qwen_image", "edit": "tiny:qwen_image",
                   "inpaint": "tiny:qwen_image", "refine": "tiny:qwen_image"},
    "flux": {"text_to_image": "tiny:flux", "edit": "tiny:flux", "inpaint": "tiny:flux:fill",
             "refine": "tiny:flux"},
    "sdxl": {"text_to_image": "tiny:sdxl", "inpaint": "tiny:sdxl", "refine": "tiny:sdxl"},
    "zimage": {"text_to_image": "tiny:zimage", "edit": "tiny:zimage:omni", "inpaint": "tiny:zimage",
               "refine": "tiny:zimage"},
    "flux2": {"text_to_image": "tiny:flux2", "edit": "tiny:flux2", "inpaint": "tiny:flux2",
              "call_kwargs": {"text_encoder_out_layers": [1]}},
    "wan": {"text_to_image": "tiny:wan"},
    "sd": {"text_to_image": "tiny:sd", "edit": "tiny:sd", "inpaint": "tiny:sd", "refine": "tiny:sd"},
}
BOXES = [f for f in ROLES if "inpaint" in ROLES[f]]
EDITING = [f for f in ROLES if "edit" in ROLES[f]]
FAST = {"steps": 2, "true_cfg": 1.0, "max_generate_pixels": 64 * 48, "reference_pixels": 48 * 48}


@pytest.fixture(scope="module", autouse=True)
def tiny_and_fast():
    with tiny_cpu_speedups():
        yield


def make_engine(family: str, pool: PipelinePool | None = None, **overrides) -> DiffusersEngine:
    raw = {"family": family, **ROLES[family], **FAST, **overrides}
    return DiffusersEngine("wan2.7-image", parse_config({"models": {"m": raw}})["m"], FAMILIES[family], pool=pool)


_ENGINES: dict[str, DiffusersEngine] = {}


def engine_for(family: str) -> DiffusersEngine:
    if family not in _ENGINES:
        _ENGINES[family] = make_engine(family)
    return _ENGINES[family]


def job(mode: Mode, width=100, height=70, n=1, seed=7, prompt="a red apple on a table", **kw) -> GenerationJob:
    return make_job("wan2.7-image", mode, prompt, width, height, n, seed, **kw)


def photo(w=120, h=90, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def pixels(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"))


# ------------------------------------------------------------------------- text-to-image


@pytest.mark.parametrize("family", ROLES)
def test_text_to_image_size_seeds_and_image_i_alone(family):
    engine = engine_for(family)
    images = engine.generate(job(Mode.TEXT_TO_IMAGE, n=2), no_progress)
    assert [im.size for im in images] == [(100, 70)] * 2
    assert not np.array_equal(pixels(images[0]), pixels(images[1]))
    again = engine.generate(job(Mode.TEXT_TO_IMAGE, n=1), no_progress)
    assert np.array_equal(pixels(again[0]), pixels(images[0]))  # same seed, same pixels
    alone = engine.generate(job(Mode.TEXT_TO_IMAGE, n=1, seed=8), no_progress)
    assert np.array_equal(pixels(alone[0]), pixels(images[1]))  # image i == a run with seed + i


@pytest.mark.parametrize("family", ROLES)
def test_text_to_image_set_per_image_prompts(family, monkeypatch):
    engine = engine_for(family)
    roles = []
    original = engine.pipeline
    monkeypatch.setattr(engine, "pipeline", lambda role: roles.append(role) or original(role))
    images = engine.generate(job(Mode.TEXT_TO_IMAGE_SET, n=4, prompt="image 1: a cat. image 2: the cat asleep"),
                             no_progress)
    assert [im.size for im in images] == [(100, 70)] * 2  # two prompts: at most n images
    chained = "edit" in ROLES[family]
    assert roles == ["text_to_image", "edit" if chained else "text_to_image"]


# ------------------------------------------------------------------------------ edits


@pytest.mark.parametrize("family", BOXES)
def test_box_edit_keeps_every_pixel_outside_the_boxes(family):
    engine = engine_for(family)
    src = photo(120, 90)
    boxes = [Box(10, 10, 60, 50), Box(80, 40, 115, 85)]
    out = engine.generate(job(Mode.EDIT, 120, 90, images=[src], boxes=[boxes]), no_progress)[0]
    assert out.size == (120, 90)
    inside = np.zeros((90, 120), dtype=bool)
    for b in boxes:
        inside[b.y1:b.y2, b.x1:b.x2] = True
    assert np.array_equal(pixels(out)[~inside], pixels(src)[~inside])
    assert not np.array_equal(pixels(out)[inside], pixels(src)[inside])


@pytest.mark.parametrize("family", BOXES)
def test_box_edit_at_another_output_size(family):
    """The canvas is the last image at output size; boxes scale with it."""
    engine = engine_for(family)
    src = photo(60, 45)
    out = engine.generate(job(Mode.EDIT, 120, 90, images=[photo(30, 30, 1), src], boxes=[[], [Box(5, 5, 30, 25)]]),
                          no_progress)[0]
    expected = np.asarray(src.resize((120, 90), Image.Resampling.LANCZOS))
    assert out.size == (120, 90)
    assert np.array_equal(pixels(out)[60:, :], expected[60:, :])


@pytest.mark.parametrize("family", EDITING)
def test_edit_with_references(family, monkeypatch):
    engine = engine_for(family)
    seen = []
    original = engine.family.edit_kwargs
    monkeypatch.setattr(engine.family, "edit_kwargs", lambda refs, w, h: seen.append(len(refs)) or original(refs, w, h))
    refs = [photo(64, 48, k) for k in range(5)]
    out = engine.generate(job(Mode.EDIT, 96, 72, n=2, images=refs), no_progress)
    assert [im.size for im in out] == [(96, 72)] * 2
    assert seen == [engine.max_references] * 2  # 5 references grouped onto the family's limit


@pytest.mark.parametrize("family", EDITING)
def test_image_to_image_set(family):
    engine = engine_for(family)
    out = engine.generate(job(Mode.IMAGE_TO_IMAGE_SET, 96, 72, n=3, images=[photo(64, 48)],
                              prompt="image 1: in spring. image 2: in winter"), no_progress)
    assert [im.size for im in out] == [(96, 72)] * 2


def test_reference_strategy_error_refuses_extra_images():
    engine = make_engine("flux", reference_strategy="error")
    assert engine.capabilities.max_input_images == 1
    req = SimpleNamespace(model="wan2.7-image", mode=Mode.EDIT, images=[object(), object()], bbox_list=None)
    with pytest.raises(InvalidParameter, match="at most 1 input images"):  # at submit, before any work
        check_capabilities(req, engine.capabilities, 1024, 1024)


# ----------------------------------------------------------------- capability errors


def test_sdxl_refuses_reference_edits_clearly():
    engine = engine_for("sdxl")
    for mode in (Mode.IMAGE_TO_IMAGE_SET,):
        req = SimpleNamespace(model="wan2.7-image", mode=mode, images=[object()], bbox_list=None)
        with pytest.raises(InvalidParameter, match=r"wan2.7-image .*does not support image sets from reference"):
            check_capabilities(req, engine.capabilities, 1024, 1024)
    req = SimpleNamespace(model="wan2.7-image", mode=Mode.EDIT, images=[object()], bbox_list=None)
    with pytest.raises(InvalidParameter, match=r"wan2.7-image .*sdxl.*only inside boxes"):  # at submit
        check_capabilities(req, engine.capabilities, 1024, 1024)


def test_model_without_text_to_image_refuses_it():
    raw = {"family": "qwen_image", "edit": "tiny:qwen_image"}
    engine = DiffusersEngine("wan2.7-image-pro", parse_config({"models": {"m": raw}})["m"], FAMILIES["qwen_image"])
    req = SimpleNamespace(model="wan2.7-image-pro", mode=Mode.TEXT_TO_IMAGE, images=[], bbox_list=None)
    with pytest.raises(InvalidParameter, match="wan2.7-image-pro on this server does not support text-to-image"):
        check_capabilities(req, engine.capabilities, 1024, 1024)


# ------------------------------------------------------------ progress, previews, cancel


@pytest.mark.parametrize("family", ROLES)
def test_progress_and_previews(family):
    engine = engine_for(family)
    seen, previews = [], []

    def progress(fraction, preview=None):
        seen.append(fraction)
        if preview is not None:
            previews.extend(preview())

    engine.generate(job(Mode.TEXT_TO_IMAGE, n=2), progress)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) == 4
    assert previews and all(isinstance(p, Image.Image) and min(p.size) >= 8 for p in previews)


@pytest.mark.parametrize("family", ROLES)
def test_cancel_stops_at_the_next_step(family):
    engine = make_engine(family, steps=4)
    pipe = engine.pipeline("text_to_image")
    denoiser = getattr(pipe, "transformer", None) or pipe.unet
    calls = []
    hook = denoiser.register_forward_hook(lambda *a: calls.append(1))
    reported = []

    def progress(fraction, preview=None):
        reported.append(fraction)
        raise Canceled

    try:
        with pytest.raises(Canceled):
            engine.generate(job(Mode.TEXT_TO_IMAGE, n=3), progress)
    finally:
        hook.remove()
    assert len(reported) == 1 and len(calls) <= 2  # one step of 4 x 3 images (2 forwards with CFG)


# ------------------------------------------------------------------ sizes, memory


@pytest.mark.parametrize("family", ["qwen_image", "sd"])
def test_refine_pass_reaches_the_job_size(family, monkeypatch):
    engine = make_engine(family, refine_strength=0.5, max_generate_pixels=32 * 32)
    roles = []
    original = engine.pipeline
    monkeypatch.setattr(engine, "pipeline", lambda role: roles.append(role) or original(role))
    out = engine.generate(job(Mode.TEXT_TO_IMAGE, 100, 60), no_progress)[0]
    assert out.size == (100, 60) and roles == ["text_to_image", "refine"]


class Clock:
    """An injected monotonic clock: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_models_share_pipelines_and_unload_when_idle():
    clock = Clock()
    pool = PipelinePool(clock=clock)
    a = make_engine("sdxl", pool=pool, idle_unload_seconds=60)
    b = make_engine("sdxl", pool=pool, idle_unload_seconds=60)
    assert a.pipeline("text_to_image") is b.pipeline("text_to_image")
    row = a.describe()
    assert row["roles"][0]["loaded"] and row["bytes"] > 0
    clock.now += 50
    a.generate(job(Mode.TEXT_TO_IMAGE, 64, 64), no_progress)  # used again: idle from here
    clock.now += 59.9
    assert pool.reap() == [] and a.describe()["roles"][0]["loaded"]
    clock.now += 0.1
    assert len(pool.reap()) == 1
    assert not a.describe()["roles"][0]["loaded"] and a.describe()["bytes"] == 0


def test_the_reaper_thread_unloads_what_is_idle():
    """The pool's own thread applies the injected clock (it ticks every idle_seconds / 4)."""
    clock = Clock()
    pool = PipelinePool(clock=clock)
    pool.get(("tiny:x", None, None, "P", ()), lambda siblings: object(), 0.2)
    reaper = pool._reaper
    assert reaper is not None and reaper.is_alive()
    clock.now += 0.2
    deadline = time.monotonic() + 5
    while pool.peek(("tiny:x", None, None, "P", ())) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.peek(("tiny:x", None, None, "P", ())) is None
    reaper.join(timeout=5)  # nothing left to watch: the thread ends
    assert not reaper.is_alive() and pool._reaper is None


@pytest.mark.parametrize("family", ["sdxl", "sd"])
def test_palette_conditions_the_prompt(family, monkeypatch):
    from wanimage.types import PaletteColor

    engine = engine_for(family)
    prompts = []
    original = engine._call
    monkeypatch.setattr(engine, "_call", lambda role, kw, prompt, *a: prompts.append(prompt) or original(role, kw, prompt, *a))
    palette = [PaletteColor((255, 0, 0), 0.6), PaletteColor((0, 0, 255), 0.4)]
    engine.generate(job(Mode.TEXT_TO_IMAGE, 64, 64, palette=palette), no_progress)
    assert prompts == ["a red apple on a table. Color palette: #ff0000 (60%), #0000ff (40%)"]


@pytest.mark.parametrize(("family", "pipeline"), [("qwen_image", "QwenImageInpaintPipeline")])
def test_inpaint_pipeline_named_in_the_config(family, pipeline):
    """A role's `pipeline` overrides the family default (here Qwen-Image's text-only inpaint)."""
    engine = make_engine(family, inpaint={"checkpoint": f"tiny:{family}", "pipeline": pipeline})
    src = photo(96, 64)
    out = engine.generate(job(Mode.EDIT, 96, 64, images=[src], boxes=[[Box(8, 8, 40, 40)]]), no_progress)[0]
    assert type(engine.pipeline("inpaint")).__name__ == pipeline
    keep = np.ones((64, 96), dtype=bool)
    keep[8:40, 8:40] = False
    assert np.array_equal(pixels(out)[keep], pixels(src)[keep])


# ------------------------------------------------------------------ pinned output slices
# diffusers' habit (its pipeline tests' `expected_slice`): under a fixed seed, a small slice of the
# output is compared with values recorded once, so a silent change of pixels fails where the
# shape and seed checks above still pass. Recorded on CPU (torch 2.13, diffusers 0.42.1,
# transformers 5.24); bit-identical from run to run on one machine, the tolerance absorbs kernel
# differences between machines. After a deliberate change of pixels, print the slices and paste them.

SLICE_ATOL = 3  # in units of 255: seed 8 instead of 7 moves every slice below by more than this


def corner(im: Image.Image) -> np.ndarray:
    """The last channel of the bottom-right 3x3 patch (diffusers pins `image[0, -3:, -3:, -1]`)."""
    return pixels(im)[-3:, -3:, -1].astype(int).reshape(-1)


T2I_SLICES = {
    "qwen_image": [129, 111, 89, 100, 115, 128, 90, 128, 161],
    "flux": [149, 114, 91, 167, 130, 100, 163, 136, 113],
    "sdxl": [118, 121, 119, 139, 143, 138, 151, 158, 148],
    "zimage": [151, 154, 149, 177, 176, 165, 184, 170, 153],
    "flux2": [107, 112, 126, 137, 135, 135, 151, 148, 142],
    "wan": [109, 120, 131, 113, 125, 135, 118, 130, 140],
    "sd": [117, 113, 110, 134, 135, 130, 139, 148, 144],
}
EDIT_SLICES = {
    "qwen_image": [125, 112, 91, 97, 115, 130, 88, 125, 160],
    "flux": [154, 117, 90, 169, 132, 101, 164, 138, 113],
    "zimage": [147, 159, 163, 168, 171, 161, 178, 165, 145],
    "flux2": [111, 113, 126, 138, 135, 135, 150, 148, 142],
    "sd": [130, 112, 116, 129, 116, 117, 113, 115, 116],
}
BOX_SLICES = {  # the middle of the box, where the output is all generated (alpha 1)
    "qwen_image": [97, 100, 102, 102, 93, 91, 86, 83, 87],
    "flux": [138, 140, 140, 158, 130, 118, 144, 126, 125],
    "sdxl": [97, 167, 180, 115, 207, 215, 192, 255, 238],
    "zimage": [169, 222, 255, 94, 155, 255, 140, 163, 217],
    "flux2": [179, 165, 144, 127, 123, 110, 118, 124, 107],
    "sd": [130, 169, 153, 128, 177, 164, 122, 169, 149],
}
WAN_LATENT_SLICE = [1.0309, -0.2032, -0.3254, 1.6749, -6.5568, -0.9881, 2.4529, 0.8543, 1.0525]


def assert_slice(actual: np.ndarray, expected: list, atol: float = SLICE_ATOL) -> None:
    np.testing.assert_allclose(actual, np.asarray(expected), rtol=0, atol=atol, err_msg=f"slice: {actual.tolist()}")


@pytest.mark.parametrize("family", ROLES)
def test_text_to_image_pinned_slice(family):
    out = engine_for(family).generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]
    assert_slice(corner(out), T2I_SLICES[family])


@pytest.mark.parametrize("family", EDITING)
def test_edit_pinned_slice(family):
    refs = [photo(64, 48), photo(48, 48, 1)]
    out = engine_for(family).generate(job(Mode.EDIT, 96, 72, images=refs), no_progress)[0]
    assert_slice(corner(out), EDIT_SLICES[family])


@pytest.mark.parametrize("family", BOXES)
def test_box_edit_pinned_slice(family):
    out = engine_for(family).generate(job(Mode.EDIT, 96, 72, images=[photo(96, 72)], boxes=[[Box(40, 30, 96, 72)]]),
                                      no_progress)[0]
    assert_slice(pixels(out)[50:53, 66:69, -1].astype(int).reshape(-1), BOX_SLICES[family])


def test_wan_pinned_latent_slice(monkeypatch):
    """Tiny Wan's random VAE decodes almost any latents to the same grey (seeds 7 and 8 give the
    same corner), so its pixel slice cannot see a change upstream of the decode: pin the latents
    handed to the VAE as well."""
    engine = engine_for("wan")
    vae = engine.pipeline("text_to_image").vae
    decoded = []
    original = vae.decode
    monkeypatch.setattr(vae, "decode", lambda z, *a, **kw: decoded.append(z.detach().clone()) or original(z, *a, **kw))
    engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)
    assert len(decoded) == 1 and tuple(decoded[0].shape) == (1, 16, 1, 6, 8)
    assert_slice(decoded[0].flatten()[-9:].float().numpy(), WAN_LATENT_SLICE, atol=1e-3)


def test_sd_img2img_roles_run_at_least_one_step_from_the_source(monkeypatch):
    """SD-Turbo settings (1 step): img2img would run int(1 * 0.6) = 0 steps, or start from pure
    noise; the sd family raises the step count so both edit and refine keep the source."""
    from wanimage.engines.diffusers.sd import img2img_steps

    assert img2img_steps(1, 0.5) == 2 and img2img_steps(1, 0.6) == 3 and img2img_steps(25, 0.6) == 25
    engine = make_engine("sd", steps=1, refine_strength=0.3, max_generate_pixels=32 * 32)
    calls = []
    original = engine._call
    monkeypatch.setattr(engine, "_call", lambda role, kw, *a: calls.append((role, kw.get("strength"))) or original(role, kw, *a))
    steps = {role: engine.family.sampling_kwargs(role, engine.cfg)["num_inference_steps"] for role in ROLES["sd"]}
    assert steps == {"text_to_image": 1, "edit": 3, "inpaint": 1, "refine": 4}
    engine.generate(job(Mode.EDIT, 64, 64, images=[photo(64, 64)]), no_progress)
    assert calls == [("edit", 0.6), ("refine", 0.3)]  # 64x64 from 32x32: upscaled, then refined



@pytest.mark.parametrize("family", ["flux2"])
def test_boxes_on_a_source_image_make_its_reference_the_boxed_region(family, monkeypatch):
    """'put the cat in the box of image 1 into the box of image 2': image 1's box is the object
    to take, so the reference handed to the pipeline is that region, not the whole image 1."""
    engine = engine_for(family)
    seen = []
    original = engine.family.inpaint_kwargs
    monkeypatch.setattr(engine.family, "inpaint_kwargs",
                        lambda canvas, mask, refs: seen.append([r.size for r in refs]) or original(canvas, mask, refs))
    source, target = photo(120, 90, 1), photo(120, 90, 2)
    out = engine.generate(job(Mode.EDIT, 120, 90, images=[source, target],
                              boxes=[[Box(10, 20, 50, 60)], [Box(60, 30, 100, 70)]]), no_progress)
    assert out[0].size == (120, 90)
    assert seen and all(sizes and sizes[0][0] / sizes[0][1] == 1.0 for sizes in seen)  # 40x40 region, resized


# A request's negative prompt: in the config's place where the family uses one for the role, never
# given to a pipeline without the argument (FLUX.2, FLUX.1 Fill), nor to Qwen-Image without true CFG.
@pytest.mark.parametrize(("family", "role", "sent"), [
    ("sdxl", "text_to_image", True), ("sd", "refine", True), ("zimage", "text_to_image", True),
    ("wan", "text_to_image", True), ("flux2", "text_to_image", False), ("flux", "inpaint", False),
    ("qwen_image", "text_to_image", False),  # FAST sets true_cfg 1: no CFG, no negative prompt
])
def test_negative_prompt_reaches_the_pipelines_that_take_one(family, role, sent, caplog):
    caplog.set_level("INFO", logger="wanimage.engines")
    kw = engine_for(family)._sampling_kwargs(role, "blurry")
    assert kw.get("negative_prompt") == ("blurry" if sent else None)
    assert ("negative_prompt ignored" in caplog.text) is not sent


def test_the_requests_negative_prompt_wins_over_the_configs(monkeypatch):
    from dataclasses import replace

    engine = engine_for("sdxl")
    monkeypatch.setattr(engine, "cfg", replace(engine.cfg, negative_prompt="from the config"))
    seen = []
    original = engine._invoke
    monkeypatch.setattr(engine, "_invoke", lambda role, args: seen.append(args.get("negative_prompt"))
                        or original(role, args))
    engine.generate(job(Mode.TEXT_TO_IMAGE, 64, 64, negative_prompt="blurry"), no_progress)
    engine.generate(job(Mode.TEXT_TO_IMAGE, 64, 64), no_progress)
    assert seen == ["blurry", "from the config"]


# ------------------------------------------------------------------ tiny autoencoder (vae = ...)

TINY_VAE = {"sd": "tiny:taesd", "sdxl": "tiny:taesd"}  # the tiny SD and SDXL pipelines share a 4-channel latent


def _vae_calls(engine: DiffusersEngine, role: str, monkeypatch) -> list[str]:
    """Which of the role's VAE methods ran: its AutoencoderTiny must both encode and decode."""
    from diffusers import AutoencoderTiny

    vae = engine.pipeline(role).vae
    assert isinstance(vae, AutoencoderTiny)
    calls: list[str] = []
    for name in ("encode", "decode"):
        original = getattr(vae, name)
        monkeypatch.setattr(vae, name, lambda *a, _n=name, _o=original, **k: calls.append(_n) or _o(*a, **k))
    return calls


@pytest.mark.parametrize("family", TINY_VAE)
def test_every_mode_runs_through_the_tiny_autoencoder(family, monkeypatch):
    engine = make_engine(family, vae=TINY_VAE[family])
    full = engine_for(family)
    calls = _vae_calls(engine, "text_to_image", monkeypatch)
    images = engine.generate(job(Mode.TEXT_TO_IMAGE, n=2), no_progress)
    assert [im.size for im in images] == [(100, 70)] * 2 and calls == ["decode", "decode"]
    assert not np.array_equal(pixels(images[0]), pixels(full.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0]))
    assert np.array_equal(pixels(engine.generate(job(Mode.TEXT_TO_IMAGE, seed=8), no_progress)[0]),
                          pixels(images[1]))  # image i == a run with seed + i
    sets = engine.generate(job(Mode.TEXT_TO_IMAGE_SET, n=2, prompt="image 1: a cat. image 2: the cat asleep"),
                           no_progress)
    assert [im.size for im in sets] == [(100, 70)] * 2
    # box edits: the tiny encoder reads the canvas, the tiny decoder paints, and outside the boxes
    # the output is the source, exactly
    calls = _vae_calls(engine, "inpaint", monkeypatch)
    src, boxes = photo(120, 90), [Box(10, 10, 60, 50)]
    out = engine.generate(job(Mode.EDIT, 120, 90, images=[src], boxes=[boxes]), no_progress)[0]
    inside = np.zeros((90, 120), dtype=bool)
    inside[10:50, 10:60] = True
    assert np.array_equal(pixels(out)[~inside], pixels(src)[~inside])
    assert not np.array_equal(pixels(out)[inside], pixels(src)[inside])
    assert "encode" in calls and "decode" in calls


def test_edits_and_image_sets_encode_with_the_tiny_encoder(monkeypatch):
    engine = make_engine("sd", vae="tiny:taesd")
    calls = _vae_calls(engine, "edit", monkeypatch)
    out = engine.generate(job(Mode.EDIT, images=[photo()]), no_progress)
    assert out[0].size == (100, 70) and calls[:2] == ["encode", "decode"]  # img2img from the reference
    calls.clear()
    sets = engine.generate(job(Mode.IMAGE_TO_IMAGE_SET, n=2, images=[photo()],
                               prompt="image 1: a cat. image 2: the cat asleep"), no_progress)
    assert [im.size for im in sets] == [(100, 70)] * 2 and calls.count("encode") == 2


def test_both_model_ids_share_one_pipeline_and_vae_full_is_another(monkeypatch):
    """The preset's two model ids (different steps) hold one copy of the weights; a model that
    keeps the full VAE does not get the tiny one's pipeline, nor the other way round."""
    from diffusers import AutoencoderKL

    pool = PipelinePool()
    base = make_engine("sd", pool, vae="tiny:taesd")
    pro = make_engine("sd", pool, vae="tiny:taesd", steps=4)
    assert base.pipeline("text_to_image") is pro.pipeline("text_to_image")
    assert base.pipeline("edit").unet is pro.pipeline("inpaint").unet is base.pipeline("text_to_image").unet
    kept = make_engine("sd", pool, vae="full")
    assert isinstance(kept.pipeline("text_to_image").vae, AutoencoderKL)
    assert kept.pipeline("text_to_image") is not base.pipeline("text_to_image")
    assert base.describe()["vae"] == {"checkpoint": "tiny:taesd", "on_disk": None, "disk_bytes": None}
    assert kept.describe()["vae"] is None


def test_pulled_folders_load_in_the_compute_dtype_with_the_tiny_autoencoder(tmp_path, monkeypatch):
    """fp16 variant files (what `wanimage pull sd-turbo` fetches) load straight into the dtype
    "auto" resolves to, the VAE from the TAESD folder, never the checkpoint's own."""
    import torch
    from diffusers import AutoencoderTiny, StableDiffusionPipeline

    from wanimage.engines.diffusers import dtypes
    from wanimage.engines.diffusers.tiny import tiny_component, tiny_pipeline

    tiny_pipeline(StableDiffusionPipeline, "sd").save_pretrained(tmp_path / "sd", variant="fp16")
    tiny_component("taesd", "vae").save_pretrained(tmp_path / "taesd")
    for native, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(dtypes, "cpu_has_bfloat16", lambda native=native: native)
        folder = {"checkpoint": str(tmp_path / "sd"), "variant": "fp16"}
        raw = {"family": "sd", "text_to_image": folder, "edit": folder, "inpaint": folder,
               "dtype": "auto", "vae": str(tmp_path / "taesd"), **FAST}
        engine = DiffusersEngine("wan2.7-image", parse_config({"models": {"m": raw}})["m"], FAMILIES["sd"])
        pipe = engine.pipeline("text_to_image")
        assert isinstance(pipe.vae, AutoencoderTiny)
        assert {p.dtype for m in (pipe.unet, pipe.text_encoder, pipe.vae) for p in m.parameters()} == {dtype}
        assert engine.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0].size == (100, 70)
        # the edit roles hold the same modules, in the same dtype (no second load, no float32 cast)
        for role in ("edit", "inpaint"):
            other = engine.pipeline(role)
            assert all(getattr(other, m) is getattr(pipe, m) for m in ("unet", "text_encoder", "vae")), role
        assert {p.dtype for m in (pipe.unet, pipe.text_encoder, pipe.vae) for p in m.parameters()} == {dtype}


def test_a_missing_tiny_autoencoder_names_the_fix(tmp_path):
    from wanimage.errors import ModelUnavailable

    engine = make_engine("sd", vae=str(tmp_path / "nowhere"))
    with pytest.raises(ModelUnavailable, match=r"tiny autoencoder .*vae = \"full\""):
        engine.pipeline("text_to_image")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_streamed_components_hold_exactly_what_from_pretrained_loads(tmp_path, dtype):
    """The CPU loader reads each tensor into the compute dtype (no whole-file copy beside it):
    every parameter and buffer equals what from_pretrained gives for the same files."""
    import torch
    from diffusers import StableDiffusionPipeline

    from wanimage.engines.diffusers.streamed import preload_components
    from wanimage.engines.diffusers.tiny import tiny_pipeline

    tiny_pipeline(StableDiffusionPipeline, "sd").save_pretrained(tmp_path, variant="fp16")
    want = getattr(torch, dtype)
    streamed = preload_components(tmp_path, "fp16", want, skip=set())
    assert set(streamed) == {"unet", "vae", "text_encoder"}
    reference = StableDiffusionPipeline.from_pretrained(tmp_path, variant="fp16", dtype=want)
    for name, module in streamed.items():
        ours, theirs = module.state_dict(), getattr(reference, name).state_dict()
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert ours[key].dtype == theirs[key].dtype and torch.equal(ours[key], theirs[key]), (name, key)


def test_streamed_components_are_quantized_layer_by_layer_as_they_load(tmp_path, monkeypatch):
    """`quantize = { unet = "int8", text_encoder = "int8" }` on a pulled folder (the sd-turbo
    preset's default on a CPU): each Linear is int8 as soon as its weights are read, before the
    component is complete, so no component sits in memory at full width; the engine still draws
    close to the unquantized one; `describe` counts the int8 bytes."""
    import torch
    from diffusers import StableDiffusionPipeline

    from wanimage.engines.diffusers import streamed
    from wanimage.engines.diffusers.tiny import tiny_component, tiny_pipeline

    tiny_pipeline(StableDiffusionPipeline, "sd").save_pretrained(tmp_path / "sd", variant="fp16")
    tiny_component("taesd", "vae").save_pretrained(tmp_path / "taesd")
    events = []
    load, quantize = streamed.load_component, streamed.quantize_module

    def loaded(folder, *args):
        module = load(folder, *args)
        if module is not None:
            events.append(folder.name)
        return module

    monkeypatch.setattr(streamed, "load_component", loaded)
    monkeypatch.setattr(streamed, "quantize_module", lambda m, kind: events.append(type(m).__name__) or quantize(m, kind))

    def engine(quantize):
        raw = {"family": "sd", "text_to_image": {"checkpoint": str(tmp_path / "sd"), "variant": "fp16"},
               "dtype": "bfloat16", "vae": str(tmp_path / "taesd"), "quantize": quantize, **FAST,
               "channels_last": quantize != "none"}  # as the preset: convolution weights laid out as read
        return DiffusersEngine("wan2.7-image", parse_config({"models": {"m": raw}})["m"], FAMILIES["sd"])

    int8 = engine({"unet": "int8", "text_encoder": "int8"})
    pipe = int8.pipeline("text_to_image")
    linears = {name: [m for m in getattr(pipe, name).modules() if isinstance(m, torch.nn.Linear)]
               for name in ("text_encoder", "unet")}
    assert events == ["Linear"] * len(linears["text_encoder"]) + ["text_encoder"] + ["Linear"] * len(linears["unet"]) + ["unet"]
    assert all("Int8" in type(m.weight).__name__ for group in linears.values() for m in group)
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    plain = engine("none")
    ours, theirs = (np.asarray(e.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0], dtype=np.int16) for e in (int8, plain))
    assert ours.shape == (70, 100, 3) and np.abs(ours - theirs).mean() <= 8
    assert 0 < int8.describe()["bytes"] < plain.describe()["bytes"]  # tiny models: mostly embeddings and convolutions


def test_int8_as_a_string_quantizes_the_unet_of_a_unet_family():
    """`quantize = "int8"` means the denoiser: the UNet where the family has no transformer."""
    pipe = make_engine("sd", quantize="int8").pipeline("text_to_image")
    assert "Int8" in type(pipe.unet.down_blocks[-1].attentions[0].transformer_blocks[0].attn1.to_q.weight).__name__


def test_channels_last_puts_the_convolutions_in_nhwc_and_keeps_the_image():
    import torch

    fast = make_engine("sd", channels_last=True)
    conv = fast.pipeline("text_to_image").unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    ours, theirs = (np.asarray(e.generate(job(Mode.TEXT_TO_IMAGE), no_progress)[0], dtype=np.int16)
                    for e in (fast, make_engine("sd")))
    assert np.abs(ours - theirs).mean() <= 1
    shared = make_engine("sd").pipeline("text_to_image").unet.conv_in.weight  # the process's tiny modules untouched
    assert shared.is_contiguous()
