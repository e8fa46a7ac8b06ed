"""``distilqa serve`` as a real server on 127.0.0.1 with a real HTTP client (the tiny random BERT)."""

from __future__ import annotations

import re
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serve.server import Server

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

LONG = " ".join(["The museum was founded in 1901 by the city of Lyon and opened to visitors in 1905."] * 12)
ITEMS = [
    {"question": "Who founded the museum?", "context": "The museum was founded in 1901 by the city of Lyon."},
    {"question": "When did it open?", "context": LONG},  # several windows
    {"question": "Where is it?", "context": "It stands by the river in the old town.", "allow_null": True},
]
SAMPLE = re.compile(
    r"^[a-zA-Z_:][a-zA-Z0-9_:]*"
    r'(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})?'
    r" (-?[0-9.]+(e[+-]?[0-9]+)?|\+Inf|-Inf|NaN)$"
)


@pytest.fixture(scope="module")
def server(tiny_bert_path):
    server = Server(tiny_bert_path)
    yield server
    server.stop()


def _reference(tiny_bert_path, items, top_k=0):
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import QAPredictor

    predictor = QAPredictor.from_pretrained(tiny_bert_path, params=FeatureParams(64, 16, 16))
    out = []
    for allow_null in (False, True):
        rows = [i for i, item in enumerate(items) if item.get("allow_null", False) == allow_null]
        if not rows:
            continue
        answers = predictor.answer(
            [items[i]["question"] for i in rows],
            [items[i]["context"] for i in rows],
            allow_null=allow_null,
            alternatives=top_k,
        )
        out += list(zip(rows, answers))
    return [answer for _, answer in sorted(out, key=lambda pair: pair[0])]


def test_answers_are_those_of_the_predictor(server, tiny_bert_path):
    expected = _reference(tiny_bert_path, ITEMS)
    status, answers = server.post(ITEMS)
    assert status == 200
    assert answers == expected  # a list in, the same list out, in order, with predict's keys and values
    status, one = server.post(ITEMS[0])  # one object in, one out; alone, as predict --question runs it
    assert status == 200 and one == _reference(tiny_bert_path, ITEMS[:1])[0]


def test_top_k_gives_the_n_best_alternatives(server, tiny_bert_path):
    expected = _reference(tiny_bert_path, ITEMS[:1], top_k=3)[0]
    status, answer = server.post({**ITEMS[0], "top_k": 3})
    assert status == 200 and answer == expected
    assert len(answer["alternatives"]) == 3
    assert answer["alternatives"][0]["answer"] == answer["answer"]
    assert {"answer", "score", "probability", "start", "end"} == set(answer["alternatives"][1])


def test_32_concurrent_clients_are_all_answered(server, tiny_bert_path):
    items = [{"question": f"Who founded the museum {i}?", "context": ITEMS[0]["context"]} for i in range(32)]
    expected = _reference(tiny_bert_path, items)
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(server.post, items))
    assert [status for status, _ in results] == [200] * 32
    for (_, answer), reference in zip(
        results, expected
    ):  # batched with others: same spans, scores to rounding
        assert (answer["answer"], answer["start"], answer["end"]) == (reference["answer"], reference["start"], reference["end"])  # fmt: skip
        assert answer["score"] == pytest.approx(reference["score"], abs=1e-4)


