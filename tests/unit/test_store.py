"""The task store on SQLite and its in-memory twin, held to one contract: claims, cancels,
worker heartbeat rows and recovery, retention; and the migrations match the table definition."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from wanimage.errors import ApiError
from wanimage.tasks.memory import InMemoryTaskStore
from wanimage.tasks.records import TaskStatus
from wanimage.tasks.store import TaskStore, metadata


class Clock:
    """An injected clock: tests move time instead of sleeping."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def store(tmp_path, clock=None) -> TaskStore:
    return TaskStore(f"sqlite:///{tmp_path / 'tasks.db'}", **({"clock": clock} if clock else {}))


@pytest.fixture(params=["sqlite", "memory"])
def make_store(request, tmp_path):
    def make(clock=None):
        kwargs = {"clock": clock} if clock else {}
        if request.param == "memory":
            return InMemoryTaskStore(**kwargs)
        return TaskStore(f"sqlite:///{tmp_path / 'tasks.db'}", **kwargs)

    return make


def test_migrations_match_the_table_definition(tmp_path):
    s = store(tmp_path)
    with s.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "wanimage_alembic_version"})
        diff = compare_metadata(context, metadata)
    assert [d for d in diff if not (d[0] == "remove_table" and d[1].name == "wanimage_alembic_version")] == []
    store(tmp_path)  # running the migrations again is a no-op


def test_claim_takes_oldest_pending_once(make_store):
    clock = Clock()
    s = make_store(clock)
    for i in range(3):
        s.create(f"t{i}", "m", "{}")
        clock.t += 1
    claimed = [s.claim("w1"), s.claim("w2"), s.claim("w1"), s.claim("w2")]
    assert [c.id if c else None for c in claimed] == ["t0", "t1", "t2", None]
    assert all(c.attempts == 1 for c in claimed[:3])


def test_finish_only_by_the_holder(make_store):
    s = make_store()
    s.create("t", "m", "{}")
    s.claim("w1")
    assert s.finish("t", "w2", TaskStatus.SUCCEEDED) is None
    ended = s.finish("t", "w1", TaskStatus.FAILED, "an error")
    assert ended == s.get("t") and ended.status is TaskStatus.FAILED  # the row as written


def test_recovery_requeues_once_then_fails(make_store):
    clock = Clock()
    s = make_store(clock)
    s.create("t", "m", "{}")
    s.register_worker("w1")
    s.claim("w1")
    clock.t += 61  # w1 stopped beating
    assert s.recover_stale(60, 2) == (1, 0)
    assert s.get("t").status is TaskStatus.PENDING
    s.register_worker("w2")
    s.claim("w2")
    clock.t += 61
    assert s.recover_stale(60, 2) == (0, 1)
    record = s.get("t")
    assert record.status is TaskStatus.FAILED and ApiError.from_payload(record.outcome).code == "InternalError.WorkerLost"


def test_a_beating_worker_keeps_its_task_and_a_stale_row_loses_it(make_store):
    clock = Clock()
    s = make_store(clock)
    for name in ("alive", "dead"):
        s.create(name, "m", "{}")
        clock.t += 1
        s.register_worker(name)
        s.claim(name)
    for _ in range(4):  # 'alive' beats every 20 s, 'dead' never again
        clock.t += 20
        s.beat_worker("alive")
        s.recover_stale(60, 2)
    assert s.get("alive").status is TaskStatus.RUNNING
    assert s.get("dead").status is TaskStatus.PENDING
    assert s.live_workers(60) == ["alive"]  # the stale row was pruned


def test_a_task_whose_worker_has_no_row_is_judged_by_its_progress_writes(make_store):
    clock = Clock()
    s = make_store(clock)  # e.g. a worker from before migration 0003, still running
    s.create("t", "m", "{}")
    s.claim("old-worker")
    clock.t += 50
    assert s.report_progress("t", "old-worker", 40)
    clock.t += 50
    assert s.recover_stale(60, 2) == (0, 0)
    clock.t += 11
    assert s.recover_stale(60, 2) == (1, 0)


def test_a_cancel_asked_of_a_lost_task_is_honoured_by_recovery(make_store):
    clock = Clock()
    s = make_store(clock)
    s.create("t", "m", "{}")
    s.register_worker("w")
    s.claim("w")
    assert s.cancel("t") is TaskStatus.RUNNING
    clock.t += 61
    s.recover_stale(60, 2)
    assert s.get("t").status is TaskStatus.CANCELED


