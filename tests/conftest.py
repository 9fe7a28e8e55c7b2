"""Fixtures shared by the whole suite: real servers on loopback, on one task store or both.

Which task stores a server test runs on
---------------------------------------
A test that asks for `server`, `sdk`, `make_server` or `database` (directly or through a fixture)
runs once per task store in BACKENDS: SQLite and PostgreSQL. That is the default, and it is kept
by every test that reaches the store in a way that differs by backend: the queue (claiming,
the queue limit under concurrency), store reads and writes of task rows (status, timestamps,
results and errors), recovery of stalled tasks, listing and paging, cancel, tenants (the API key
that owns a task), and workers, in this process or another.

A test or module marked `store_independent` runs on SQLite only. It checks a rule that is decided
before or apart from the task store: request validation and wire forms, the shapes the SDKs send
and read, API keys at the edge, signed file URLs, uploads (kept in the image store, owned by their
path), thinking mode and its planners, box images, the engines behind the API, the playground page
(its cancel and gallery reach paths that test_tasks and test_hostile run on both), the OpenAPI
document, health, and who may read metrics. Running those on PostgreSQL as well would test the
same SQL again (submit and fetch one task), which the tests that keep both stores already cover.

    pytestmark = pytest.mark.store_independent        # a whole module

    @pytest.mark.store_independent                    # one test
    def test_...(server): ...

    @pytest.mark.every_store                          # one test of a store_independent module that
    def test_...(server): ...                         # reaches the store after all: both again

The closest marker wins (the test's own over its module's).
"""

import io
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `tests.support` importable

from tests.support.postgres import start_cluster  # noqa: E402
from tests.support.server import start_server  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
STORE_MARKERS = ("store_independent", "every_store")


def stores_of(item) -> tuple[str, ...]:
    """The task stores a test runs on: its closest store marker decides, and none means both."""
    closest = next((m.name for m in item.iter_markers() if m.name in STORE_MARKERS), "every_store")
    return BACKENDS[:1] if closest == "store_independent" else BACKENDS


def pytest_generate_tests(metafunc):
    """`backend` (and every server built on it) is parametrized here rather than on the fixture, so
    that a `store_independent` test gets SQLite alone. Session scope: one shared server per store."""
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", stores_of(metafunc.definition), indirect=True, scope="session")


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL cluster for the run; each server gets its own database."""
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def backend(request):
    """The task store of this test: "sqlite" or "postgresql" (parametrized in pytest_generate_tests)."""
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
