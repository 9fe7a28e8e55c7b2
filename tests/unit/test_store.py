"""The task store on SQLite: migrations match the table definition; claims, cancels, recovery."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from wanimage.tasks.records import Origin, TaskStatus
from wanimage.tasks.store import TaskStore, metadata


def store(tmp_path) -> TaskStore:
    return TaskStore(f"sqlite:///{tmp_path / 'tasks.db'}")


def test_migrations_match_the_table_definition(tmp_path):
    s = store(tmp_path)
    with s.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "wanimage_alembic_version"})
        diff = compare_metadata(context, metadata)
    assert [d for d in diff if not (d[0] == "remove_table" and d[1].name == "wanimage_alembic_version")] == []
    store(tmp_path)  # running the migrations again is a no-op


def test_claim_takes_oldest_pending_once(tmp_path):
    s = store(tmp_path)
    for i in range(3):
        s.create(f"t{i}", "m", Origin.GENERATION, {})
    claimed = [s.claim("w1"), s.claim("w2"), s.claim("w1"), s.claim("w2")]
    assert [c.id if c else None for c in claimed] == ["t0", "t1", "t2", None]
    assert all(c.attempts == 1 for c in claimed[:3])


def test_finish_only_by_the_holder(tmp_path):
    s = store(tmp_path)
    s.create("t", "m", Origin.GENERATION, {})
    s.claim("w1")
    assert not s.finish("t", "w2", TaskStatus.SUCCEEDED)
    assert s.finish("t", "w1", TaskStatus.FAILED, code="X", message="y")
    assert s.get("t").status is TaskStatus.FAILED


def test_recovery_requeues_once_then_fails(tmp_path):
    s = store(tmp_path)
    s.create("t", "m", Origin.GENERATION, {})
    s.claim("w1")
    assert s.recover_stale(60, 2, ["w1"]) == (1, 0)
    assert s.get("t").status is TaskStatus.PENDING
    s.claim("w2")
    assert s.recover_stale(60, 2, ["w2"]) == (0, 1)
    record = s.get("t")
    assert record.status is TaskStatus.FAILED and record.code == "InternalError.WorkerLost"


def test_cancel_pending_and_running(tmp_path):
    s = store(tmp_path)
    s.create("a", "m", Origin.GENERATION, {})
    s.create("b", "m", Origin.GENERATION, {})
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


def test_partial_images_are_recorded_only_by_the_holder(tmp_path):
    s = store(tmp_path)
    s.create("t", "m", Origin.OPENAI, {}, wants_previews=True)
    assert s.claim("w1").wants_previews
    assert not s.put_preview("t", "w2", "previews/t/050.png", 50)
    assert s.put_preview("t", "w1", "previews/t/050.png", 50)
    got = s.get("t")
    assert (got.preview_key, got.preview_progress) == ("previews/t/050.png", 50)
