"""The queue's Worker and the generation pipeline on the in-memory task store: every outcome of a
handler ends its task the right way, the worker's heartbeat row lives and dies with it, and one
task goes through inputs -> plan -> generate -> finish -> store with progress, previews and
cancellation reaching the engine through one TaskProgress."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from tests.support.test_engine import DeterministicEngine
from wanimage.core.job import resolve_job
from wanimage.core.pipeline import Pipeline, TaskPipeline
from wanimage.core.progress import CancelCheck, ProgressWriter, TaskProgress
from wanimage.core.request import build_request
from wanimage.core.task import GenerationResult, Origin, Submission
from wanimage.engines.registry import EngineRegistry
from wanimage.errors import ApiError, InvalidParameter
from wanimage.storage.local import LocalImageStore
from wanimage.tasks.events import TaskEvents
from wanimage.tasks.memory import InMemoryTaskStore
from wanimage.tasks.records import TaskContext, TaskStatus
from wanimage.tasks.worker import Worker
from wanimage.thinking import BuiltinPlanner
from wanimage.types import Canceled, EngineLost

RESULT = GenerationResult(images=["results/a.png"], size="8*8", prompt="p", revised_prompt="p", seed=1,
                          sequential=False).to_payload()


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def queued(store: InMemoryTaskStore, task_id: str = "t", req=None, **kw):
    """A task as submit queues it: the request's job, resolved (no input images here)."""
    job = resolve_job(req, []) if req is not None else None
    payload = Submission(origin=Origin.GENERATION, asked=req.to_json() if req else {}, job=job).to_payload()
    return store.create(task_id, "wan2.7-image", payload, **kw)


def error_of(record) -> ApiError:
    return ApiError.from_payload(record.outcome)


def run_with(handler, store=None, **kw) -> tuple[InMemoryTaskStore, list]:
    store = store or InMemoryTaskStore()
    finished: list = []
    worker = Worker(store, handler, TaskEvents(), name="w1", on_finished=lambda t, s: finished.append(s), **kw)
    if store.get("t") is None:
        queued(store)
    assert worker.run_one()
    return store, finished


# ------------------------------------------------------------------ Worker outcomes


def test_a_result_succeeds_the_task_and_is_counted():
    store, finished = run_with(lambda task, worker_id: RESULT)
    record = store.get("t")
    assert record.status is TaskStatus.SUCCEEDED and record.outcome == RESULT and record.progress == 100
    assert finished == [TaskStatus.SUCCEEDED]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (Canceled(), TaskStatus.CANCELED, "Canceled"),
        (InvalidParameter("size: too big", field="size"), TaskStatus.FAILED, "InvalidParameter"),
        (RuntimeError("boom"), TaskStatus.FAILED, "InternalError.Algo"),
    ],
)
def test_every_failure_ends_the_task(error, status, code):
    def handler(task, worker_id):
        raise error

    store, finished = run_with(handler)
    record = store.get("t")
    assert (record.status, error_of(record).code) == (status, code) and finished == [status]
    if code == "InternalError.Algo":
        assert "RuntimeError: boom" in error_of(record).message and error_of(record).status == 500
    if code == "InvalidParameter":  # the error crosses the queue whole: status and field too
        assert (error_of(record).status, error_of(record).field) == (400, "size")


def test_a_lost_engine_requeues_once_then_fails():
    def handler(task, worker_id):
        raise EngineLost("replica died")

    store, finished = run_with(handler, max_attempts=2)
    assert store.get("t").status is TaskStatus.PENDING and finished == [TaskStatus.PENDING]
    run_with(handler, store, max_attempts=2)
    record = store.get("t")
    assert (record.status, error_of(record).code, record.attempts) == (TaskStatus.FAILED, "InternalError.EngineLost", 2)


def test_an_empty_queue_is_no_work():
    assert not Worker(InMemoryTaskStore(), lambda t, w: RESULT, TaskEvents()).run_one()


