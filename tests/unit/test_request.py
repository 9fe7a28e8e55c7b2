"""build_request, parse_size, check_size_allowed, output_size and the box/palette rules
(api-spec.md §1.3-§1.7): every rule, with its bounds exactly at the limits."""

from __future__ import annotations

import pytest
from PIL import Image

from wanimage.core.job import resolve_job
from wanimage.core.parameters import MAX_NEGATIVE_PROMPT_CHARS, OutputOptions
from wanimage.core.request import (
    MAX_PROMPT_CHARS,
    GenerationRequest,
    SizeSpec,
    build_request,
    check_boxes_inside,
    check_size_allowed,
    output_size,
    parse_size,
)
from wanimage.engines.job import GenerationJob
from wanimage.errors import EmptyModel, InvalidParameter
from wanimage.types import Box, Mode

IMG = "data:image/png;base64,iVBORw0KGgo="  # only its count matters before the images are fetched
PALETTE = [
    {"hex": "#C2D1E6", "ratio": "60.00%"},
    {"hex": "#636574", "ratio": "25.00%"},
    {"hex": "#CBD4E4", "ratio": "15.00%"},
]


def build(**kw) -> GenerationRequest:
    kw.setdefault("model", "wan2.7-image")
    kw.setdefault("prompt", "a red fox")
    return build_request(**kw)


def refused(field: str, **kw) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as info:
        build(**kw)
    assert info.value.field == field, info.value
    assert info.value.code == "InvalidParameter"
    assert info.value.status == 400
    assert field.split(".")[0] in info.value.message  # the message names the field
    return info.value


def palette(*ratios: str, hex_: str = "#AABBCC") -> list[dict[str, str]]:
    return [{"hex": hex_, "ratio": r} for r in ratios]


# ------------------------------------------------------------------ defaults


def test_defaults():
    req = build()
    assert req.model == "wan2.7-image"
    assert req.size == SizeSpec("2K", None, None)
    assert req.n == 1
    assert req.enable_sequential is False
    assert req.thinking_mode is True
    assert req.watermark is False
    assert req.bbox_list is None and req.color_palette is None
    assert req.images == ()
    assert 0 <= req.seed <= 2147483647 and req.seed_given is False
    assert req.mode is Mode.TEXT_TO_IMAGE
    assert req.thinking_applies


def test_sequential_default_n_is_twelve():
    req = build(enable_sequential=True)
    assert req.n == 12
    assert req.mode is Mode.TEXT_TO_IMAGE_SET
    assert not req.thinking_applies


@pytest.mark.parametrize(
    ("images", "sequential", "mode"),
    [(0, False, Mode.TEXT_TO_IMAGE), (0, True, Mode.TEXT_TO_IMAGE_SET), (1, False, Mode.EDIT),
     (9, True, Mode.IMAGE_TO_IMAGE_SET)],
)
def test_mode_follows_images_and_sequential(images, sequential, mode):
    req = build(images=[IMG] * images, enable_sequential=sequential)
    assert req.mode is mode
    assert req.thinking_applies is (mode is Mode.TEXT_TO_IMAGE)


def test_thinking_mode_with_images_is_accepted_and_ignored():
    req = build(images=[IMG], thinking_mode=True)
    assert req.thinking_mode is True and not req.thinking_applies


def test_the_queued_job_round_trips_every_field_and_the_echo_says_what_was_asked():
    req = build(
        model="wan2.7-image-pro", images=[IMG, IMG], size="1K", n=3, thinking_mode=False,
        bbox_list=[[], [[1, 2, 30, 40]]], color_palette=PALETTE, watermark=True, seed=7,
        prompt="put the cat of image 1 into the box of image 2",
    )
    images = [Image.new("RGB", (320, 240)), Image.new("RGB", (320, 240))]
    job = resolve_job(req, images, inputs=("input://a.png", "input://b.png"))
    again = GenerationJob.from_payload(job.to_payload())
    assert again == job.with_images([]) and again.images == ()
    assert again.edit_boxes and again.palette and again.edits[0].sources == (1,)
    assert req.to_json()["seed_given"] is True and build().to_json()["seed_given"] is False
    assert req.to_json()["bbox_list"] == [[], [[1, 2, 30, 40]]] and req.to_json()["size"] == "1K"