def test_engine_lost_requeues_then_fails_and_only_the_holder_may(make_store):
    s = make_store()
    s.create("t", "m", "{}")
    s.claim("w1")
    assert s.requeue("t", "w2", 2) is None
    assert s.requeue("t", "w1", 2) is TaskStatus.PENDING
    s.claim("w1")
    assert s.requeue("t", "w1", 2) is TaskStatus.FAILED
    assert ApiError.from_payload(s.get("t").outcome).code == "InternalError.EngineLost"


def test_list_count_and_purge(make_store):
    clock = Clock()
    s = make_store(clock)
    for i in range(5):
        s.create(f"t{i}", "m" if i % 2 else "n", "{}")
        clock.t += 10
    page, total = s.list(page_no=1, page_size=2)
    assert [t.id for t in page] == ["t4", "t3"] and total == 5
    page, total = s.list(page_no=2, page_size=2, tag="m")
    assert page == [] and total == 2
    assert s.count(TaskStatus.PENDING) == 5
    assert sorted(s.purge(clock.t - 25)) == ["t0", "t1", "t2"]
    assert s.get("t0") is None and s.count(TaskStatus.PENDING) == 2


def test_cancel_pending_and_running(make_store):
    s = make_store()
    s.create("a", "m", "{}")
    s.create("b", "m", "{}")
    s.claim("w")  # a is RUNNING
    assert s.cancel("b") is TaskStatus.CANCELED
    assert s.cancel("a") is TaskStatus.RUNNING and s.cancel_requested("a")
    assert s.cancel("zzz") is None


def test_a_database_made_before_migration_0002_is_upgraded_with_its_tasks(tmp_path):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from wanimage.tasks.store import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with create_engine(url).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text("INSERT INTO wanimage_tasks (id, status, model, origin, request, submit_time, progress, "
                          "attempts, cancel_requested) VALUES ('old', 'PENDING', 'm', 'generation', '{}', 1.0, 0, 0, 0)"))
    old = TaskStore(url).get("old")
    assert old.status is TaskStatus.PENDING and not old.wants_previews and old.preview_key is None


def test_rows_from_before_the_opaque_payloads_are_converted_once(tmp_path):
    """Migration 0005: a row's origin moves into its request payload and its code and message into
    its outcome, as the error it was; such a task is still listed and rendered, never run again."""
    import json

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from wanimage.core.task import Origin, Task
    from wanimage.tasks.store import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    result = {"images": ["results/a.png"], "size": "1024*1024", "prompt": "a fox", "revised_prompt": "A fox.",
              "seed": 3, "sequential": False, "planner": "builtin"}
    rows = [("done", "SUCCEEDED", "synthesis", json.dumps(result), None, None),
            ("full", "FAILED", "openai", None, "StorageFull", "storage is full"),
            ("bug", "FAILED", "generation", None, "InternalError.Algo", "generation failed: boom")]
    with create_engine(url).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        for task_id, status, origin, outcome, code, message in rows:
            conn.execute(text("INSERT INTO wanimage_tasks (id, status, model, origin, request, submit_time, progress, "
                              "attempts, cancel_requested, result, code, message) VALUES (:id, :status, 'wan2.7-image', "
                              ":origin, :request, 1.0, 100, 1, 0, :result, :code, :message)"),
                         {"id": task_id, "status": status, "origin": origin, "request": json.dumps({"prompt": "a fox"}),
                          "result": outcome, "code": code, "message": message})
    s = TaskStore(url)
    done, full, bug = (Task.of(s.get(task_id)) for task_id, *_ in rows)
    assert done.origin is Origin.SYNTHESIS and done.asked == {"prompt": "a fox"} and done.result.revised_prompt == "A fox."
    assert (full.error.status, full.error.code, full.error.retry_after, full.origin) == (507, "StorageFull", 30,
                                                                                        Origin.OPENAI)
    assert (bug.error.status, bug.error.message) == (500, "generation failed: boom")


def test_partial_images_are_recorded_only_by_the_holder(make_store):
    s = make_store()
    s.create("t", "m", "{}", wants_previews=True)
    assert s.claim("w1").wants_previews
    assert not s.put_preview("t", "w2", "previews/t/050.png", 50)
    assert s.put_preview("t", "w1", "previews/t/050.png", 50)
    got = s.get("t")
    assert (got.preview_key, got.preview_progress) == ("previews/t/050.png", 50)


def test_create_with_a_limit_refuses_past_it_and_inserts_nothing(make_store):
    from wanimage.tasks.records import QueueFull

    s = make_store()
    for name in ("a", "b"):
        s.create(name, "m", "{}", max_pending=2)
    with pytest.raises(QueueFull):
        s.create("c", "m", "{}", max_pending=2)
    assert s.get("c") is None and s.count(TaskStatus.PENDING) == 2
