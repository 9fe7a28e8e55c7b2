"""The queue limit is one atomic step in the task store: many submitters at once, each with its own
engine (as separate API processes have), never push the PENDING count past the limit."""

from __future__ import annotations

import threading

import pytest

from wanimage.tasks.records import QueueFull, TaskStatus
from wanimage.tasks.store import TaskStore


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    return request.getfixturevalue("postgres").create_database()


def test_forty_concurrent_creates_with_a_limit_of_four_insert_exactly_four(url):
    stores = [TaskStore(url) for _ in range(4)]  # four "processes", four connection pools
    barrier = threading.Barrier(40)
    outcomes: list[str] = []

    def submit(i: int) -> None:
        barrier.wait()
        try:
            stores[i % 4].create(f"t{i}", "m", "{}", max_pending=4)
            outcomes.append("created")
        except QueueFull:
            outcomes.append("full")

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes).count("created") == 4 and outcomes.count("full") == 36
    assert stores[0].count(TaskStatus.PENDING) == 4
    for s in stores:
        s.close()


def test_a_claimed_task_frees_its_place(url):
    s = TaskStore(url)
    s.create("a", "m", "{}", max_pending=1)
    with pytest.raises(QueueFull):
        s.create("b", "m", "{}", max_pending=1)
    assert s.get("b") is None
    s.claim("w")
    s.create("b", "m", "{}", max_pending=1)
    assert s.get("b").status is TaskStatus.PENDING
    s.close()