# ------------------------------------------------------------------ model


@pytest.mark.parametrize("model", [None, ""])
def test_missing_model_is_empty_model(model):
    with pytest.raises(EmptyModel) as info:
        build(model=model)
    assert info.value.code == "BadRequest.EmptyModel" and info.value.status == 400
    assert info.value.field == "model"


@pytest.mark.parametrize("model", ["wan2.5-t2i-preview", "qwen-image-edit-2509", "WAN2.7-IMAGE", "wan2.7-image ", 7, ["wan2.7-image"]])
def test_unknown_model_refused(model):
    err = refused("model", model=model)
    assert "wan2.7-image" in err.message


@pytest.mark.parametrize("model", ["wan2.7-image", "wan2.7-image-pro"])
def test_both_models_accepted(model):
    assert build(model=model).model == model


# ------------------------------------------------------------------ prompt


@pytest.mark.parametrize("prompt", [None, "", "   \n\t"])
def test_prompt_required(prompt):
    refused("prompt", prompt=prompt)


@pytest.mark.parametrize("prompt", [5, ["a fox"], {"text": "a fox"}])
def test_prompt_must_be_a_string(prompt):
    refused("prompt", prompt=prompt)


def test_prompt_at_the_limit_is_kept():
    prompt = "a" * MAX_PROMPT_CHARS
    assert MAX_PROMPT_CHARS == 5000
    assert build(prompt=prompt).prompt == prompt


def test_prompt_over_the_limit_is_truncated_not_refused():
    assert build(prompt="b" * 4999 + "XYZ").prompt == "b" * 4999 + "X"


def test_prompt_truncation_counts_cjk_and_emoji_as_one_character():
    prompt = "狐" * 4998 + "狸猫🦊"  # 5001 code points, many more UTF-8 bytes
    kept = build(prompt=prompt).prompt
    assert len(kept) == 5000
    assert kept == "狐" * 4998 + "狸猫"


# ------------------------------------------------------------------ images


def test_nine_images_ok_ten_refused():
    assert len(build(images=[IMG] * 9).images) == 9
    err = refused("image", images=[IMG] * 10)
    assert "10" in err.message and "9" in err.message


@pytest.mark.parametrize("ref", ["", "   ", None, 5])
def test_image_reference_must_be_a_non_empty_string(ref):
    refused("image", images=[IMG, ref])


def test_image_references_are_stripped():
    assert build(images=["  https://example.com/a.png \n"]).images == ("https://example.com/a.png",)


# ------------------------------------------------------------------ n


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_n_one_to_four_without_sequential(n):
    assert build(n=n).n == n


@pytest.mark.parametrize("n", [0, 5, -1, 100])
def test_n_out_of_range_without_sequential(n):
    err = refused("n", n=n)
    assert "1 to 4" in err.message


@pytest.mark.parametrize("n", [1, 5, 12])
def test_n_one_to_twelve_with_sequential(n):
    assert build(n=n, enable_sequential=True).n == n


@pytest.mark.parametrize("n", [0, 13])
def test_n_out_of_range_with_sequential(n):
    err = refused("n", n=n, enable_sequential=True)
    assert "1 to 12" in err.message


@pytest.mark.parametrize("n", ["2", 2.5, True, [2]])
def test_n_must_be_an_integer(n):
    refused("n", n=n)


def test_n_integral_float_is_an_integer():
    assert build(n=2.0).n == 2


# ------------------------------------------------------------------ seed


@pytest.mark.parametrize("seed", [0, 1, 2147483647])
def test_seed_bounds_ok(seed):
    req = build(seed=seed)
    assert req.seed == seed and req.seed_given


@pytest.mark.parametrize("seed", [-1, 2147483648])
def test_seed_out_of_range(seed):
    err = refused("seed", seed=seed)
    assert "2147483647" in err.message


@pytest.mark.parametrize("seed", ["42", 4.5, False, True])
def test_seed_must_be_an_integer(seed):
    refused("seed", seed=seed)


# ------------------------------------------------------------------ booleans


@pytest.mark.parametrize("name", ["enable_sequential", "watermark", "prompt_extend"])
@pytest.mark.parametrize("value", ["true", "false", 1, 0, "yes", [], {}])
def test_booleans_must_be_booleans(name, value):
    err = refused(name, **{name: value})
    assert "true or false" in err.message


