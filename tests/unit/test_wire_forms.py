"""The forms other DashScope clients (the Java SDK among them) send: palette ratios as numbers (Java's
`ColorPalette.ratio` is a Double), booleans as "true"/"false" (Java's `thinkingMode` is a String),
integers as decimal strings; and the SSE framing."""

from __future__ import annotations

import pytest

from wanimage.api.dashscope import protocol as ds
from wanimage.api.dashscope import sse
from wanimage.core.request import build_request
from wanimage.errors import InvalidParameter


def palette(*ratios) -> list[dict]:
    return [{"hex": "#AABBCC", "ratio": r} for r in ratios]


def build(**parameters):
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": "a fox"}]},
            "parameters": parameters}
    return ds.GenerationBody.model_validate(body).to_request()


def refused(field: str, **parameters) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as info:
        build(**parameters)
    assert info.value.field == field
    return info.value


# ------------------------------------------------------------------ palette ratios


def test_numeric_ratios_accepted_and_weighted():
    req = build(color_palette=palette(0.6, 0.25, 0.15))
    assert [c.weight for c in (e.to_color() for e in req.color_palette)] == [0.6, 0.25, 0.15]
    assert build(color_palette=palette(1, 0, 0)).color_palette[0].weight == 1.0  # JSON integers are numbers too


def test_numeric_ratios_sum_to_one_within_1e_4():
    assert build(color_palette=palette(1 / 3, 1 / 3, 1 / 3)).color_palette  # 0.999999...
    assert build(color_palette=palette(0.33333, 0.33333, 0.33334)).color_palette
    assert build(color_palette=palette(0.33335, 0.33335, 0.33335)).color_palette  # 1.00005
    err = refused("color_palette", color_palette=palette(0.3334, 0.3334, 0.3334))  # 1.0002
    assert "1.0002" in err.message and "within 0.0001" in err.message
    refused("color_palette", color_palette=palette(0.5, 0.2, 0.2))


@pytest.mark.parametrize("ratio", [1.5, -0.1, 60, True, float("nan"), float("inf"), "0.6", [0.6], None])
def test_numeric_ratio_outside_0_1_refused_naming_the_entry(ratio):
    err = refused("color_palette", color_palette=palette(0.5, ratio, 0.25))
    assert "entry 2 ratio" in err.message and "a number in [0, 1]" in err.message


def test_mixed_forms_refused():
    err = refused("color_palette", color_palette=palette("60.00%", 0.25, 0.15))
    assert "entry 2" in err.message and "one form" in err.message
    err = refused("color_palette", color_palette=palette(0.6, 0.25, "15.00%"))
    assert "entry 3" in err.message


def test_a_stored_numeric_palette_round_trips():
    req = build(color_palette=palette(0.6, 0.25, 0.15))
    again = build_request(**{k: v for k, v in req.to_json().items() if k != "seed_given"})
    assert again.color_palette == req.color_palette


# ------------------------------------------------------------------ booleans and integers


@pytest.mark.parametrize("name", ["thinking_mode", "watermark", "enable_sequential"])
@pytest.mark.parametrize(("sent", "value"), [("true", True), ("false", False), ("TRUE", True), ("False", False),
                                             (True, True), (False, False)])
def test_string_booleans(name, sent, value):
    assert getattr(build(**{name: sent}), name) is value


@pytest.mark.parametrize("name", ["thinking_mode", "watermark", "enable_sequential"])
@pytest.mark.parametrize("sent", ["yes", "1", "", " true", 1, "enable"])
def test_other_boolean_forms_refused(name, sent):
    assert refused(name, **{name: sent}).message.startswith(f"{name}: must be true or false")


def test_string_integers():
    req = build(n="3", seed="42")
    assert (req.n, req.seed) == (3, 42)
    assert build(seed="+7").seed == 7


@pytest.mark.parametrize(("name", "sent"), [("n", "abc"), ("n", "2.0"), ("n", ""), ("seed", "1e3"),
                                            ("seed", "٤٢"), ("n", " 2")])
def test_other_integer_forms_refused(name, sent):
    assert refused(name, **{name: sent}).message.startswith(f"{name}: must be an integer")


def test_string_integers_keep_their_ranges():
    assert "out of range" in refused("n", n="5").message
    assert "out of range" in refused("seed", seed="-1").message


# ------------------------------------------------------------------ SSE framing


def test_frames_in_dashscope_framing():
    assert sse.frame(3, {"a": "é"}) == 'id:3\nevent:result\n:HTTP_STATUS/200\ndata:{"a":"é"}\n\n'.encode()
    assert sse.error_frame(1, {"code": "X"}, 400) == (
        b'id:1\nevent:error\n:HTTP_STATUS/400\nstatus:400\ndata:{"code":"X"}\n\n')


@pytest.mark.parametrize(("headers", "wanted"), [
    ({"x-dashscope-sse": "enable"}, True), ({"x-dashscope-sse": "ENABLE"}, True),
    ({"accept": "text/event-stream"}, True), ({"accept": "application/json, text/event-stream"}, True),
    ({"x-dashscope-sse": "disable"}, False), ({"accept": "application/json; charset=utf-8"}, False), ({}, False)])
def test_who_asks_for_sse(headers, wanted):
    assert sse.wants_sse(headers) is wanted
