"""bench/cpu_real.py's table: medians, the fastest peer (never wanimage itself), each path's ratio
to it in CPU core-seconds, failed paths shown as failed. No models: rows are made by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cpu_real.py"


@pytest.fixture(scope="module")
def cpu_real():
    spec = importlib.util.spec_from_file_location("cpu_real", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cpu_real"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def rows(cpu_real):
    Row = cpu_real.Row
    return [
        Row("wanimage", "wanimage serve", False, walls=[3.0, 2.0, 9.0], cpus=[4.0, 5.0, 6.0], peak_rss=2_500_000_000),
        Row("diffusers-fp32", "diffusers float32", True, walls=[20.0, 21.0, 22.0], cpus=[40.0, 41.0, 45.0]),
        Row("ov-int8-taesd", "OpenVINO int8 + TAESD", True, walls=[2.6, 2.5, 2.7], cpus=[5.2, 5.0, 5.1]),
        Row("sdcpp-q8-taesd", "stable-diffusion.cpp", True, error="exit 1"),
    ]


def test_medians_and_ratios_are_against_the_fastest_peer_not_wanimage(cpu_real):
    table = rows(cpu_real)
    assert table[0].wall == 3.0 and table[0].cpu == 5.0
    assert cpu_real.fastest_peer(table).path == "ov-int8-taesd"  # wanimage is cheaper but is not a peer
    ratio = cpu_real.ratios(table)
    assert ratio == pytest.approx({"wanimage": 5.0 / 5.1, "diffusers-fp32": 41.0 / 5.1, "ov-int8-taesd": 1.0})
    assert "sdcpp-q8-taesd" not in ratio  # failed: no ratio


def test_the_markdown_table_has_a_row_per_path_with_its_figures(cpu_real):
    text = cpu_real.table(rows(cpu_real))
    lines = text.splitlines()
    assert lines[0].startswith("| path") and lines[0].rstrip().endswith("(ov-int8-taesd) |")
    assert len(lines) == 2 + 4
    assert lines[2] == "| wanimage serve | 3.00 | 5.0 | 2.5 GB | 0.98x |"
    assert lines[3] == "| diffusers float32 | 21.00 | 41.0 | 0.0 GB | 8.0x |"
    assert lines[4] == "| OpenVINO int8 + TAESD | 2.60 | 5.1 | 0.0 GB | **1.00x** (fastest) |"
    assert lines[5].startswith("| stable-diffusion.cpp | failed: exit 1")


def test_without_peers_the_fastest_measured_path_is_the_reference(cpu_real):
    only = rows(cpu_real)[:1]
    assert cpu_real.fastest_peer(only).path == "wanimage" and cpu_real.ratios(only) == {"wanimage": 1.0}
    assert "(wanimage: no peer measured)" in cpu_real.table(only).splitlines()[0]
    assert cpu_real.ratios([]) == {}