@pytest.mark.parametrize(
    "raw, status, field",
    [
        (b'{"question": "x", "context"', 400, "body"),
        (b"\xff\xfe", 400, "body"),
        (b'"just a string"', 422, "body"),
        (b'{"context": "c"}', 422, "question"),
        (b'{"question": 3, "context": "c"}', 422, "question"),
        (b'{"question": "q", "context": ""}', 422, "context"),
        (b'{"question": "q", "context": "c", "top_k": "2"}', 422, "top_k"),
        (b'{"question": "q", "context": "c", "top_k": 0}', 422, "top_k"),
        (b'{"question": "q", "context": "c", "allow_null": "yes"}', 422, "allow_null"),
        (b'{"question": "q", "context": "c", "extra": 1}', 422, "extra"),
        (b'[{"question": "q", "context": "c"}, {"question": "q"}]', 422, "[1].context"),
        (b"[]", 422, "items"),
        (b'{"question": "' + b"q" * 1001 + b'", "context": "c"}', 413, "question"),
        (b'{"question": "q", "context": "' + b"c" * 100_001 + b'"}', 413, "context"),
        (b"[" + b",".join([b'{"question": "q", "context": "c"}'] * 65) + b"]", 413, "items"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field_and_the_server_keeps_serving(server, raw, status, field):
    got, error = server.post(None, raw=raw)
    assert got == status
    assert error["field"] == field and error["error"] and error["request_id"]
    if status == 413:
        assert error["limit"] >= 1
    assert server.get("/readyz")[0] == 200
    assert server.post(ITEMS[0])[0] == 200


def test_a_body_over_the_limit_gets_413_before_it_is_read(server):
    import http.client
    import json

    # Headers only, declaring 2 MB: the server answers at once (sending the whole body would race its reply).
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest("POST", "/v1/answer")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", "2000000")
    conn.endheaders()
    response = conn.getresponse()
    error = json.loads(response.read())
    conn.close()
    assert response.status == 413 and error["field"] == "body" and error["limit"] == 1_000_000
    assert server.post(ITEMS[0])[0] == 200


def test_health_and_metrics(server):
    assert server.get("/healthz") == (200, {"status": "ok"})
    server.post(ITEMS[0])
    status, text = server.get("/metrics")
    assert status == 200
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples and all(SAMPLE.match(line) for line in samples), [
        s for s in samples if not SAMPLE.match(s)
    ]
    names = {line.split("{")[0] for line in samples}
    for name in ("distilqa_requests_total", "distilqa_request_seconds_bucket", "distilqa_batch_size_count", "distilqa_queue_depth"):  # fmt: skip
        assert name in names
    assert all('backend="torch"' in line for line in samples)
    assert re.search(r'distilqa_requests_total\{[^}]*status="200"\} [1-9]', text)


def test_openapi_schema_describes_the_endpoints_and_limits(server):
    status, schema = server.get("/openapi.json")
    assert status == 200 and schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {"/v1/answer", "/healthz", "/readyz", "/metrics"}
    item = schema["paths"]["/v1/answer"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "oneOf"
    ][0]
    assert item["required"] == ["question", "context"] and item["properties"]["question"]["maxLength"] == 1000


def _batches(server) -> float:
    text = server.get("/metrics")[1]
    return float(re.search(r"^distilqa_batch_size_count\{[^}]*\} (\S+)$", text, re.M).group(1))


BLOCKER = [{"question": f"When did it open {i}?", "context": LONG * 4} for i in range(64)]


def test_overload_gives_503_with_retry_after_before_the_busy_batch_ends(tiny_bert_path):
    server = Server(tiny_bert_path, "--queue_size", "1", "--max_batch", "1", "--max_wait_ms", "1000")
    try:
        busy = ThreadPoolExecutor(1).submit(server.post, BLOCKER)
        while _batches(server) < 1:  # the long request is in the model
            pass
        probe = ("POST", "/v1/answer", b'{"question": "q", "context": "c"}')
        replies = []
        with ThreadPoolExecutor(
            4
        ) as pool:  # concurrent clients: one waits in the queue, the others are refused
            while not busy.done() and not any(r[0] == 503 for r in replies):
                replies += pool.map(lambda _: server.request(*probe), range(4))
        statuses = [status for status, _, _ in replies]
        assert 503 in statuses, "the long request ended before the queue filled; make BLOCKER longer"
        _, head, error = next(r for r in replies if r[0] == 503)
        assert head["Retry-After"] == "1" and "overloaded" in error["error"]
        assert set(statuses) <= {200, 503}
        assert busy.result()[0] == 200
        assert server.post(ITEMS[0])[0] == 200  # and serving again
    finally:
        assert server.stop() == 0


def test_sigterm_drains_the_request_in_flight_and_exits_0(tiny_bert_path):
    server = Server(tiny_bert_path)
    busy = ThreadPoolExecutor(1).submit(server.post, BLOCKER[:16])
    while _batches(server) < 1:
        pass
    server.process.send_signal(signal.SIGTERM)
    status, answers = busy.result()
    assert status == 200 and len(answers) == 16
    assert server.process.wait(timeout=60) == 0


def _histogram(text: str, name: str) -> dict[str, float]:
    pattern = rf'^{name}_bucket\{{[^}}]*le="([^"]+)"\}} (\S+)$'
    buckets = {le: float(n) for le, n in re.findall(pattern, text, re.M)}
    total = re.search(rf"^{name}_sum\{{[^}}]*\}} (\S+)$", text, re.M).group(1)
    return {**buckets, "sum": float(total)}


def test_a_long_contexts_windows_count_toward_the_batch(tiny_bert_path):
    from distilqa.infra.models import load_tokenizer
    from distilqa.qa.features import FeatureParams, count_windows

    long_items = [{"question": f"When did it open {i}?", "context": LONG} for i in range(2)]
    short_items = [{"question": f"Who founded it {i}?", "context": ITEMS[0]["context"]} for i in range(6)]
    items = long_items + short_items
    windows = count_windows(
        load_tokenizer(tiny_bert_path),
        [i["question"] for i in items],
        [i["context"] for i in items],
        FeatureParams(64, 16, 16),
    )
    assert windows[0] > 4 and windows[-1] == 1
    server = Server(tiny_bert_path, "--max_batch", "4", "--max_wait_ms", "50")
    try:
        with ThreadPoolExecutor(len(items)) as pool:
            results = list(pool.map(server.post, items))
        assert [status for status, _ in results] == [200] * len(items)
        for (_, answer), item in zip(results, items):  # batched with others: same spans, scores to rounding
            reference = _reference(tiny_bert_path, [item])[0]
            assert (answer["answer"], answer["start"], answer["end"]) == (reference["answer"], reference["start"], reference["end"])  # fmt: skip
            assert answer["score"] == pytest.approx(reference["score"], abs=1e-4)
        batches = _histogram(server.get("/metrics")[1], "distilqa_batch_size")
        assert batches["sum"] == sum(windows)  # the histogram counts windows, not questions
        assert batches["+Inf"] - batches["4"] == 2  # only the two long requests exceed 4 windows, each alone
    finally:
        assert server.stop() == 0


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_workers_share_the_port_both_answer_and_sigterm_stops_all(tiny_bert_path):
    server = Server(tiny_bert_path, "--workers", "2")
    try:
        import time

        from tests.serve.server import STARTUP_S

        # Ready means one worker answers; the other may still be loading. The kernel hands each connection to
        # a worker that is accepting, so poll until both have answered (bounded, not a timing assertion).
        pids, deadline = set(), time.monotonic() + STARTUP_S
        with ThreadPoolExecutor(8) as pool:
            while len(pids) < 2 and time.monotonic() < deadline:
                pids |= {body["pid"] for _, body in pool.map(lambda _: server.get("/readyz"), range(8))}
                time.sleep(0.05)
        assert len(pids) == 2 and server.process.pid not in pids
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(server.post, [ITEMS[0]] * 16))
        assert [status for status, _ in results] == [200] * 16
        assert all(answer == results[0][1] for _, answer in results)
        busy = ThreadPoolExecutor(1).submit(server.post, BLOCKER[:16])
        for _ in range(10_000):  # a bound; /metrics comes from either worker, the busy one says so
            batches = _histogram(server.get("/metrics")[1], "distilqa_batch_size")
            if batches["+Inf"] > batches["256"]:  # only the long request makes a batch over 256 windows
                break
        else:
            pytest.fail("the long request never reached a model batch")
        server.process.send_signal(signal.SIGTERM)
        status, answers = busy.result()
        assert status == 200 and len(answers) == 16  # drained, not dropped
    finally:
        code = server.stop()
    assert code == 0
    assert not any(_alive(pid) for pid in pids)


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_a_model_that_cannot_load_with_workers_exits_2(tmp_path, folder):
    import subprocess
    import sys

    from tests.serve.server import REPO, free_port

    (tmp_path / "empty").mkdir()  # a folder: the parent starts the workers, which fail to load it
    env = {"PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "distilqa.cli", "serve", str(tmp_path / folder), "--workers", "2", "--port", str(free_port())]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and folder in done.stderr and "Traceback" not in done.stderr
    if folder == "missing":  # refused by the parent, once
        assert done.stderr.count("distilqa: error:") == 1