def test_a_task_taken_away_meanwhile_is_not_overwritten():
    store = InMemoryTaskStore()
    queued(store)

    def handler(task, worker_id):  # recovery handed the task to another worker while this one ran
        store.requeue(task.id, worker_id, 5)
        store.claim("w2")
        return RESULT

    run_with(handler, store)
    record = store.get("t")
    assert record.status is TaskStatus.RUNNING and record.worker_id == "w2"


def test_the_heartbeat_row_lives_while_the_worker_runs_and_goes_with_a_clean_stop():
    store = InMemoryTaskStore()
    worker = Worker(store, lambda t, w: RESULT, TaskEvents(), heartbeat_seconds=0.01, name="w1")
    worker.start()
    try:
        queued(store)
        worker.events.work_available.set()
        deadline = time.monotonic() + 5
        while store.get("t").status is not TaskStatus.SUCCEEDED:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert store.live_workers(1.0) == ["w1"]
    finally:
        worker.stop()
    assert store.live_workers(1.0) == []


# ------------------------------------------------------------------ the progress object


def test_cancel_check_sees_this_process_at_once_and_the_store_within_its_interval():
    store, events, clock = InMemoryTaskStore(), TaskEvents(), Clock()
    queued(store)
    store.claim("w1")
    check = CancelCheck("t", store, events, interval=0.5, clock=clock)
    check()
    store.cancel("t")  # asked through the store (another process)
    check()  # not polled yet
    clock.t += 0.6
    with pytest.raises(Canceled):
        check()
    other = CancelCheck("t", InMemoryTaskStore(), events, clock=clock)
    events.request_cancel("t")
    with pytest.raises(Canceled):
        other()


def test_progress_writes_to_the_store_are_throttled():
    store, clock = InMemoryTaskStore(), Clock()
    queued(store)
    store.claim("w1")
    write = ProgressWriter(TaskContext("t", "w1", store.url), store, interval=0.5, clock=clock)
    write(10, [])
    write(20, [])
    assert store.get("t").progress == 10
    clock.t += 0.6
    write(30, [])
    assert store.get("t").progress == 30


def test_progress_written_in_the_background_keeps_its_order_and_a_failure_costs_only_the_figure(caplog):
    """An engine's step does not wait on the database: the writes go, in order, to one thread;
    one that fails is logged and the task goes on."""
    store, clock = InMemoryTaskStore(), Clock()
    queued(store)
    store.claim("w1")
    background = ThreadPoolExecutor(1)
    write = ProgressWriter(TaskContext("t", "w1", store.url), store, interval=0.5, clock=clock, background=background)
    for pct in (10, 40, 100):
        write(pct, [])
        clock.t += 0.6
    background.submit(lambda: None).result()  # the three writes have run, in order
    assert store.get("t").progress == 100
    store.report_progress = lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device"))
    write.written = 0
    write(100, [])  # fails in the background, not here
    background.shutdown(wait=True)
    assert store.get("t").progress == 100 and "progress 100 % not written" in caplog.text


def test_only_subscriptions_that_take_progress_are_listening():
    events = TaskEvents()

    async def scenario() -> list[bool]:
        seen = [events.listening("t")]
        end_only = events.subscribe("t", progress=False)
        seen.append(events.listening("t"))
        first, second = events.subscribe("t"), events.subscribe("t")
        seen.append(events.listening("t"))
        events.unsubscribe(first)
        seen.append(events.listening("t"))
        events.unsubscribe(second)
        seen.append(events.listening("t"))
        events.unsubscribe(end_only)
        return seen

    assert asyncio.run(scenario()) == [False, False, True, True, False]


def test_a_replica_progress_goes_through_the_store_only():
    store = InMemoryTaskStore()
    queued(store)
    store.claim("w1")
    progress = TaskProgress.through_store(TaskContext("t", "w1", store.url), store)
    progress(0.42, lambda: pytest.fail("a replica renders no partial images"))
    assert store.get("t").progress == 42