@pytest.mark.parametrize("name", ["enable_sequential", "thinking_mode", "watermark"])
def test_booleans_accepted(name):
    assert getattr(build(**{name: True}), name) is True
    assert getattr(build(**{name: False}), name) is False


# ------------------------------------------------------------------ size: parsing


@pytest.mark.parametrize(
    ("text", "tier"),
    [("1K", "1K"), ("2K", "2K"), ("4K", "4K"), ("1k", "1K"), ("2k", "2K"), ("4k", "4K"), (" 2K ", "2K")],
)
def test_tiers_case_insensitive(text, tier):
    assert parse_size(text) == SizeSpec(tier, None, None)


def test_size_default_is_2k():
    assert parse_size(None) == SizeSpec("2K", None, None)


@pytest.mark.parametrize(
    ("text", "wh"),
    [("1280*720", (1280, 720)), ("1280x720", (1280, 720)), ("1280X720", (1280, 720)),
     (" 1280 * 720 ", (1280, 720)), ("768x768", (768, 768))],
)
def test_explicit_size_with_star_or_x(text, wh):
    spec = parse_size(text)
    assert (spec.tier, spec.width, spec.height) == (None, *wh)
    assert str(spec) == f"{wh[0]}*{wh[1]}"


@pytest.mark.parametrize(
    "text",
    ["", "3K", "8K", "2K*1024", "1024*2K", "1024", "1024*", "*1024", "1024-768", "1024,768",
     "1024.5*768", "-1024*768", "1024**768", "1024x768x2", "auto", "123456*768", "１０２４*768"],
)
def test_malformed_sizes_refused(text):
    with pytest.raises(InvalidParameter) as info:
        parse_size(text)
    assert info.value.field == "size" and "size" in info.value.message


@pytest.mark.parametrize("value", [1024, 2.0, ["1K"], {"w": 1}, True])
def test_size_must_be_a_string(value):
    refused("size", size=value)


# ------------------------------------------------------------------ size: bounds


def allowed(size: str, model: str = "wan2.7-image", images: int = 0, sequential: bool = False) -> bool:
    try:
        check_size_allowed(parse_size(size), model, images, sequential)
    except InvalidParameter as exc:
        assert exc.field == "size" and "size" in exc.message
        return False
    return True


@pytest.mark.parametrize("model", ["wan2.7-image", "wan2.7-image-pro"])
@pytest.mark.parametrize(("images", "sequential"), [(0, False), (0, True), (1, False), (2, True)])
def test_pixel_lower_bound(model, images, sequential):
    assert allowed("768*768", model, images, sequential)
    assert not allowed("767*768", model, images, sequential)
    assert not allowed("768*767", model, images, sequential)


@pytest.mark.parametrize(("images", "sequential"), [(0, False), (0, True), (1, False), (2, True)])
def test_pixel_upper_bound_2048(images, sequential):
    assert allowed("2048*2048", "wan2.7-image", images, sequential)
    assert not allowed("2049*2048", "wan2.7-image", images, sequential)
    assert not allowed("2048x2049", "wan2.7-image", images, sequential)


@pytest.mark.parametrize(("images", "sequential"), [(0, True), (1, False), (9, True)])
def test_pro_upper_bound_is_2048_outside_pure_text_to_image(images, sequential):
    assert allowed("2048*2048", "wan2.7-image-pro", images, sequential)
    assert not allowed("2049*2048", "wan2.7-image-pro", images, sequential)


def test_pro_pure_text_to_image_upper_bound_4096():
    assert allowed("2049*2048", "wan2.7-image-pro")
    assert allowed("4096*4096", "wan2.7-image-pro")
    assert not allowed("4097*4096", "wan2.7-image-pro")
    assert not allowed("4096*4097", "wan2.7-image-pro")


def test_aspect_ratio_eight_ok_beyond_refused():
    # 2400*300 = 720,000 px, inside the pixel bounds: only the ratio decides.
    assert allowed("2400*300")
    assert allowed("300*2400")
    assert not allowed("2401*300")
    assert not allowed("300x2401")
    assert not allowed("4000*300")


