import io
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `tests.support` importable

from tests.support.postgres import start_cluster  # noqa: E402
from tests.support.server import start_server  # noqa: E402

# Every server test runs on both task stores.
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL cluster for the run; each server gets its own database."""
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def database(request, backend):
    """A function that gives a fresh database URL for the backend (None: SQLite in the data dir)."""
    if backend == "sqlite":
        return lambda: None
    cluster = request.getfixturevalue("postgres")
    return cluster.create_database


@pytest.fixture(scope="session")
def server(tmp_path_factory, database):
    """A shared server with the deterministic engine; tests must not depend on queue state."""
    running = start_server(tmp_path_factory.mktemp("server"), workers=2, database_url=database())
    yield running
    running.stop()


@pytest.fixture
def make_server(tmp_path, database):
    """A fresh server with its own data dir, database and settings (e.g. keys, queue size)."""
    started = []

    def make(engine=None, **overrides):
        overrides.setdefault("database_url", database())
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


@pytest.fixture
def sdk(server):
    """The shared server, with the dashscope SDK pointed at it for the test."""
    import dashscope

    previous = dashscope.base_http_api_url
    dashscope.base_http_api_url = server.api_base
    yield server
    dashscope.base_http_api_url = previous
