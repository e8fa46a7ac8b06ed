"""The micro-batcher alone, with a fake model: batching, a failing request, timeouts, a full queue."""

from __future__ import annotations

import asyncio
import threading

import pytest

from distilqa.serve.batcher import BatchFailed, BatchTimeout, MicroBatcher, Overloaded


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_a_batch_and_get_their_own_results():
    sizes = []

    async def main():
        batcher = MicroBatcher(lambda items: [i * 10 for i in items], max_batch=8, max_wait_ms=200, on_batch=sizes.append)  # fmt: skip
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit([i, i + 1], str(i), 10) for i in range(4)))
        await batcher.stop()
        return results

    assert _run(main()) == [[0, 10], [10, 20], [20, 30], [30, 40]]
    assert sizes == [8]  # four requests of two questions, one model call


def test_an_exception_fails_only_its_request_and_the_worker_keeps_serving(caplog):
    def model(items):
        if "bad" in items:
            raise ValueError("boom")
        return items

    async def main():
        batcher = MicroBatcher(model, max_batch=8, max_wait_ms=100)
        await batcher.start()
        results = await asyncio.gather(
            batcher.submit(["a"], "r1", 10), batcher.submit(["bad"], "r2", 10), return_exceptions=True
        )
        after = await batcher.submit(["c"], "r3", 10)
        await batcher.stop()
        return results, after

    (good, bad), after = _run(main())
    assert good == ["a"] and isinstance(bad, BatchFailed) and "r2" in str(bad)
    assert after == ["c"]
    assert "r2" in caplog.text and "boom" in caplog.text


def test_a_request_not_answered_in_time_gets_a_timeout_and_a_full_queue_refuses():
    release = threading.Event()

    def model(items):
        release.wait(30)
        return items

    async def main():
        running = asyncio.Event()
        batcher = MicroBatcher(
            model, max_batch=1, max_wait_ms=0, queue_size=1, on_batch=lambda n: running.set()
        )
        await batcher.start()
        first = asyncio.create_task(batcher.submit(["a"], "r1", 30))
        await running.wait()  # r1 is in the model
        waiting = asyncio.create_task(batcher.submit(["b"], "r2", 0.05))  # stays queued behind r1
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await batcher.submit(["c"], "r3", 10)
        with pytest.raises(BatchTimeout):
            await waiting
        release.set()
        assert await first == ["a"]
        await batcher.stop()

    _run(main())


def test_windows_fill_the_batch_and_a_request_larger_than_it_runs_alone():
    sizes, calls = [], []

    def model(items):
        calls.append(list(items))
        return items

    async def main():
        batcher = MicroBatcher(model, max_batch=4, max_wait_ms=200, on_batch=sizes.append)
        # queued before the worker starts, so batching does not depend on timing
        requests = [(["a"], 3), (["b"], 3), (["long"], 9), (["c"], 1), (["d"], 1)]
        tasks = [asyncio.create_task(batcher.submit(items, str(i), 10, windows=w)) for i, (items, w) in enumerate(requests)]  # fmt: skip
        await asyncio.sleep(0)
        await batcher.start()
        results = await asyncio.gather(*tasks)
        await batcher.stop()
        return results

    assert _run(main()) == [["a"], ["b"], ["long"], ["c"], ["d"]]
    assert calls == [["a"], ["b"], ["long"], ["c", "d"]]  # 3+3 > 4: b opens the next batch; 9 runs alone
    assert sizes == [3, 3, 9, 2]


def test_the_model_always_runs_on_one_thread_off_the_event_loop():
    # intra-op thread pools belong to the calling thread: a model called from several threads builds several
    threads = []

    def model(items):
        threads.append(threading.get_ident())
        return items

    async def main():
        batcher = MicroBatcher(model, max_batch=2, max_wait_ms=1)
        await batcher.start()
        await batcher.warm(["w"])
        for wave in range(5):  # several batches, with other work in the default executor between them
            await asyncio.gather(*(batcher.submit([f"{wave}-{i}"], str(i), 10) for i in range(4)))
            await asyncio.gather(*(asyncio.to_thread(threading.get_ident) for _ in range(8)))
        await batcher.stop()
        return threading.get_ident()

    loop_thread = _run(main())
    assert len(threads) >= 11 and len(set(threads)) == 1 and threads[0] != loop_thread
