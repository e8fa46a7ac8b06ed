"""Dynamic micro-batching: concurrent requests share one model call, off the event loop.

Requests wait in a bounded :class:`asyncio.Queue` (full: :class:`Overloaded`, answered 503). One worker task takes
the first waiting request, then more while their windows (the features a long context is cut into; each request
says how many it has) fit in ``max_batch``, or until ``max_wait_ms`` have passed, and runs the model on all of them in a thread of its own, so health checks and new requests are served while
it runs. That thread is always the same one: PyTorch's and onnxruntime's intra-op thread pools belong to the thread
that calls them, so a model called from whichever thread of a shared pool is free builds a pool per calling thread
and oversubscribes the cores. A request not answered within its timeout gets :class:`BatchTimeout` (504) and is dropped from any batch
not yet started. When a batch of several requests raises, each request is run again alone, so one bad request
fails only itself (:class:`BatchFailed`, 500). A request with more windows than ``max_batch`` runs alone; one that
would overflow a batch opens the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class Overloaded(Exception):
    """The queue is full; retry later."""


class BatchTimeout(Exception):
    """The request was not answered within its timeout."""


class BatchFailed(Exception):
    """The model raised on this request."""


@dataclass
class _Request:
    items: list[dict[str, Any]]
    request_id: str
    future: asyncio.Future = field(repr=False)
    windows: int = 1


class MicroBatcher:
    """Group concurrent requests into one call of ``run_batch``.

    Args:
        run_batch (`Callable[[list[dict]], list]`): the model: one result per item, in order (runs in a thread).
        max_batch (`int`): most windows per call (a single larger request still runs whole, alone).
        max_wait_ms (`float`): how long the first request of a batch waits for more.
        queue_size (`int`): most requests waiting; more are refused with :class:`Overloaded`.
        on_batch (`Callable[[int], None]`, *optional*): told the number of windows of each call.
    """

    def __init__(
        self,
        run_batch: Callable[[list[dict[str, Any]]], list[Any]],
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        queue_size: int = 256,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.queue: asyncio.Queue[_Request] = asyncio.Queue(maxsize=queue_size)
        self.on_batch = on_batch or (lambda size: None)
        self._worker: asyncio.Task | None = None
        self._model_thread: ThreadPoolExecutor | None = None
        self._next: _Request | None = None  # taken from the queue, did not fit the last batch

    def depth(self) -> int:
        return self.queue.qsize()

    async def start(self) -> None:
        if self._model_thread is None:
            self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="distilqa-model")
        if self._worker is None:
            self._worker = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._model_thread is not None:
            self._model_thread.shutdown(wait=False)
            self._model_thread = None

    async def warm(self, items: list[dict[str, Any]]) -> list[Any]:
        """Run ``items`` on the model thread outside any batch (after :meth:`start`): the first call's costs
        (thread pools, allocations) are paid before the first request."""
        return await self._on_model_thread(items)

    async def _on_model_thread(self, items: list[dict[str, Any]]) -> list[Any]:
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, self.run_batch, items)

    async def submit(
        self, items: list[dict[str, Any]], request_id: str, timeout: float, windows: int | None = None
    ) -> list[Any]:
        """The results of ``items``; raises :class:`Overloaded`, :class:`BatchTimeout` or :class:`BatchFailed`.

        ``windows``: how much of a batch the items take (default: one per item).
        """
        future = asyncio.get_running_loop().create_future()
        weight = len(items) if windows is None else max(1, windows)
        try:
            self.queue.put_nowait(_Request(items, request_id, future, weight))
        except asyncio.QueueFull:
            raise Overloaded(f"{self.queue.maxsize} requests are waiting") from None
        try:
            return await asyncio.wait_for(
                future, timeout
            )  # cancels the future on timeout: skipped if waiting
        except TimeoutError:
            raise BatchTimeout(f"no answer within {timeout:g} s") from None

    async def _collect(self) -> list[_Request]:
        loop = asyncio.get_running_loop()
        if self._next is not None:
            batch, self._next = [self._next], None
        else:
            batch = [await self.queue.get()]
        size = batch[0].windows
        deadline = loop.time() + self.max_wait
        while size < self.max_batch:
            try:
                if self.queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    request = await asyncio.wait_for(self.queue.get(), remaining)
                else:
                    request = self.queue.get_nowait()
            except TimeoutError:
                break
            if request.future.done():  # timed out while waiting: takes no room
                continue
            if size + request.windows > self.max_batch:
                self._next = request  # opens the next batch
                break
            batch.append(request)
            size += request.windows
        return [r for r in batch if not r.future.done()]  # drop the timed-out ones

    async def _loop(self) -> None:
        while True:
            batch = await self._collect()
            if not batch:
                continue
            try:
                results = await self._run(batch)
            except Exception:  # noqa: BLE001 - a failing batch fails its requests, never the worker
                if len(batch) == 1:
                    self._fail(batch[0])
                    continue
                for request in batch:  # find the request that fails; the others get their answers
                    try:
                        self._deliver([request], await self._run([request]))
                    except Exception:  # noqa: BLE001
                        self._fail(request)
                continue
            self._deliver(batch, results)

    async def _run(self, batch: list[_Request]) -> list[Any]:
        items = [item for request in batch for item in request.items]
        self.on_batch(sum(request.windows for request in batch))
        results = await self._on_model_thread(items)
        if len(results) != len(items):
            raise RuntimeError(f"the model returned {len(results)} results for {len(items)} questions")
        return results

    @staticmethod
    def _deliver(batch: list[_Request], results: list[Any]) -> None:
        begin = 0
        for request in batch:
            end = begin + len(request.items)
            if not request.future.done():
                request.future.set_result(results[begin:end])
            begin = end

    @staticmethod
    def _fail(request: _Request) -> None:
        logger.exception("request %s failed in the model", request.request_id)
        if not request.future.done():
            request.future.set_exception(BatchFailed(f"request {request.request_id} failed in the model"))
