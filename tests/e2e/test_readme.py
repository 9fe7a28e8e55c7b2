"""The README's curl, dashscope and openai examples run as printed (only the port differs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.store_independent  # the README's examples

README = Path(__file__).resolve().parents[2] / "README.md"
SECTIONS = ("### curl", "### dashscope SDK", "### openai SDK", "### Other Model Studio models")


def examples() -> list[tuple[str, str, str]]:
    text = README.read_text()
    found = []
    for section in SECTIONS:
        body = text[text.index(section):]
        body = body[: body.index("\n### ", 4)] if "\n### " in body[4:] else body
        for lang, code in re.findall(r"```(bash|python)\n(.*?)```", body, re.S):
            found.append((section, lang, code))
    return found


@pytest.mark.parametrize("section,lang,code", examples(), ids=lambda v: v if v in SECTIONS else None)
def test_readme_example_runs(server, tmp_path, section, lang, code):
    code = code.replace("http://127.0.0.1:8000", server.base_url)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    if section == "### curl":
        assert '"task_status": "SUCCEEDED"' in out.replace('":"', '": "') or "SUCCEEDED" in out
        assert "/files/results/" in out
    elif section == "### dashscope SDK":
        assert "200 1024*1024" in out and out.strip().endswith("SUCCEEDED")
    elif section == "### Other Model Studio models":
        assert "/files/results/" in out
    else:
        assert "image_generation.completed" in out and out.strip().endswith("1")