# ------------------------------------------------------------------ the pipeline on the queue


@pytest.fixture()
def parts(tmp_path):
    engine = DeterministicEngine(steps=4)
    images = LocalImageStore(tmp_path / "files", b"k" * 32)
    pipeline = Pipeline(EngineRegistry({"wan2.7-image": lambda: engine}), planner=BuiltinPlanner())
    return engine, images, pipeline


def test_one_task_through_the_pipeline(parts):
    engine, images, pipeline = parts
    store, events = InMemoryTaskStore(), TaskEvents()
    phases: list[str] = []
    req = build_request(model="wan2.7-image", prompt="two red apples on the left", size="1024*1024", n=2, seed=7)
    queued(store, req=req)
    made: list[int] = []
    kept: dict[str, bytes] = {}
    worker = Worker(store, TaskPipeline(pipeline, store, images, events, on_phase=lambda p, s: phases.append(p),
                                        on_images=made.append, on_stored=kept.__setitem__), events, name="w1")
    assert worker.run_one()
    record = store.get("t")
    assert record.status is TaskStatus.SUCCEEDED, record.outcome
    result = GenerationResult.from_payload(record.outcome)
    assert made == [2]  # the images are counted
    assert (result.size, result.seed, result.planner) == ("1024*1024", 7, "builtin")
    assert result.revised_prompt.startswith("Two red apples on the left")
    assert engine.jobs[0].prompts[0] == result.revised_prompt and engine.jobs[0].layout  # the plan reached the engine
    assert kept == {key: images.read(key) for key in result.images}  # handed on only once stored
    pngs = [Image.open(io.BytesIO(images.read(key))) for key in result.images]
    assert [im.size for im in pngs] == [(1024, 1024)] * 2
    assert phases == ["queued", "planning", "generating", "encoding", "storing"]


def test_the_same_request_renders_the_same_pixels_twice(parts):
    _, _, pipeline = parts
    req = build_request(model="wan2.7-image", prompt="a cat", size="1024*1024", seed=3)
    first = pipeline.render(pipeline.resolve(req, []), lambda f, p=None: None)
    again = pipeline.render(pipeline.resolve(req, []), lambda f, p=None: None)
    assert first.pngs == again.pngs and first.planner == "builtin"
    plain = pipeline.render(pipeline.resolve(build_request(model="wan2.7-image", prompt="a cat", size="1024*1024",
                                                           seed=3, thinking_mode=False), []), lambda f, p=None: None)
    assert plain.planner is None and plain.revised_prompt == "a cat"


def test_partial_images_reach_a_stream_in_this_process(parts):
    engine, images, pipeline = parts
    store, events = InMemoryTaskStore(), TaskEvents()
    req = build_request(model="wan2.7-image", prompt="x", size="1024*1024", thinking_mode=False)
    queued(store, req=req)

    async def follow():
        sub = events.subscribe("t", previews=True)
        worker = Worker(store, TaskPipeline(pipeline, store, images, events), events, name="w1")
        await asyncio.to_thread(worker.run_one)
        await asyncio.sleep(0)
        got = []
        while not sub.queue.empty():
            got.append(sub.queue.get_nowait())
        return got

    got = asyncio.run(follow())
    progress = [e for e in got if e.kind == "progress"]
    assert [e.progress for e in progress] == [25, 50, 75, 100]
    assert all(len(e.previews) == 1 for e in progress) and got[-1].kind == "done"
    assert got[-1].record == store.get("t")  # the row as written: a waiter here needs no read


