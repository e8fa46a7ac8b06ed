"""The Starlette app of ``distilqa serve``: ``POST /v1/answer``, ``GET /healthz``, ``/readyz``, ``/metrics``,
``/openapi.json``.

Errors are JSON ``{"error", "field", "limit"?, "request_id"}``: 400 malformed JSON, 413 over a size limit, 422 a
wrong type or missing field, 503 overloaded (with ``Retry-After``), 504 not answered in time, 500 the model failed
on this request (logged with the request id; the server keeps serving).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import threading
import time
import uuid
from typing import Any

from distilqa.serve.batcher import BatchFailed, BatchTimeout, MicroBatcher, Overloaded
from distilqa.serve.metrics import Metrics
from distilqa.serve.openapi import openapi_schema
from distilqa.serve.validation import Limits, RequestError, parse_items

logger = logging.getLogger(__name__)

WARMUP = {"question": "What is it?", "context": "It is a test.", "top_k": None, "allow_null": False}


def answer_batch(predictor, items: list[dict[str, Any]], options, batch_size: int = 32) -> list[dict]:
    """Answers for checked items, by :meth:`QAPredictor.answer` (one call per ``allow_null`` value), in order."""
    results: list[dict | None] = [None] * len(items)
    for allow_null in (False, True):
        rows = [i for i, item in enumerate(items) if item["allow_null"] == allow_null]
        if not rows:
            continue
        top_k = max((items[i]["top_k"] or 0) for i in rows)
        answers = predictor.answer(
            [items[i]["question"] for i in rows],
            [items[i]["context"] for i in rows],
            batch_size=batch_size,
            options=options,
            allow_null=allow_null,
            alternatives=top_k,
        )
        for i, answer in zip(rows, answers):
            k = items[i]["top_k"]
            if k is None:
                answer.pop("alternatives", None)
            else:
                answer["alternatives"] = answer["alternatives"][:k]
            results[i] = answer
    return results


class _WindowCounter:
    """The number of windows of checked items, with the predictor's windowing, on its own tokenizer copy (the
    model thread tokenizes with the original; a fast tokenizer must not be used by two threads at once)."""

    def __init__(self, predictor):
        self.tokenizer = copy.deepcopy(predictor.tokenizer)
        self.params = predictor.params
        self.lock = threading.Lock()

    def __call__(self, items: list[dict[str, Any]]) -> int:
        from distilqa.qa.features import count_windows

        with self.lock:
            counts = count_windows(
                self.tokenizer, [i["question"] for i in items], [i["context"] for i in items], self.params
            )
        return sum(counts)


def create_app(
    predictor,
    options=None,
    limits: Limits | None = None,
    model_name: str = "model",
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
    queue_size: int = 256,
    timeout_s: float = 30.0,
    batch_size: int = 32,
):
    """The ASGI app serving ``predictor`` (a loaded :class:`~distilqa.qa.predictor.QAPredictor`).

    Args:
        predictor: the model; called from one worker thread at a time.
        options (:class:`~distilqa.qa.predictor.PredictOptions`, *optional*): post-processing.
        limits (:class:`Limits`, *optional*): request limits.
        model_name (`str`): the ``model`` label of the metrics.
        max_batch, max_wait_ms, queue_size: see :class:`~distilqa.serve.batcher.MicroBatcher`; ``max_batch``
            counts windows (a long context's windows count toward the batch).
        timeout_s (`float`): longest wait of one request for its answer (then 504).
        batch_size (`int`): windows per forward pass inside one batch.
    """
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    from distilqa.qa.predictor import PredictOptions

    options = options or PredictOptions()
    limits = limits or Limits(max_top_k=options.n_best)
    state = {"ready": False}
    window_counter = _WindowCounter(predictor)
    batcher = MicroBatcher(
        lambda items: answer_batch(predictor, items, options, batch_size), max_batch, max_wait_ms, queue_size
    )
    schema = openapi_schema(limits)
    metrics = Metrics(model_name, predictor.backend, queue_depth=batcher.depth)
    batcher.on_batch = metrics.observe_batch

    def error(status: int, payload: dict, request_id: str, headers: dict | None = None):
        return JSONResponse({**payload, "request_id": request_id}, status, headers={"X-Request-ID": request_id, **(headers or {})})  # fmt: skip

    async def read_body(request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise RequestError(413, f"body of {declared} bytes, more than {limits.max_body_bytes}", "body", limits.max_body_bytes)  # fmt: skip
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise RequestError(
                    413, f"body over {limits.max_body_bytes} bytes", "body", limits.max_body_bytes
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def answer(request):
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        response = await _answer(request, request_id)
        metrics.observe_request(response.status_code, time.perf_counter() - started)
        return response

    async def _answer(request, request_id: str):
        try:
            raw = await read_body(request)
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise RequestError(400, f"malformed JSON: {err}", field="body") from None
            items, is_list = parse_items(body, limits)
        except RequestError as err:
            return error(err.status, err.payload(), request_id)
        try:
            windows = await asyncio.to_thread(window_counter, items)
            answers = await batcher.submit(items, request_id, timeout_s, windows=windows)
        except Overloaded as err:
            return error(503, {"error": f"overloaded: {err}; retry later", "field": None}, request_id, {"Retry-After": "1"})  # fmt: skip
        except BatchTimeout as err:
            return error(504, {"error": str(err), "field": None}, request_id)
        except BatchFailed:
            return error(500, {"error": f"internal error; see the server log for request {request_id}", "field": None}, request_id)  # fmt: skip
        return JSONResponse(answers if is_list else answers[0], headers={"X-Request-ID": request_id})

    async def healthz(request):
        return JSONResponse({"status": "ok"})

    async def readyz(request):
        if not state["ready"]:
            return JSONResponse({"status": "loading"}, 503)
        return JSONResponse(
            {"status": "ready", "model": model_name, "backend": predictor.backend, "pid": os.getpid()}
        )

    async def openapi(request):
        return JSONResponse(schema)

    async def metrics_page(request):
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        await batcher.warm([WARMUP])
        state["ready"] = True
        logger.info("ready: %s (%s)", model_name, predictor.backend)
        try:
            yield
        finally:
            state["ready"] = False
            await batcher.stop()

    routes = [
        Route("/v1/answer", answer, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
