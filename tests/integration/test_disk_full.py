"""A full disk, on a small tmpfs mounted by the test (we run as root; the mount is removed after):
storing an input is 507 StorageFull, a task whose results cannot be stored ends FAILED and its sync
client hears so at once, /health says the disk is low, and a read-only data dir stops start-up
with one line naming it. On SQLite (the database on the full disk too) and PostgreSQL (images only)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import png_bytes
from tests.support.test_engine import DeterministicEngine
from wanimage.errors import ApiError

ROOT = Path(__file__).resolve().parents[2]
ASYNC = "/api/v1/services/aigc/image-generation/generation"
SYNC = "/api/v1/services/aigc/multimodal-generation/generation"


class SmallDisk:
    """A tmpfs of `size` at `path`; `fill()` takes every free byte, `free()` gives them back."""

    def __init__(self, path: Path, size: str, *, read_only: bool = False) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (",ro" if read_only else "")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"this machine refuses a tmpfs mount: {result.stderr.decode().strip()}")
        self.filler = path / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
                while True:
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
                        break
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def disk(tmp_path):
    mounted = SmallDisk(tmp_path / "disk", "8m")
    yield mounted
    mounted.unmount()


def edit_body(prompt: str = "a red fox") -> dict:
    import base64

    image = "data:image/png;base64," + base64.b64encode(png_bytes(320, 240)).decode()
    return {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [
        {"image": image}, {"text": prompt}]}]}, "parameters": {"size": "768*768"}}


def assert_storage_full(r: httpx.Response) -> None:
    assert r.status_code == 507, r.text
    body = r.json()
    code = body.get("code") or body["error"]["code"]
    message = body.get("message") or body["error"]["message"]
    assert code == "StorageFull" and "storage is full" in message, body
    assert "Errno" not in message and "Traceback" not in r.text


def test_an_input_on_a_full_disk_is_507_and_works_again_when_space_returns(disk, database):
    from tests.support.server import start_server

    url = database()
    server = start_server(disk.path / "data", min_free_disk_bytes=0, workers=1, database_url=url)
    try:
        disk.fill()
        r = httpx.post(server.base_url + ASYNC, json=edit_body(), headers={"X-DashScope-Async": "enable"}, timeout=30)
        assert_storage_full(r)
        r = httpx.post(server.base_url + "/v1/images/edits", data={"prompt": "a fox", "size": "768*768"},
                       files=[("image", ("a.png", png_bytes(320, 240), "image/png"))], timeout=30)
        assert_storage_full(r)
        if url is None:  # SQLite: the task row itself meets the full disk
            text_only = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": "a fox"}]},
                         "parameters": {"size": "768*768"}}
            for _ in range(20):  # rows fit in free pages of the database file until those run out
                r = httpx.post(server.base_url + ASYNC, json=text_only, headers={"X-DashScope-Async": "enable"})
                if r.status_code != 200:
                    break
            assert_storage_full(r)
        disk.free()
        r = httpx.post(server.base_url + SYNC, json=edit_body(), timeout=60)
        assert r.status_code == 200, r.text
    finally:
        server.stop()


def test_a_task_whose_results_hit_a_full_disk_fails_and_its_sync_client_hears_at_once(disk, database):
    from tests.support.server import start_server

    engine = DeterministicEngine(steps=20, step_seconds=0.1)
    server = start_server(disk.path / "data", engine, min_free_disk_bytes=0, workers=1, database_url=database())
    answer: dict = {}

    def client() -> None:
        started = time.monotonic()
        answer["response"] = httpx.post(server.base_url + SYNC, json=edit_body("fill the disk"), timeout=60)
        answer["seconds"] = time.monotonic() - started

    try:
        thread = threading.Thread(target=client)
        thread.start()
        deadline = time.monotonic() + 20
        while server.service.running_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        disk.fill()  # the task is running: its results (and maybe its progress writes) meet a full disk
        thread.join(30)
        assert_storage_full(answer["response"])
        assert answer["seconds"] < 10  # not the 290 s sync timeout
        disk.free()
        deadline = time.monotonic() + 5  # the worker records FAILED as soon as the disk takes writes
        while time.monotonic() < deadline:
            tasks, _ = server.service.store.list(page_no=1, page_size=5)
            if tasks and tasks[0].status.value == "FAILED":
                break
            time.sleep(0.1)
        error = ApiError.from_payload(tasks[0].outcome)
        assert tasks[0].status.value == "FAILED" and error.code == "StorageFull"
        assert "storage is full" in error.message
    finally:
        disk.free()
        server.stop()


def test_health_reports_low_disk_and_submits_are_refused(disk, database):
    from tests.support.server import start_server

    server = start_server(disk.path / "data", min_free_disk_bytes=6 * 1024 * 1024, workers=1,
                          database_url=database())
    try:
        assert httpx.get(server.base_url + "/health").json()["status"] == "ok"
        (disk.path / "filler").write_bytes(b"\0" * (3 * 1024 * 1024))
        health = httpx.get(server.base_url + "/health").json()
        assert health["status"] == "low_disk" and health["disk"]["low"] is True
        assert health["disk"]["free_bytes"] < 6 * 1024 * 1024
        r = httpx.post(server.base_url + ASYNC, json=edit_body(), headers={"X-DashScope-Async": "enable"})
        assert_storage_full(r)
        assert "WANIMAGE_MIN_FREE_DISK_BYTES" in r.json()["message"]
    finally:
        server.stop()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_read_only_data_dir_stops_start_up_with_one_line_naming_it(tmp_path, command):
    disk = SmallDisk(tmp_path / "ro", "1m", read_only=True)
    try:
        data_dir = disk.path / "data"
        result = subprocess.run([sys.executable, "-m", "wanimage.cli", command, "--data-dir", str(data_dir)],
                                capture_output=True, text=True, timeout=120, cwd=ROOT,
                                env={**os.environ, "WANIMAGE_ENGINE": "builtin"})
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and str(data_dir) in lines[0] and "Traceback" not in result.stderr, result.stderr
        assert "--data-dir" in lines[0] and "Read-only" in lines[0]
    finally:
        disk.unmount()