@pytest.mark.parametrize("size", ["0*768", "768*0", "0*0"])
def test_zero_side_refused(size):
    assert not allowed(size)


def test_tiers_1k_2k_allowed_everywhere():
    for model in ("wan2.7-image", "wan2.7-image-pro"):
        for images, sequential in ((0, False), (0, True), (1, False), (3, True)):
            assert allowed("1K", model, images, sequential)
            assert allowed("2K", model, images, sequential)


def test_4k_only_pro_pure_text_to_image():
    assert allowed("4K", "wan2.7-image-pro", 0, False)
    assert allowed("4k", "wan2.7-image-pro", 0, False)
    assert not allowed("4K", "wan2.7-image", 0, False)
    assert not allowed("4K", "wan2.7-image-pro", 0, True)
    assert not allowed("4K", "wan2.7-image-pro", 1, False)
    assert not allowed("4K", "wan2.7-image-pro", 1, True)


def test_build_request_applies_size_rules():
    assert build(model="wan2.7-image-pro", size="4K").size.tier == "4K"
    err = refused("size", model="wan2.7-image", size="4K")
    assert "4K" in err.message
    refused("size", model="wan2.7-image-pro", size="4K", images=[IMG])
    refused("size", model="wan2.7-image-pro", size="4K", enable_sequential=True)
    refused("size", size="767*768")
    refused("size", model="wan2.7-image-pro", size="2049*2048", images=[IMG])
    assert build(model="wan2.7-image-pro", size="4096x4096").size == SizeSpec(None, 4096, 4096)


# ------------------------------------------------------------------ output size


def test_output_explicit_size_exact():
    assert output_size(parse_size("1280*720"), (2985, 1405)) == (1280, 720)
    assert output_size(parse_size("777x801"), None) == (777, 801)


@pytest.mark.parametrize(("tier", "side"), [("1K", 1024), ("2K", 2048), ("4K", 4096)])
def test_output_square_without_images(tier, side):
    assert output_size(parse_size(tier), None) == (side, side)


def test_output_aspect_of_the_last_image_2k():
    assert output_size(parse_size("2K"), (2985, 1405)) == (2976, 1408)


def test_output_aspect_of_the_last_image_1k():
    assert output_size(parse_size("1K"), (2985, 1405)) == (1488, 704)


def test_output_portrait_mirrors_landscape():
    assert output_size(parse_size("2K"), (1405, 2985)) == (1408, 2976)
    assert output_size(parse_size("1K"), (1405, 2985)) == (704, 1488)


@pytest.mark.parametrize("tier", ["1K", "2K"])
@pytest.mark.parametrize("last", [(320, 240), (240, 320), (1000, 1000), (1920, 1080), (2400, 300), (241, 1928),
                                  (2985, 1405), (7999, 1000), (333, 777)])
def test_output_multiples_of_16_within_budget_and_close_in_ratio(tier, last):
    side = {"1K": 1024, "2K": 2048}[tier]
    w, h = output_size(parse_size(tier), last)
    assert w % 16 == 0 and h % 16 == 0
    assert w * h <= side * side
    assert w * h >= 0.9 * side * side
    target = last[0] / last[1]
    assert abs((w / h) / target - 1) < 0.06


def test_output_square_last_image_gives_full_tier():
    assert output_size(parse_size("2K"), (500, 500)) == (2048, 2048)
    assert output_size(parse_size("1K"), (320, 320)) == (1024, 1024)


def test_mode_with_images_uses_last_image_not_first():
    # Through resolve_job's contract: output_size receives the last image's size.
    req = build(images=[IMG, IMG], size="1K")
    wide, small = Image.new("RGB", (2985, 1405)), Image.new("RGB", (320, 240))
    assert resolve_job(req, [small, wide]).width == 1488 and resolve_job(req, [small, wide]).height == 704
    square = resolve_job(req, [wide, Image.new("RGB", (320, 320))])
    assert (square.width, square.height) == (1024, 1024)


# ------------------------------------------------------------------ bbox_list


def test_bbox_list_normalised_to_boxes():
    req = build(images=[IMG, IMG, IMG], bbox_list=[[[0, 0, 12, 12], [25, 25, 100, 100]], [], [[10, 10, 50, 50]]])
    assert req.bbox_list == ((Box(0, 0, 12, 12), Box(25, 25, 100, 100)), (), (Box(10, 10, 50, 50),))


