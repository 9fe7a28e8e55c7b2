"""What the server loads at start-up, beyond its engines: jieba's dictionary (134 MB resident)
only where an engine reads every prompt's words (the built-in model), else at the first prompt
that needs it. Checked in a fresh interpreter: jieba is a process-wide import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, tempfile, threading
    from pathlib import Path
    from fastapi.testclient import TestClient
    from tests.support.test_engine import DeterministicEngine
    from wanimage.app import create_app
    from wanimage.config import Settings
    from wanimage.engines.base import EngineFactory
    from wanimage.engines.registry import EngineRegistry

    factory = EngineFactory(DeterministicEngine, reads_chinese_words=sys.argv[1] == "reads")
    app = create_app(Settings(data_dir=Path(tempfile.mkdtemp())), EngineRegistry({"wan2.7-image": factory}))
    with TestClient(app) as client:
        client.get("/health").raise_for_status()
        for thread in threading.enumerate():
            if thread.name == "warm-chinese":
                thread.join(60)
        print("loaded" if "jieba" in sys.modules else "not loaded")
        if sys.argv[1] == "first-use":
            from wanimage.prompts.chinese import words
            words("桌子上的一个红苹果")
            print("then loaded" if "jieba" in sys.modules else "still not loaded")
""")


@pytest.mark.parametrize(("engine", "expected"), [
    ("reads", ["loaded"]),  # the built-in model: warmed at start
    ("first-use", ["not loaded", "then loaded"]),  # a diffusers preset: at the first use, not before
])
def test_jieba_loads_at_start_only_for_an_engine_that_reads_chinese_words(engine, expected):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", SCRIPT, engine], capture_output=True, text=True, timeout=120,
                          cwd=root, env={"PYTHONPATH": f"{root}:{root / 'src'}", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:len(expected)] == expected


def test_the_built_in_factory_says_it_reads_chinese_words():
    from wanimage.engines.factories import BuiltinFactory

    assert BuiltinFactory("cpu").reads_chinese_words
