"""``distilqa benchmark inference`` on tiny models and a few questions: rows, JSON keys, markdown, plot.

No wall-clock assertions: speeds are only checked to be positive numbers.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")

from distilqa.bench.inference import (  # noqa: E402
    InferenceBenchmarkSettings,
    export_backend,
    markdown_report,
    measure,
    plot,
    run_benchmark,
)
from distilqa.cli import main  # noqa: E402
from distilqa.errors import InputError  # noqa: E402
from distilqa.qa.features import FeatureParams  # noqa: E402

KEYS = {
    "model",
    "backend",
    "exact_match",
    "f1",
    "qps_batch32",
    "p50_ms_batch1",
    "p95_ms_batch1",
    "params",
    "disk_mb",
    "peak_rss_mb",
}
WINDOWS = ["--max-seq-length", "128", "--doc-stride", "32", "--max-query-length", "32"]


@pytest.fixture(scope="module")
def distilbert_int8(tiny_distilbert_path, tmp_path_factory):
    from distilqa.export.exporter import export_model

    out = tmp_path_factory.mktemp("bench") / "distilbert-int8"
    export_model(
        tiny_distilbert_path,
        out,
        quantize="int8",
        limit=4,
        params=FeatureParams(128, 32, 32),
        force=True,
        log=lambda line: None,
    )
    return out


def test_cli_measures_each_row_in_a_subprocess_and_writes_outputs(
    tiny_bert_path, distilbert_int8, tiny_squad, tmp_path, capsys
):
    out_json, out_md, out_png = tmp_path / "rows.json", tmp_path / "table.md", tmp_path / "plot.png"
    code = main(
        [
            "benchmark",
            "inference",
            "--models",
            str(tiny_bert_path),
            str(distilbert_int8),
            "--data",
            str(tiny_squad),
            "--backends",
            "torch",
            "onnx-int8",
            "--limit",
            "3",
            "--latency-samples",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--threads",
            "1",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
            "--plot",
            str(out_png),
            *WINDOWS,
        ]
    )
    assert code == 0
    rows = json.loads(out_json.read_text())
    # The PyTorch folder runs in torch and is exported to INT8 on the fly; the exported folder is its own row.
    assert [(r["name"], r["backend"]) for r in rows] == [
        ("bert", "torch"),
        ("bert", "onnx-int8"),
        ("distilbert-int8", "onnx-int8"),
    ]
    assert rows[1]["model"] == str(tiny_bert_path) and rows[1]["params"] == rows[0]["params"]
    for row in rows:
        assert KEYS <= set(row)
        assert row["qps_batch32"] > 0 and 0 < row["p50_ms_batch1"] <= row["p95_ms_batch1"]
        assert row["params"] > 0 and row["disk_mb"] > 0 and row["peak_rss_mb"] > 0
        assert row["threads"] == 1 and row["num_questions"] == 3 and row["settings"]["repeats"] == 2
    assert rows[0]["speedup"] == 1.0
    table = out_md.read_text()
    assert "| bert | torch |" in table and "| distilbert-int8 | onnx-int8 |" in table and "threads" in table
    assert "best of 2 passes" in table
    captured = capsys.readouterr()
    assert table.strip() in captured.out
    assert "exporting" in captured.err and "threads pinned to 1" in captured.err
    assert "parity on the first 3 questions of --data" in captured.err  # its own data, not the demo set
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_backend_and_bad_input(tiny_bert_path, distilbert_int8, tiny_squad):
    assert export_backend(tiny_bert_path) is None
    assert export_backend(distilbert_int8) == "onnx-int8"
    settings = InferenceBenchmarkSettings(str(tiny_squad), limit=1)
    assert settings.threads >= 1  # pinned to the CPU count when not given
    with pytest.raises(InputError, match="backend"):
        run_benchmark([str(tiny_bert_path)], settings, backends=["tensorrt"], isolate=False)
    with pytest.raises(InputError, match="not a folder"):
        run_benchmark([str(tiny_squad)], settings, isolate=False)
    with pytest.raises(InputError, match="--batch_size must be >= 1, got 0"):
        InferenceBenchmarkSettings(str(tiny_squad), batch_size=0)
    with pytest.raises(InputError, match="--repeats"):
        InferenceBenchmarkSettings(str(tiny_squad), repeats=0)
    assert main(["benchmark", "inference", "--data", str(tiny_squad)]) == 2


def _rows():
    common = {
        "num_questions": 10,
        "latency_samples": 5,
        "hardware": "test CPU",
        "load_average": None,
        "note": "",
        "disk_mb": 1.0,
        "params": 10,
    }
    common["settings"] = {"data": "d.json", "max_seq_length": 128, "doc_stride": 32, "batch_size": 32}
    return [
        {
            **common,
            "name": "teacher",
            "model": "t",
            "backend": "torch",
            "exact_match": 50.0,
            "f1": 60.0,
            "qps_batch32": 10.0,
            "speedup": 1.0,
            "p50_ms_batch1": 90.0,
            "p95_ms_batch1": 120.0,
            "peak_rss_mb": 900.0,
        },
        {
            **common,
            "name": "student",
            "model": "s",
            "backend": "onnx-int8",
            "exact_match": 48.0,
            "f1": 59.0,
            "qps_batch32": 60.0,
            "speedup": 6.0,
            "p50_ms_batch1": 15.0,
            "p95_ms_batch1": 20.0,
            "peak_rss_mb": 400.0,
            "note": "parity check failed: x",
        },
    ]


def test_markdown_report_and_plot(tmp_path):
    text = markdown_report(_rows())
    assert "| student | onnx-int8 | 48.00 | 59.00 | 60.00 | 6.00 |" in text
    assert "end to end" in text and "test CPU" in text and "parity check failed" in text
    assert plot(_rows(), tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(InputError, match=r"pip install 'distilqa\[plot\]'"):
        plot(_rows(), tmp_path / "p.png")


def test_process_peak_rss_follows_this_process_not_its_parent():
    """200 MB written in a fresh child raise its peak by about 200 MB. A constant, or Linux's ``ru_maxrss``, which
    a child inherits from a parent whose peak is higher (this test process), would not."""
    import subprocess
    import sys

    child = (
        "from distilqa.bench.inference import process_peak_rss_mb as peak\n"
        "before = peak(); data = b'x' * 200_000_000; print(before, peak())"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    before, after = map(float, done.stdout.split())
    assert 180 <= after - before <= 260, (before, after)


def test_a_bf16_row_runs_the_model_in_bf16(monkeypatch, tiny_bert_path, tiny_squad):
    import distilqa.infra.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    settings = InferenceBenchmarkSettings(
        data=str(tiny_squad),
        threads=1,
        latency_samples=2,
        warmup=0,
        max_seq_length=64,
        doc_stride=24,
        max_query_length=20,
    )
    fp32 = measure(tiny_bert_path, "torch", settings)
    bf16 = measure(tiny_bert_path, "torch-bf16", settings)
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    assert bf16["num_questions"] == fp32["num_questions"] == 3


def test_default_backends_offer_bf16_only_where_it_is_native(monkeypatch):
    import distilqa.infra.precision as precision
    from distilqa.bench.inference import default_backends

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert default_backends() == ["torch", "onnx", "onnx-int8"]
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert default_backends() == ["torch", "torch-bf16", "onnx", "onnx-int8"]


def test_cli_defaults_to_the_native_backends_and_refuses_bf16_up_front(
    monkeypatch, tiny_bert_path, tiny_squad, tmp_path, capsys
):
    import distilqa.infra.precision as precision
    from distilqa.cli.benchmark_inference import build_parser

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    options = build_parser().parse(["--models", str(tiny_bert_path), "--data", str(tiny_squad)])
    backends = next(o for o in options if hasattr(o, "backends")).backends
    assert backends == ["torch", "onnx", "onnx-int8"]
    out = tmp_path / "rows.json"
    argv = ["benchmark", "inference", "--models", str(tiny_bert_path), "--data", str(tiny_squad),
            "--backends", "torch", "torch-bf16", "--json", str(out), *WINDOWS]  # fmt: skip
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the CPU line, one error line
    assert last.startswith("distilqa: error: --backends torch-bf16") and "native bf16" in last
    assert not out.exists()