def test_bbox_list_needs_images():
    err = refused("bbox_list", bbox_list=[[[0, 0, 10, 10]]])
    assert "image" in err.message
    refused("bbox_list", bbox_list=[])


def test_bbox_list_with_sequential_refused():
    err = refused("bbox_list", images=[IMG], bbox_list=[[[0, 0, 10, 10]]], enable_sequential=True)
    assert "enable_sequential" in err.message


@pytest.mark.parametrize("entries", [0, 1, 3])
def test_bbox_list_length_must_equal_image_count(entries):
    refused("bbox_list", images=[IMG, IMG], bbox_list=[[] for _ in range(entries)])


def test_bbox_list_two_boxes_ok_three_refused():
    two = [[0, 0, 10, 10], [20, 20, 30, 30]]
    assert len(build(images=[IMG], bbox_list=[two]).bbox_list[0]) == 2
    err = refused("bbox_list", images=[IMG], bbox_list=[two + [[40, 40, 50, 50]]])
    assert "at most 2" in err.message


@pytest.mark.parametrize(
    "box",
    [[0, 0, 10], [0, 0, 10, 10, 10], [0, 0, 10.0, 10], [0, 0, "10", 10], [0, 0, True, 10], "0,0,10,10",
     None, {"x1": 0}],
)
def test_box_must_be_four_integers(box):
    refused("bbox_list", images=[IMG], bbox_list=[[box]])


@pytest.mark.parametrize("box", [[10, 0, 10, 10], [11, 0, 10, 10], [0, 10, 10, 10], [0, 11, 10, 10], [-1, 0, 10, 10],
                                 [0, -5, 10, 10]])
def test_box_corners_ordered_and_non_negative(box):
    refused("bbox_list", images=[IMG], bbox_list=[[box]])


@pytest.mark.parametrize("value", ["[[[0,0,10,10]]]", 5, {"a": 1}, [5], ["x"]])
def test_bbox_list_shape(value):
    refused("bbox_list", images=[IMG], bbox_list=value)


def test_boxes_inside_image():
    boxes = ((Box(0, 0, 320, 240),), (), (Box(10, 10, 20, 20),))
    check_boxes_inside(boxes, [(320, 240), (300, 300), (20, 20)])  # touching the edge is inside
    with pytest.raises(InvalidParameter) as info:
        check_boxes_inside(((Box(0, 0, 321, 240),),), [(320, 240)])
    assert info.value.field == "bbox_list" and "320x240" in info.value.message
    with pytest.raises(InvalidParameter):
        check_boxes_inside(((), (Box(0, 0, 10, 241),)), [(1000, 1000), (320, 240)])
    check_boxes_inside(None, [(320, 240)])


# ------------------------------------------------------------------ color_palette


def test_palette_normalised():
    req = build(color_palette=[{"hex": "#c2d1e6", "ratio": "60.00%"}] + PALETTE[1:])
    assert [e.hex for e in req.color_palette] == ["#C2D1E6", "#636574", "#CBD4E4"]
    assert [e.ratio for e in req.color_palette] == ["60.00%", "25.00%", "15.00%"]
    colors = [e.to_color() for e in req.color_palette]
    assert colors[0].rgb == (0xC2, 0xD1, 0xE6)
    assert sum(c.weight for c in colors) == pytest.approx(1.0)


def test_palette_with_images_accepted():
    assert build(images=[IMG], color_palette=PALETTE).color_palette is not None


def test_palette_three_to_ten_entries():
    assert len(build(color_palette=palette("33.33%", "33.33%", "33.34%")).color_palette) == 3
    assert len(build(color_palette=palette(*["10.00%"] * 10)).color_palette) == 10
    err = refused("color_palette", color_palette=palette("50.00%", "50.00%"))
    assert "3 to 10" in err.message
    refused("color_palette", color_palette=palette(*["9.00%"] * 10, "10.00%"))
    refused("color_palette", color_palette=[])


