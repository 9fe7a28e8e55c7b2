import io
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `tests.support` importable

from tests.support.server import start_server  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A shared server with the deterministic engine; tests must not depend on queue state."""
    running = start_server(tmp_path_factory.mktemp("server"), workers=2)
    yield running
    running.stop()


@pytest.fixture
def make_server(tmp_path):
    """A fresh server with its own data dir and settings (e.g. keys, queue size)."""
    started = []

    def make(engine=None, **overrides):
        running = start_server(tmp_path / f"s{len(started)}", engine, **overrides)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


def png_bytes(width=320, height=240, color=(200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()
