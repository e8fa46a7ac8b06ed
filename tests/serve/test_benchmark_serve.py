"""``distilqa benchmark serve`` end to end on the tiny random BERT: load, malformed requests, the report."""

from __future__ import annotations

import json
import os

import pytest

from distilqa.cli import main

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

WINDOWING = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16"]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_benchmark_serve_reports_load_malformed_and_offline_and_stops_the_server(tiny_bert_path, tiny_squad, tmp_path, capsys):  # fmt: skip
    out = tmp_path / "bench"
    argv = ["benchmark", "serve", str(tiny_bert_path), "--data", str(tiny_squad), "--concurrency", "4"]
    code = main(argv + ["--duration", "2", "--malformed", "50", "--threads", "1", "--output", str(out), *WINDOWING])  # fmt: skip
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    load = result["load"]
    assert load["answered"] == load["requests"] > 0 and load["errors"] == {}
    assert load["throughput_qps"] > 0 and load["p50_ms"] <= load["p95_ms"] <= load["p99_ms"]
    assert result["batches"]["batches"] >= 1 and result["batches"]["windows"] >= load["answered"]
    malformed = result["malformed"]
    assert malformed["sent"] == malformed["answered_4xx"] == 50
    assert set(malformed["statuses"]) <= {"400", "413", "422"} and len(malformed["statuses"]) == 3
    assert (
        malformed["ready_after"] == 200 and malformed["rss_before_mb"] > 0 and malformed["rss_after_mb"] > 0
    )
    assert result["offline"]["qps_batch"] > 0 and result["served_over_offline"] > 0
    assert result["backend"] == "torch" and result["hardware"] and result["settings"]["concurrency"] == 4
    assert result["server"]["exit_code"] == 0 and _gone(result["server"]["pid"])
    report = (out / "results.md").read_text()
    assert "served questions/s" in report and "Hardware:" in report and "answered 4xx" in report
    assert "served questions/s" in capsys.readouterr().out


def test_a_request_bound_without_offline(tiny_bert_path, tiny_squad):
    from distilqa.bench.serve import ServeBenchmarkSettings, run_benchmark

    settings = ServeBenchmarkSettings(data=str(tiny_squad), concurrency=2, duration=0, requests=6, malformed=0, threads=1, max_seq_length=64, doc_stride=16, max_query_length=16)  # fmt: skip
    result = run_benchmark(str(tiny_bert_path), settings, offline=False, log=lambda line: None)
    assert result["load"]["requests"] == result["load"]["answered"] == 6
    assert result["offline"] is None and result["malformed"] is None
    assert _gone(result["server"]["pid"])


def test_workers_are_all_ready_before_the_load_and_all_stopped(tiny_bert_path, tiny_squad):
    from distilqa.bench.serve import ServeBenchmarkSettings, run_benchmark

    settings = ServeBenchmarkSettings(data=str(tiny_squad), concurrency=4, duration=0, requests=12, malformed=20, threads=2, workers=2, max_seq_length=64, doc_stride=16, max_query_length=16)  # fmt: skip
    result = run_benchmark(str(tiny_bert_path), settings, offline=False, log=lambda line: None)
    assert result["load"]["requests"] == result["load"]["answered"] == 12
    workers = result["server"]["ready_pids"]
    assert len(workers) == 2 and result["server"]["pid"] not in workers  # the parent serves nothing
    assert result["server"]["exit_code"] == 0 and all(
        _gone(pid) for pid in [result["server"]["pid"], *workers]
    )
    assert result["malformed"]["answered_4xx"] == 20 and "2 workers of 1" in result["hardware"]


def test_more_workers_than_threads_is_refused():
    from distilqa.bench.serve import ServeBenchmarkSettings
    from distilqa.errors import InputError

    with pytest.raises(InputError, match="--workers 3 is more than --threads 2"):
        ServeBenchmarkSettings(data="d.json", threads=2, workers=3)


@pytest.mark.parametrize("which", ["model", "data"])
def test_bad_input_is_one_line_and_exit_2(which, tiny_bert_path, tiny_squad, tmp_path, capsys):
    model = tmp_path / "nope" if which == "model" else tiny_bert_path
    data = tmp_path / "nope.json" if which == "data" else tiny_squad
    assert main(["benchmark", "serve", str(model), "--data", str(data), "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and "Traceback" not in err and len(err.splitlines()) == 1