def test_palette_sum_exactly_100():
    assert build(color_palette=palette("33.33%", "33.33%", "33.34%")).color_palette
    assert build(color_palette=palette("100.00%", "0.00%", "0.00%")).color_palette
    err = refused("color_palette", color_palette=palette("33.33%", "33.33%", "33.33%"))
    assert "99.99%" in err.message and "100.00%" in err.message
    err = refused("color_palette", color_palette=palette("33.34%", "33.34%", "33.33%"))
    assert "100.01%" in err.message


def test_palette_with_sequential_refused():
    err = refused("color_palette", color_palette=PALETTE, enable_sequential=True)
    assert "enable_sequential" in err.message


@pytest.mark.parametrize("hex_", ["C2D1E6", "#C2D1E", "#C2D1E6F", "#GGGGGG", "#c2d1e", "red", "#C2D1E6 ", "#C2D1E6\n", 0xC2D1E6, None])
def test_palette_hex_form(hex_):
    refused("color_palette", color_palette=[{"hex": hex_, "ratio": "60.00%"}] + PALETTE[1:])


@pytest.mark.parametrize(
    "ratio",
    ["60%", "60.0%", "60.000%", "60.00", "0.6", 60, 60.0, "60,00%", " 60.00%", "60.00 %", "-60.00%", "+60.00%", "60.00%\n", "６０.００%", None],
)
def test_palette_ratio_form(ratio):
    refused("color_palette", color_palette=[{"hex": "#C2D1E6", "ratio": ratio}] + PALETTE[1:])


@pytest.mark.parametrize(
    "entry",
    [{"hex": "#C2D1E6"}, {"ratio": "60.00%"}, {"hex": "#C2D1E6", "ratio": "60.00%", "name": "sky"}, "#C2D1E6", ["#C2D1E6", "60.00%"]],
)
def test_palette_entry_shape(entry):
    refused("color_palette", color_palette=[entry] + PALETTE[1:])


@pytest.mark.parametrize("value", ["#C2D1E6", {"hex": "#C2D1E6", "ratio": "100.00%"}, 3])
def test_palette_must_be_a_list(value):
    refused("color_palette", color_palette=value)


def test_a_prompt_no_png_can_carry_is_refused_by_the_request_itself():
    # the edges refuse it first; build_request is also what `wanimage generate` calls
    with pytest.raises(InvalidParameter, match=r"prompt: .*lone UTF-16 surrogate \(\\ud800\)") as info:
        build(prompt="a cat \ud800")
    assert info.value.field == "prompt"


# ------------------------------------------------------------------ thinking_mode levels, prompt_extend


@pytest.mark.parametrize(("sent", "on", "effort"), [
    (None, True, "balanced"), (True, True, "balanced"), (False, False, "balanced"),
    ("fast", True, "fast"), ("balanced", True, "balanced"), ("Quality", True, "quality"),
])
def test_thinking_mode_levels(sent, on, effort):
    req = build(thinking_mode=sent)
    assert (req.thinking_mode, req.thinking_effort, req.thinking_applies) == (on, effort, on)


# "true"/"false" strings: converted by the edges that take them (tests/unit/test_wire_forms.py)
@pytest.mark.parametrize("sent", ["slow", "high", " fast", "", "true", 1, 0.5, ["fast"]])
def test_thinking_mode_other_values_refused(sent):
    err = refused("thinking_mode", thinking_mode=sent)
    assert '"fast", "balanced", "quality"' in err.message


# prompt_extend, when sent, decides whether the prompt is rewritten; else thinking_mode does.
@pytest.mark.parametrize(("thinking_mode", "prompt_extend", "rewrites"), [
    (None, None, True), (None, False, False), ("fast", False, False), (True, False, False),
    (False, True, True), (False, None, False), ("quality", True, True),
])
def test_prompt_extend_decides_the_rewrite(thinking_mode, prompt_extend, rewrites):
    req = build(thinking_mode=thinking_mode, prompt_extend=prompt_extend)
    assert req.thinking_applies is rewrites
    assert resolve_job(req, []).thinking is rewrites


def test_prompt_extend_rewrites_pure_text_to_image_only(caplog):
    caplog.set_level("INFO", logger="wanimage.core")
    assert not build(images=[IMG], prompt_extend=True).thinking_applies
    assert "prompt_extend=true accepted without effect" in caplog.text


# ------------------------------------------------------------------ negative_prompt


