"""Load benchmark of ``distilqa serve``: served throughput and latency beside the offline batch throughput.

One run: start ``distilqa serve MODEL`` as a subprocess on 127.0.0.1 and a free port, wait for ``/readyz``, drive
it with ``concurrency`` keep-alive clients sending single questions of the data set (cycling) for a bounded time
and/or number of requests, read the batch-size histogram of ``/metrics`` before and after; then send
``malformed`` bad requests in a row (bad JSON, wrong types, missing fields, over the limits) and check that all
got 4xx, that ``/readyz`` is still 200 and how the server's RSS moved. The server is stopped (SIGTERM, then
killed after a bound) in every case. Last, the offline batch throughput of the same model, backend and windowing
on the same questions is measured in its own process (:func:`distilqa.bench.inference.measure_in_subprocess`),
after the server is gone, so the two never share the CPU.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from distilqa.errors import InputError
from distilqa.qa.features import WINDOW

logger = logging.getLogger(__name__)

STOP_S = 30.0  # SIGTERM drains in-flight requests; after this long the server is killed


@dataclass
class ServeBenchmarkSettings:
    """What one serve benchmark run does.

    Args:
        data (`str`): SQuAD file with the questions (sent one per request, cycling).
        limit (`int`, *optional*): use only the first ``limit`` questions (served and offline).
        concurrency (`int`, defaults to 32): concurrent clients, each on its own keep-alive connection.
        duration (`float`, defaults to 30): seconds of load (the bound; 0: only ``requests`` bounds it).
        requests (`int`, *optional*): stop after this many requests (whichever of the two comes first).
        malformed (`int`, defaults to 10000): malformed requests sent in a row after the load (0: none).
        threads (`int`, *optional*): intra-op threads of the server (shared out among its workers) and of the
            offline run (default: all logical CPUs).
        workers (`int`, defaults to 1): the server's --workers; each worker gets threads // workers threads.
        max_batch (`int`, defaults to 32): the server's --max_batch (windows per model call) and the offline
            batch size.
        max_wait_ms (`float`, defaults to 5): the server's --max_wait_ms.
        startup_s (`float`, defaults to 300): longest wait for the server's /readyz.
        max_seq_length, doc_stride, max_query_length: windowing (384 / 128 / 64 by default).
    """

    data: str
    limit: int | None = None
    concurrency: int = 32
    duration: float = 30.0
    requests: int | None = None
    malformed: int = 10_000
    threads: int | None = None
    workers: int = 1
    max_batch: int = 32
    max_wait_ms: float = 5.0
    startup_s: float = 300.0
    max_seq_length: int = WINDOW.max_seq_length
    doc_stride: int = WINDOW.doc_stride
    max_query_length: int = WINDOW.max_query_length

    def __post_init__(self):
        for name in ("concurrency", "max_batch", "limit", "requests", "threads", "workers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"--{name} must be >= 1, got {value}")
        if self.duration < 0 or self.malformed < 0 or self.max_wait_ms < 0:
            raise InputError("--duration, --malformed and --max_wait_ms must be >= 0")
        if not self.duration and not self.requests:
            raise InputError("--duration 0 needs --requests N: the load must be bounded")
        if not self.threads:
            self.threads = os.cpu_count() or 1
        if self.workers > self.threads:
            raise InputError(f"--workers {self.workers} is more than --threads {self.threads}: each worker needs a thread")  # fmt: skip

    @property
    def threads_per_worker(self) -> int:
        return self.threads // self.workers

    def windowing(self) -> list[str]:
        return ["--max_seq_length", str(self.max_seq_length), "--doc_stride", str(self.doc_stride), "--max_query_length", str(self.max_query_length)]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``distilqa serve MODEL`` on 127.0.0.1 and a free port, its output in a temporary file; a context manager
    that always stops it (SIGTERM, then kill after :data:`STOP_S`)."""

    def __init__(self, model: str, settings: ServeBenchmarkSettings):
        self.model, self.settings = model, settings
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.ready_pids: set[int] = set()  # the processes that answered /readyz (the workers)
        self._log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")

    def __enter__(self) -> ServerProcess:
        s = self.settings
        threads = str(s.threads_per_worker)
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
        command = [sys.executable, "-m", "distilqa.cli", "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port), *s.windowing(), "--max_batch", str(s.max_batch), "--max_wait_ms", str(s.max_wait_ms), "--workers", str(s.workers), "--log_level", "warning"]  # fmt: skip
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Until every worker answered /readyz (each names its pid): a worker still loading accepts no
        connection, so load started earlier would land on the first ready ones and stay there (keep-alive)."""
        from distilqa.bench.serve_load import get

        deadline, ready = time.monotonic() + self.settings.startup_s, self.ready_pids
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited {self.process.returncode} before it was ready: {self.log_tail()}")  # fmt: skip
            status, body = get(self.port, "/readyz", timeout=2.0)
            if status == 200:
                ready.add(json.loads(body).get("pid"))
                if len(ready) >= self.settings.workers:
                    return
                continue
            time.sleep(0.2)
        raise RuntimeError(
            f"the server was not ready within {self.settings.startup_s:g} s: {self.log_tail()}"
        )

    def log_tail(self, lines: int = 5) -> str:
        self._log.flush()
        self._log.seek(0)
        return " | ".join(self._log.read().strip().splitlines()[-lines:])

    def stop(self) -> int | None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                logger.warning("the server did not stop within %g s of SIGTERM; killing it", STOP_S)
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self.exit_code = self.process.returncode
        return self.exit_code

    def __exit__(self, *exc) -> None:
        self.stop()
        self._log.close()


def _percentile(values: list[float], q: float) -> float | None:
    import numpy as np

    return round(float(np.percentile(values, q)), 2) if values else None


def _questions(settings: ServeBenchmarkSettings) -> list[dict[str, str]]:
    from distilqa.qa.data import load_examples

    if not Path(settings.data).is_file():
        raise InputError(f"--data {settings.data}: no such file; give a SQuAD .json file")
    examples = load_examples(settings.data, check_offsets="ignore", limit=settings.limit)
    return [{"question": row["question"], "context": row["context"]} for row in examples]


def check_model(model: str) -> str:
    """The backend the server will run ``model`` with; one-line :class:`InputError` when it is not a model folder."""
    from distilqa.bench.inference import export_backend

    folder = Path(model)
    if not folder.is_dir() or not ((folder / "config.json").exists() or (folder / "model.onnx").exists()):
        raise InputError(
            f"{model}: not a model folder; give a saved model (PyTorch or 'distilqa export' output)"
        )
    return export_backend(folder) or "torch"


def run_benchmark(model: str, settings: ServeBenchmarkSettings, offline: bool = True, log=print) -> dict[str, Any]:  # fmt: skip
    """Run the serve benchmark on ``model`` (see the module docstring); the results as one JSON-able dict.

    ``offline=False`` skips the offline measurement (``offline`` and ``served_over_offline`` are then `None`).
    """
    from distilqa.bench import serve_load
    from distilqa.infra.hardware import cpu_line

    backend = check_model(model)
    questions = _questions(settings)
    load_average = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    with ServerProcess(model, settings) as server:
        pid = server.process.pid
        log(f"server ready on 127.0.0.1:{server.port} (pid {pid}); warming up ...")
        serve_load.run_load(server.port, questions, settings.concurrency, None, settings.concurrency)
        before = serve_load.batch_histogram(server.port)
        log(f"load: {settings.concurrency} clients, {settings.duration:g} s" + (f", at most {settings.requests} requests" if settings.requests else ""))  # fmt: skip
        load = serve_load.run_load(server.port, questions, settings.concurrency, settings.duration, settings.requests)  # fmt: skip
        after = serve_load.batch_histogram(server.port)
        malformed = None
        if settings.malformed:
            log(f"malformed: {settings.malformed} requests in a row ...")
            children = settings.workers > 1  # the parent serves nothing: its workers hold the models
            rss_before = serve_load.process_rss_mb(pid, children=children)
            malformed = serve_load.run_malformed(server.port, settings.malformed)
            malformed.update(
                ready_after=serve_load.get(server.port, "/readyz")[0],
                rss_before_mb=rss_before,
                rss_after_mb=serve_load.process_rss_mb(pid, children=children),
            )
        exit_code = server.stop()
    answered = load.statuses.get("200", 0)
    result: dict[str, Any] = {
        "model": model,
        "backend": backend,
        "num_questions": len(questions),
        "load": {
            "requests": sum(load.statuses.values()),
            "answered": answered,
            "seconds": round(load.seconds, 3),
            "throughput_qps": round(answered / load.seconds, 2) if load.seconds else None,
            "p50_ms": _percentile(load.latencies_ms, 50),
            "p95_ms": _percentile(load.latencies_ms, 95),
            "p99_ms": _percentile(load.latencies_ms, 99),
            "errors": {k: v for k, v in sorted(load.statuses.items()) if k != "200"},
        },
        "batches": serve_load.batch_summary(before, after),
        "malformed": malformed,
        "server": {"pid": pid, "exit_code": exit_code, "ready_pids": sorted(server.ready_pids)},
        "offline": None,
        "served_over_offline": None,
    }
    if offline:
        result["offline"] = measure_offline(model, backend, settings)
        served, batch = result["load"]["throughput_qps"], result["offline"]["qps_batch"]
        result["served_over_offline"] = round(served / batch, 3) if served and batch else None
    per_worker = f" ({settings.workers} workers of {settings.threads_per_worker})" if settings.workers > 1 else ""  # fmt: skip
    result.update(hardware=f"{cpu_line()}, {settings.threads} threads{per_worker}", load_average=load_average, settings=asdict(settings))  # fmt: skip
    return result


def measure_offline(model: str, backend: str, settings: ServeBenchmarkSettings) -> dict[str, Any]:
    """Offline batch throughput of ``model`` on the same questions and windowing, batch ``max_batch``, in a
    fresh process (the measurement of ``distilqa benchmark inference``, without the latency samples)."""
    from distilqa.bench.inference import InferenceBenchmarkSettings, measure_in_subprocess

    inference = InferenceBenchmarkSettings(
        data=settings.data, limit=settings.limit, threads=settings.threads, batch_size=settings.max_batch,
        latency_samples=0, warmup=1, max_seq_length=settings.max_seq_length, doc_stride=settings.doc_stride,
        max_query_length=settings.max_query_length,
    )  # fmt: skip
    row = measure_in_subprocess(model, backend, inference)
    return {
        "qps_batch": row["qps_batch32"],
        "batch_size": settings.max_batch,
        "seconds": row["seconds_batch32"],
        "exact_match": row.get("exact_match"),
        "f1": row.get("f1"),
        "threads": row.get("threads"),
    }


COLUMNS = [
    ("backend", "backend"),
    ("concurrency", "clients"),
    ("throughput_qps", "served questions/s"),
    ("offline_qps", "offline questions/s"),
    ("ratio", "served / offline"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("p99_ms", "p99 ms"),
    ("errors", "errors"),
    ("mean_windows", "windows per batch"),
]
MALFORMED_COLUMNS = [
    ("sent", "malformed sent"),
    ("answered_4xx", "answered 4xx"),
    ("statuses", "statuses"),
    ("ready_after", "/readyz after"),
    ("rss_before_mb", "RSS before MB"),
    ("rss_after_mb", "RSS after MB"),
]


def markdown_report(result: dict[str, Any]) -> str:
    """The settings and hardware, the load table and the malformed-requests table, as markdown."""
    from distilqa.bench.inference import versions
    from distilqa.infra.markdown import markdown_table

    s, load = result["settings"], result["load"]
    errors = sum(load["errors"].values())
    row = {
        "backend": result["backend"],
        "concurrency": s["concurrency"],
        **load,
        "offline_qps": (result["offline"] or {}).get("qps_batch"),
        "ratio": result["served_over_offline"],
        "errors": f"{errors} ({', '.join(f'{k}: {v}' for k, v in load['errors'].items())})" if errors else 0,
        "mean_windows": result["batches"]["mean_windows"],
    }
    bounds = f"{s['duration']:g} s" + (f" or {s['requests']} requests" if s["requests"] else "")
    lines = [
        f"Model: {result['model']}; data: {s['data']} ({result['num_questions']} questions, one per request, "
        f"cycling), max_seq_length {s['max_seq_length']}, doc_stride {s['doc_stride']}; {s['concurrency']} "
        f"keep-alive clients on loopback for {bounds} ({load['requests']} requests in {load['seconds']:g} s); server "
        f"--workers {s.get('workers', 1)}, --max_batch {s['max_batch']} windows, --max_wait_ms {s['max_wait_ms']:g}; offline: the same questions at "
        f"batch {s['max_batch']} in one process. Latency is per request, client side.",
        f"Hardware: {result['hardware']}; {versions()}"
        + (f"; load average before the run {result['load_average']}" if result.get("load_average") else "")
        + ".",
        "",
        markdown_table([row], COLUMNS),
    ]
    malformed = result.get("malformed")
    if malformed:
        cells = {**malformed, "statuses": ", ".join(f"{k}: {v}" for k, v in malformed["statuses"].items())}
        lines += ["", f"Malformed requests ({', '.join(malformed['kinds'])}), in a row on one connection:", "", markdown_table([cells], MALFORMED_COLUMNS)]  # fmt: skip
    return "\n".join(lines)
