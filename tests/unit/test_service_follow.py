"""ImageService.submit_and_follow: a stream sees every event of its task, however fast the worker.

The worker here is played by hand, deterministically: it claims the task, publishes three
progress events with previews and finishes, all before the stream reads anything. A subscription
made lazily (when the HTTP response starts) or a loop that returns as soon as the store says
"ended" would lose those events; the playground's live previews once did, under load."""

from __future__ import annotations

import asyncio

from PIL import Image

from tests.support.test_engine import DeterministicEngine
from wanimage.config import Settings
from wanimage.core.request import build_request
from wanimage.core.service import ImageService
from wanimage.core.task import GenerationResult, Origin
from wanimage.engines.registry import EngineRegistry
from wanimage.errors import ApiError
from wanimage.tasks.events import TaskEvent
from wanimage.tasks.records import TaskStatus


def make_service(tmp_path) -> ImageService:
    registry = EngineRegistry({"wan2.7-image": DeterministicEngine})
    return ImageService.from_settings(Settings(data_dir=tmp_path), registry)


def test_events_published_before_the_stream_reads_are_all_delivered(tmp_path):
    service = make_service(tmp_path)
    preview = Image.new("RGB", (8, 8), "red")

    async def scenario() -> list[tuple[int, int]]:
        req = build_request(model="wan2.7-image", prompt="a tree", size="1K", seed=1)
        record, events = await service.submit_and_follow(req, Origin.OPENAI, previews=True)
        claimed = service.store.claim("fast-worker")
        assert claimed is not None and claimed.id == record.id
        for progress in (25, 50, 75):
            service.events.publish(record.id, TaskEvent("progress", progress, [preview]))
        assert service.store.finish(record.id, "fast-worker", TaskStatus.FAILED, "an error")
        service.events.publish(record.id, TaskEvent("done"))
        await asyncio.sleep(0)  # let the loop deliver what the "worker" published
        return [(e.progress, len(e.previews)) async for e in events]

    try:
        assert asyncio.run(scenario()) == [(25, 1), (50, 1), (75, 1)]
    finally:
        service.store.close()



def test_a_sync_wait_reads_the_store_at_the_start_and_the_end_not_at_each_step(tmp_path):
    """A worker in this process tells its waiters by events; a sync request, which shows no
    progress, is not woken by a step's event, and no event costs it a database read."""
    service = make_service(tmp_path)
    reads = []
    store_get = service.store.get
    service.store.get = lambda task_id: reads.append(task_id) or store_get(task_id)

    async def scenario() -> tuple[str, list[str]]:
        req = build_request(model="wan2.7-image", prompt="a tree", size="1K", seed=1)
        record = await service.submit(req, Origin.OPENAI)
        waiting = asyncio.ensure_future(service.wait(record.id))
        for _ in range(5):  # the waiter subscribes and reads the store once
            await asyncio.sleep(0.01)
        (sub,) = service.events._subs[record.id]
        claimed = service.store.claim("worker-here")
        assert claimed is not None and claimed.id == record.id
        for step in range(1, 31):
            service.events.publish(record.id, TaskEvent("progress", step * 3))
        await asyncio.sleep(0.01)
        assert sub.queue.empty()  # not one of the 30 steps reached the sync waiter
        failure = ApiError("the engine gave up", status=500, code="InternalError").to_payload()
        assert service.store.finish(record.id, "worker-here", TaskStatus.FAILED, failure)
        service.events.publish(record.id, TaskEvent("done"))
        task = await waiting
        return task.status.value, reads

    try:
        status, reads = asyncio.run(scenario())
        assert status == "FAILED" and len(reads) == 2, reads
    finally:
        service.store.close()

def test_a_sync_call_answered_by_a_worker_here_reads_no_task_row(tmp_path):
    """The sync call subscribes before its task exists, so the end event of a worker in this
    process cannot be missed and no read is needed to start following; that event carries the
    row as the worker wrote it (TaskStore.finish's RETURNING), so none is needed at the end."""
    service = make_service(tmp_path)
    reads = []
    store_get = service.store.get
    service.store.get = lambda task_id: reads.append(task_id) or store_get(task_id)

    async def scenario():
        req = build_request(model="wan2.7-image", prompt="a tree", size="1K", seed=1)
        answer = asyncio.ensure_future(service.generate(req, Origin.OPENAI))
        while (claimed := service.store.claim("worker-here")) is None:
            await asyncio.sleep(0.005)
        result = GenerationResult(images=["results/a.png"], size="1024*1024", prompt="a tree",
                                  revised_prompt="a tree", seed=1, sequential=False).to_payload()
        ended = service.store.finish(claimed.id, "worker-here", TaskStatus.SUCCEEDED, result)
        assert ended == store_get(claimed.id)  # the row as written, read back
        service.events.publish(claimed.id, TaskEvent("done", 100, record=ended))
        return await answer

    try:
        task = asyncio.run(scenario())
        assert task.status is TaskStatus.SUCCEEDED and task.result.images == ["results/a.png"]
        assert reads == [] and service.events._subs == {}
    finally:
        service.store.close()


def test_a_refused_submit_leaves_no_subscription_behind(tmp_path):
    service = make_service(tmp_path)

    async def scenario() -> None:
        req = build_request(model="wan2.7-image", prompt="a tree", images=["http://127.0.0.1:9/a.png"], seed=1)
        try:
            await service.submit_and_follow(req, Origin.OPENAI, previews=True)
        except Exception:
            pass
        else:
            raise AssertionError("fetching from a closed port must fail")

    try:
        asyncio.run(scenario())
        assert service.events._subs == {}
    finally:
        service.store.close()


def test_a_retention_interval_shorter_than_half_the_stale_period_is_honoured(tmp_path):
    """The maintenance loop wakes for whichever pass is due first: retention every 0.2 s here, while
    recovery (every stale_after_seconds / 2 = 30 s) does not run at all."""
    settings = Settings(data_dir=tmp_path, retention_interval_seconds=0.2, stale_after_seconds=60)
    service = ImageService.from_settings(settings, EngineRegistry({"wan2.7-image": DeterministicEngine}))
    calls = {"purge": 0, "recover": 0}
    service.purge_expired = lambda: calls.__setitem__("purge", calls["purge"] + 1)
    service.recover = lambda: calls.__setitem__("recover", calls["recover"] + 1)

    async def run_a_while() -> None:
        try:
            await asyncio.wait_for(service._maintain(), 0.75)
        except TimeoutError:
            pass

    asyncio.run(run_a_while())
    service.store.close()
    assert calls["recover"] == 0 and 2 <= calls["purge"] <= 4