@pytest.mark.parametrize(("sent", "kept"), [
    (None, None), ("", None), ("   ", None), ("blurry, text", "blurry, text"),
    ("x" * MAX_NEGATIVE_PROMPT_CHARS, "x" * MAX_NEGATIVE_PROMPT_CHARS),
    ("猫" * (MAX_NEGATIVE_PROMPT_CHARS + 1), "猫" * MAX_NEGATIVE_PROMPT_CHARS),
])
def test_negative_prompt_checked_like_the_prompt(sent, kept):
    assert build(negative_prompt=sent).negative_prompt == kept


@pytest.mark.parametrize("sent", [5, ["blurry"], {"text": "blurry"}, "blurry \ud800", "a\x00b"])
def test_negative_prompt_must_be_carryable_text(sent):
    refused("negative_prompt", negative_prompt=sent)


def test_the_echo_says_the_level_and_the_new_parameters_and_builds_the_same_request_again():
    req = build(thinking_mode="quality", prompt_extend=True, negative_prompt="blurry", seed=3)
    asked = req.to_json()
    assert (asked["thinking_mode"], asked["prompt_extend"], asked["negative_prompt"]) == ("quality", True, "blurry")
    assert build_request(**{k: v for k, v in asked.items() if k != "seed_given"}) == req
    assert build(thinking_mode="balanced").to_json()["thinking_mode"] is True


def test_the_job_carries_negative_prompt_and_effort_and_payloads_without_them_load():
    job = resolve_job(build(negative_prompt="blurry", thinking_mode="fast"), [])
    assert (job.negative_prompt, job.thinking_effort) == ("blurry", "fast")
    assert GenerationJob.from_payload(job.to_payload()) == job
    older = job.model_dump(exclude={"negative_prompt", "thinking_effort"})
    again = GenerationJob.from_payload(older)
    assert (again.negative_prompt, again.thinking_effort) == (None, "balanced")


# ------------------------------------------------------------------ the SDKs' output parameters


@pytest.mark.parametrize(("n", "sequential", "max_images", "count"), [
    (None, True, 4, 4), (6, True, 4, 4), (3, True, 4, 3), (None, True, 12, 12),
    (4, False, 2, 2), (2, False, 12, 2), (None, False, 1, 1),
])
def test_max_images_is_an_upper_bound_like_n(n, sequential, max_images, count):
    req = build(n=n, enable_sequential=sequential, output=OutputOptions(max_images=max_images))
    assert req.n == count


@pytest.mark.parametrize(("options", "field"), [
    (OutputOptions(enable_interleave=True), "enable_interleave"),
    (OutputOptions(enable_interleave="true"), "enable_interleave"),
    (OutputOptions(modalities=["text"]), "modalities"),
    (OutputOptions(modalities=["image", "audio"]), "modalities"),
    (OutputOptions(modalities=[1]), "modalities"),
    (OutputOptions(modalities={"image": True}), "modalities"),
    (OutputOptions(max_images=0), "max_images"),
    (OutputOptions(max_images=13), "max_images"),
    (OutputOptions(max_images="2"), "max_images"),
    (OutputOptions(incremental_output="yes"), "incremental_output"),
    (OutputOptions(stream=1), "stream"),
])
def test_output_parameters_this_server_cannot_honour_are_refused_by_name(options, field):
    refused(field, output=options)


@pytest.mark.parametrize(("options", "logged"), [
    (OutputOptions(enable_interleave=False), "enable_interleave=false accepted without effect"),
    (OutputOptions(modalities=["image"]), "modalities=['image'] accepted"),
    (OutputOptions(modalities="image"), "modalities=['image'] accepted"),
    (OutputOptions(modalities=["text", "image"]), "modalities=['text', 'image'] accepted"),
    (OutputOptions(incremental_output=True), "incremental_output=true accepted without effect"),
    (OutputOptions(incremental_output=False), "incremental_output=false accepted without effect"),
    (OutputOptions(stream=True), "stream=true accepted without effect"),
    (OutputOptions(max_images=5), "max_images=5 accepted without effect"),
])
def test_output_parameters_that_change_nothing_are_accepted_and_logged(options, logged, caplog):
    caplog.set_level("INFO", logger="wanimage.core")
    assert build(output=options).n == 1
    assert logged in caplog.text
