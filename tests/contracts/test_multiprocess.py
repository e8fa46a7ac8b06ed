"""Data-parallel training and distillation with 2 CPU processes (torchrun, gloo) match one process.

* Evaluation is gathered without duplicated or dropped windows at an uneven split: the eval set has an odd number
  of windows (one question spans three), and the answers and EM/F1 equal a one-process ``distilqa evaluate`` of
  the saved model.
* Loss curve: 2 processes x batch 4 against 1 process x batch 8, same seed. The model has no dropout (each
  process draws its own dropout masks, so with dropout the curves differ by dropout noise) and every training
  window has the same length (the padding-trimming collator cuts each batch to its longest window, and BERT-style
  QA heads put padding positions into the softmax, so other widths would change the loss slightly). What is left
  is the order of float additions (gradients all-reduced as two half-batch means instead of one mean over 8, and
  one thread per process), so the logged losses agree to ``LOSS_RTOL`` = 1e-5 relative (7e-8 measured), not bit for bit.
* Only rank 0 writes the final model, metrics and markers, and prints the summary.
* Distillation: the online teacher runs on each process's own device; with the teacher cache each process
  looks up the rows of its own batches, so cached and online 2-process runs agree (to the cache's float16
  rounding) and the one-process run agrees with both.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from distilqa.cli import main
from distilqa.infra.checkpoints import is_complete
from distilqa.qa.data import SquadExamples, load_examples
from distilqa.qa.features import FeatureParams, build_eval_features

pytestmark = pytest.mark.slow

LOSS_RTOL = 1e-5
CACHE_RTOL = 1e-3  # float16 storage of the teacher's logits, see distilqa.distill.cache
STEPS = 6
COMMON = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16", "--per_device_eval_batch_size", "2",
          "--learning_rate", "1e-3", "--seed", "7", "--data_seed", "11", "--max_steps", str(STEPS), "--logging_steps", "1",
          "--save_steps", str(STEPS), "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true",
          "--dataloader_num_workers", "0"]  # fmt: skip


def row(i: int, context: str, number: str, year: int) -> dict:
    return {
        "id": f"q{i}",
        "context": context,
        "question": f"How many oak trees were planted in year {year}?",
        "answers": {"text": [number], "answer_start": [context.index(f" {number} ") + 1]},
    }


@pytest.fixture(scope="module")
def files(tiny_bert_path, tiny_distilbert_path, tiny_tokenizer, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multiprocess")
    models = {}
    for name, path in (("bert", tiny_bert_path), ("distilbert", tiny_distilbert_path)):
        folder = Path(shutil.copytree(path, root / name))
        config = json.loads((folder / "config.json").read_text())
        for key in (
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "dropout",
            "attention_dropout",
            "qa_dropout",
        ):
            if key in config:
                config[key] = 0.0
        (folder / "config.json").write_text(json.dumps(config))
        models[name] = folder
    candidates = [
        row(
            i,
            f"In year {1900 + i} the village planted {3 + i} oak trees near the mill.",
            str(3 + i),
            1900 + i,
        )
        for i in range(120)
    ]
    lengths = [len(tiny_tokenizer(r["question"], r["context"])["input_ids"]) for r in candidates]
    common = collections.Counter(lengths).most_common(1)[0][0]
    train = [r for r, n in zip(candidates, lengths) if n == common][:40]
    assert len(train) >= 24, "not enough training questions of one length"
    long_context = " ".join(
        f"In year {1800 + k} the village planted {k + 3} oak trees near the old mill." for k in range(12)
    )
    evaluation = [*train[:6], row(99, long_context, "12", 1809)]
    if (
        len(build_eval_features(SquadExamples(evaluation), tiny_tokenizer, FeatureParams(64, 16, 16))) % 2
        == 0
    ):
        evaluation = evaluation[1:]  # an odd number of windows: the two processes get uneven shares
    (root / "train.json").write_text(json.dumps(train))
    (root / "eval.json").write_text(json.dumps(evaluation))
    return {**models, "train": root / "train.json", "eval": root / "eval.json", "root": root}


def command(kind: str, files: dict[str, Path], out: Path, batch: int) -> list[str]:
    if kind == "train":
        head = ["train", "--model_name_or_path", str(files["bert"])]
    else:
        head = ["distill", "--teacher", str(files["bert"]), "--student", str(files["distilbert"])]
        if kind == "distill-cached":
            head += ["--teacher_cache", str(out) + "-cache"]
    return [*head, "--train_file", str(files["train"]), "--eval_file", str(files["eval"]), "--output_dir", str(out),
            "--per_device_train_batch_size", str(batch), *COMMON]  # fmt: skip


def torchrun(argv: list[str]) -> str:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    argv = [*argv, "--ddp_backend", "gloo"]
    done = subprocess.run(
        [*launcher, "-m", "distilqa.cli", *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def losses(out: Path, key: str = "loss") -> list[float]:
    state = json.loads((out / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    return [entry[key] for entry in state["log_history"] if "loss" in entry]


def one_process_evaluation(model: Path, files, tmp_path: Path, capsys) -> tuple[dict, dict]:
    out = tmp_path / f"evaluate-{model.parent.name}"
    argv = ["evaluate", "--model", str(model), "--data", str(files["eval"]), "--max-seq-length", "64",
            "--doc-stride", "16", "--max-query-length", "16", "--output-dir", str(out), "--no-progress"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads((out / "predictions.json").read_text()), json.loads((out / "metrics.json").read_text())


def check_run(out: Path, stdout: str, title: str, files, tmp_path, capsys) -> None:
    """Rank 0 alone wrote the outputs; the gathered evaluation equals a one-process evaluation."""
    assert stdout.count(title) == 1, "the summary must be printed by rank 0 only"
    assert sorted(p.name for p in out.iterdir()) == [
        ".distilqa",  # the run folder's ownership marker
        f"checkpoint-{STEPS}",
        "distilqa_run.json",  # the run's settings, checked by --resume
        "eval_predictions.json",
        "metrics.json",
        "model",
    ]
    checkpoint = out / f"checkpoint-{STEPS}"
    assert is_complete(checkpoint)
    saved = {p.name for p in checkpoint.iterdir()}
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= saved  # each rank saved its RNG state before the marker
    predictions = json.loads((out / "eval_predictions.json").read_text())
    summary = json.loads((out / "metrics.json").read_text())
    expected_predictions, expected = one_process_evaluation(out / "model", files, tmp_path, capsys)
    ids = [r["id"] for r in json.loads(files["eval"].read_text())]
    assert list(predictions) == ids  # every question once, none added
    assert predictions == expected_predictions
    assert summary["metrics"]["eval_exact_match"] == pytest.approx(expected["exact_match"], abs=1e-9)
    assert summary["metrics"]["eval_f1"] == pytest.approx(expected["f1"], abs=1e-9)


def test_eval_windows_are_odd(files, tiny_tokenizer):
    features = build_eval_features(load_examples(files["eval"]), tiny_tokenizer, FeatureParams(64, 16, 16))
    assert len(features) % 2 == 1 and len(features) > len(set(features["example_id"]))


@pytest.mark.parametrize("kind", ["train", "distill"])
def test_two_processes_match_one(kind, files, tmp_path, capsys):
    single, double = tmp_path / "single", tmp_path / "double"
    capsys.readouterr()
    assert main(command(kind, files, single, batch=8)) == 0
    stdout = torchrun(command(kind, files, double, batch=4))
    title = "distilqa: fine-tuned QA model" if kind == "train" else "distilqa: distilled QA student"
    check_run(double, stdout, title, files, tmp_path, capsys)
    one, two = losses(single), losses(double)
    assert len(one) == len(two) == STEPS
    assert two == pytest.approx(one, rel=LOSS_RTOL), f"1 process {one}\n2 processes {two}"
    if kind == "distill":
        # The two terms are averaged over both processes too (rounded to 4 decimals when logged).
        for key in ("loss_soft", "loss_hard"):
            assert losses(double, key) == pytest.approx(losses(single, key), abs=2e-4)
        teacher = [
            json.loads((out / "metrics.json").read_text())["metrics"]["teacher_f1"]
            for out in (single, double)
        ]
        assert teacher[0] == teacher[1]


def test_two_processes_distill_from_the_cache(files, tmp_path, capsys):
    online, cached = tmp_path / "online", tmp_path / "cached"
    torchrun(command("distill", files, online, batch=4))
    stdout = torchrun(command("distill-cached", files, cached, batch=4))
    check_run(cached, stdout, "distilqa: distilled QA student", files, tmp_path, capsys)
    assert stdout.count("Building the teacher cache") == 1  # rank 0 builds, rank 1 then opens it
    assert losses(cached) == pytest.approx(losses(online), rel=CACHE_RTOL)