def test_a_stream_elsewhere_gets_partial_images_through_the_image_store(parts):
    engine, images, pipeline = parts
    store, events = InMemoryTaskStore(), TaskEvents()
    req = build_request(model="wan2.7-image", prompt="x", size="1024*1024", thinking_mode=False)
    queued(store, req=req, wants_previews=True)
    Worker(store, TaskPipeline(pipeline, store, images, events), events, name="w1").run_one()
    record = store.get("t")
    assert record.status is TaskStatus.SUCCEEDED and record.preview_key.startswith("previews/t/")
    assert Image.open(io.BytesIO(images.read(record.preview_key))).size == (64, 64)


def test_a_cancel_through_the_store_stops_the_engine(parts):
    _, images, _ = parts
    engine = DeterministicEngine(steps=200, step_seconds=0.01)  # 2 s unless stopped
    steps: list[float] = []
    run = engine.generate
    engine.generate = lambda job, progress: run(job, lambda f, p=None: (steps.append(f), progress(f, p)))
    pipeline = Pipeline(EngineRegistry({"wan2.7-image": lambda: engine}))
    store, events = InMemoryTaskStore(), TaskEvents()
    queued(store, req=build_request(model="wan2.7-image", prompt="x", size="1024*1024"))

    def cancel_when_running():  # as another process would: through the store only
        while store.get("t").status is not TaskStatus.RUNNING:
            time.sleep(0.005)
        store.cancel("t")

    threading.Thread(target=cancel_when_running).start()
    Worker(store, TaskPipeline(pipeline, store, images, events), events, name="w1").run_one()
    record = store.get("t")
    assert (record.status, error_of(record).code) == (TaskStatus.CANCELED, "Canceled")
    assert len(steps) < 200  # stopped at a step, not at the end


class FullDiskStore(InMemoryTaskStore):
    """The twin whose first `fails` finish writes meet a full database disk, as SQLite says it."""

    def __init__(self, fails: int) -> None:
        super().__init__()
        self.fails = fails

    def finish(self, *args, **kwargs):
        import sqlite3

        from sqlalchemy.exc import OperationalError

        if self.fails:
            self.fails -= 1
            raise OperationalError("UPDATE", {}, sqlite3.OperationalError("database or disk is full"))
        return super().finish(*args, **kwargs)


def test_a_final_write_that_fails_tells_the_waiter_at_once_and_records_failed_when_it_can():
    store = FullDiskStore(fails=3)
    events = TaskEvents()
    queued(store)
    seen: list = []

    async def wait_for_events():
        sub = events.subscribe("t")
        thread = threading.Thread(target=Worker(store, lambda t, w: RESULT, events, name="w1").run_one)
        thread.start()
        seen.append(await asyncio.wait_for(sub.queue.get(), 5))
        started = time.monotonic()
        await asyncio.to_thread(thread.join, 10)
        seen.append(time.monotonic() - started)

    asyncio.run(wait_for_events())
    event, seconds = seen
    assert event.kind == "failed" and event.error.code == "StorageFull" and "storage is full" in event.error.message
    record = store.get("t")
    assert (record.status, error_of(record).code) == (TaskStatus.FAILED, "StorageFull")
    assert seconds < 3  # two retries, half a second apart


def test_a_disk_full_error_inside_the_handler_is_storage_full_not_an_engine_bug():
    def handler(task, worker_id):
        raise OSError(28, "No space left on device")

    store, _ = run_with(handler)
    record = store.get("t")
    assert error_of(record).code == "StorageFull" and "Errno" not in error_of(record).message


def test_a_task_queued_by_an_older_server_fails_clearly_instead_of_running(parts):
    engine, images, pipeline = parts
    store, events = InMemoryTaskStore(), TaskEvents()
    queued(store)  # a submission without a job, as migration 0005 leaves older rows
    Worker(store, TaskPipeline(pipeline, store, images, events), events, name="w1").run_one()
    record = store.get("t")
    assert record.status is TaskStatus.FAILED and error_of(record).code == "InternalError.Stale"
    assert "submit it again" in error_of(record).message and not engine.jobs
