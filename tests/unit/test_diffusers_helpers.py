"""diffusers engine helpers and config: sizes, masks, exact composite, references, config errors.
No pipeline runs here (see test_diffusers_engines.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wanimage.engines.diffusers import FAMILIES
from wanimage.engines.diffusers.base import (
    box_alpha,
    composite,
    generation_size,
    group_references,
    packed_grid,
    palette_prompt,
    scale_boxes,
)
from wanimage.engines.diffusers.config import EngineConfigError, load_config, parse_config
from wanimage.engines.diffusers.engine import DiffusersEngine
from wanimage.errors import ModelUnavailable
from wanimage.types import Box, Mode, PaletteColor


@pytest.mark.parametrize(("w", "h", "m", "cap"), [(1024, 1024, 16, None), (1456, 720, 16, 1024 * 1024),
                                                   (4096, 4096, 16, 1664 * 928), (1000, 777, 8, None),
                                                   (768, 6144, 16, 2 * 1024 * 1024)])
def test_generation_size_rounds_to_multiple_under_cap(w, h, m, cap):
    gw, gh = generation_size(w, h, m, cap)
    assert gw % m == 0 and gh % m == 0
    if cap:
        assert gw * gh <= cap
    else:
        assert abs(gw - w) <= m // 2 and abs(gh - h) <= m // 2
    assert abs(gw / gh - w / h) / (w / h) < 0.08


def test_box_alpha_is_zero_outside_and_one_in_the_middle():
    alpha = box_alpha([Box(10, 20, 50, 60)], 80, 70, feather=4)
    assert alpha.shape == (70, 80)
    outside = np.ones_like(alpha, dtype=bool)
    outside[20:60, 10:50] = False
    assert (alpha[outside] == 0).all()
    assert (alpha[25:55, 15:45] == 1).all()  # beyond the feather band
    assert 0 < alpha[20, 30] < 1  # the feather lies inside the box


def test_composite_is_exact_outside_the_boxes():
    rng = np.random.default_rng(0)
    src = Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8))
    gen = Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8))
    boxes = [Box(5, 5, 30, 40), Box(50, 10, 88, 58)]
    out = np.asarray(composite(gen, src, box_alpha(boxes, 90, 60)))
    inside = np.zeros((60, 90), dtype=bool)
    for b in boxes:
        inside[b.y1:b.y2, b.x1:b.x2] = True
    assert (out[~inside] == np.asarray(src)[~inside]).all()
    assert (out[20, 15] == np.asarray(gen)[20, 15]).all()


def test_scale_boxes_to_output_pixels():
    assert scale_boxes([Box(40, 30, 200, 150)], (400, 300), (800, 600)) == [Box(80, 60, 400, 300)]


def test_group_references_stitches_beyond_the_limit():
    refs = [Image.new("RGB", (40 + 10 * k, 30), (k * 20, 0, 0)) for k in range(7)]
    assert group_references(refs[:3], 3, 64 * 64) == refs[:3]
    grouped = group_references(refs, 3, 64 * 64)
    assert len(grouped) == 3 and all(g.width * g.height <= 64 * 64 for g in grouped)
    assert len(group_references(refs, 1, 128 * 128)) == 1


def test_palette_prompt():
    p = palette_prompt("a cat", [PaletteColor((255, 0, 16), 0.75), PaletteColor((0, 0, 0), 0.25)])
    assert p == "a cat. Color palette: #ff0010 (75%), #000000 (25%)"
    assert palette_prompt("a cat", None) == "a cat"


def test_packed_grid_recovers_the_latent_shape():
    assert packed_grid(6 * 4, 96, 64) == (4, 6)
    assert packed_grid(45 * 80, 1280, 720) == (45, 80)


# ------------------------------------------------------------------------------- config


def test_config_toml_and_yaml(tmp_path):
    toml = tmp_path / "engines.toml"
    toml.write_text('[defaults]\nsteps = 3\n[models."wan2.7-image"]\nfamily = "sdxl"\n'
                    'text_to_image = "tiny:sdxl"\ninpaint = { checkpoint = "tiny:sdxl", pipeline = '
                    '"StableDiffusionXLInpaintPipeline" }\n')
    cfg = load_config(toml)["wan2.7-image"]
    assert cfg.steps == 3 and cfg.roles["inpaint"].pipeline == "StableDiffusionXLInpaintPipeline"
    yaml = tmp_path / "engines.yaml"
    yaml.write_text("models:\n  wan2.7-image-pro:\n    family: flux\n    text_to_image: tiny:flux\n")
    assert load_config(yaml)["wan2.7-image-pro"].family == "flux"


@pytest.mark.parametrize(("raw", "words"), [
    ({"family": "dalle", "text_to_image": "x"}, "family"),
    ({"family": "sdxl"}, "at least one"),
    ({"family": "sdxl", "edit": "x"}, "no edit pipeline"),
    ({"family": "flux", "text_to_image": "x", "offload": "gpu"}, "offload"),
    ({"family": "flux", "text_to_image": "x", "turbo": True}, "unknown keys"),
])
def test_config_errors_name_the_key(raw, words):
    with pytest.raises(EngineConfigError, match=words):
        parse_config({"models": {"wan2.7-image": raw}})


def test_capabilities_follow_the_configured_roles():
    def caps(**roles):
        cfg = parse_config({"models": {"m": {"family": "sdxl", **roles}}})["m"]
        return DiffusersEngine("m", cfg, FAMILIES["sdxl"]).capabilities

    assert caps(text_to_image="tiny:sdxl").modes == {Mode.TEXT_TO_IMAGE, Mode.TEXT_TO_IMAGE_SET}
    both = caps(text_to_image="tiny:sdxl", inpaint="tiny:sdxl")
    assert both.modes == {Mode.TEXT_TO_IMAGE, Mode.TEXT_TO_IMAGE_SET, Mode.EDIT} and both.bbox


def test_missing_local_checkpoint_is_named_at_load(tmp_path):
    missing = tmp_path / "Qwen-Image"
    cfg = parse_config({"models": {"m": {"family": "qwen_image", "text_to_image": str(missing)}}})["m"]
    with pytest.raises(FileNotFoundError, match=r"Qwen-Image.*hf download"):
        DiffusersEngine("m", cfg, FAMILIES["qwen_image"])


def test_unloadable_checkpoint_gives_a_clear_error(tmp_path):
    empty = tmp_path / "not-a-checkpoint"
    empty.mkdir()
    cfg = parse_config({"models": {"m": {"family": "flux", "text_to_image": str(empty)}}})["m"]
    engine = DiffusersEngine("m", cfg, FAMILIES["flux"])
    with pytest.raises(ModelUnavailable, match=r"not-a-checkpoint.*hf download"):
        engine.pipeline("text_to_image")


def test_example_config_builds_engines_without_loading_anything():
    """examples/engines.toml parses, and engines are built lazily: no weights, no network."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "engines.toml"
    configs = load_config(example)
    assert set(configs) == {"wan2.7-image", "wan2.7-image-pro"}
    pro = DiffusersEngine("wan2.7-image-pro", configs["wan2.7-image-pro"], FAMILIES["qwen_image"])
    assert pro.capabilities.modes == set(Mode) and pro.capabilities.bbox
    assert not any(role["loaded"] for role in pro.describe()["roles"])


def test_catalog_builds_a_diffusers_registry(tmp_path):
    from wanimage.config import Settings
    from wanimage.engines.factories import build_registry

    path = tmp_path / "engines.toml"
    path.write_text('[models."wan2.7-image"]\nfamily = "wan"\ntext_to_image = "tiny:wan"\n')
    registry = build_registry(Settings(data_dir=tmp_path, engine="diffusers", engine_config=path))
    assert registry.models == ["wan2.7-image"]
    assert registry.capabilities("wan2.7-image").modes == {Mode.TEXT_TO_IMAGE, Mode.TEXT_TO_IMAGE_SET}
    with pytest.raises(SystemExit, match="WANIMAGE_ENGINE_CONFIG"):
        build_registry(Settings(data_dir=tmp_path, engine="diffusers"))
    path.write_text('[models."wan2.7-image"]\nfamily = "wan"\nedit = "tiny:wan"\n')
    with pytest.raises(SystemExit, match="no edit pipeline"):
        build_registry(Settings(data_dir=tmp_path, engine="diffusers", engine_config=path))
