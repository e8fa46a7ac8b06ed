"""Every bad input, every command: one line on stderr naming the culprit, exit code 2, nothing written.

Each case runs ``distilqa.cli.main`` in process and checks: exit code 2; the last stderr line is the only
``distilqa: error:`` line and holds the expected words (file, field or option); no traceback; stderr is that one
line alone (bad input is caught before any model is loaded) unless the case says otherwise; and no file under the
test folder was created or changed (outputs are checked before any work and written only at the end). Network
access is refused throughout (``socket.connect`` raises, ``HF_HUB_OFFLINE=1``). ``--debug`` re-raises instead.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from distilqa.cli import COMMANDS, main
from distilqa.errors import InputError

TRAIN = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16", "--max_steps", "1",
         "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true"]  # fmt: skip
ROW = {
    "id": "a",
    "context": "Ada wrote it in 1843.",
    "question": "Who wrote it?",
    "answers": {"text": ["Ada"], "answer_start": [0]},
}
ROW_B = {
    "id": "b",
    "context": "Bob ran the mill.",
    "question": "Who ran the mill?",
    "answers": {"text": ["Bob"], "answer_start": [0]},
}
NO_ANSWER = {
    "id": "c",
    "context": "Bob ran the mill.",
    "question": "Who owned it?",
    "answers": {"text": [], "answer_start": []},
}


def without(row: dict, key: str) -> dict:
    return {k: v for k, v in row.items() if k != key}


@pytest.fixture(scope="module")
def models(tiny_bert_path, tiny_distilbert_path, tmp_path_factory) -> dict[str, Path]:
    """The tiny models plus broken ones: a base encoder, truncated weights, another vocabulary, pickle weights."""
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        DistilBertConfig,
        DistilBertForQuestionAnswering,
    )

    root = tmp_path_factory.mktemp("bad-models")
    base = root / "base-encoder"
    BertModel(BertConfig.from_pretrained(tiny_bert_path)).save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_bert_path / name, base / name)
    truncated = Path(shutil.copytree(tiny_bert_path, root / "truncated"))
    weights = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    other = root / "other-vocab"
    other.mkdir()
    (other / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghij"]) + "\n"
    )
    BertTokenizerFast(vocab=str(other / "vocab.txt")).save_pretrained(other)
    config = DistilBertConfig(vocab_size=15, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    DistilBertForQuestionAnswering(config).save_pretrained(other)
    corrupted = Path(shutil.copytree(tiny_bert_path, root / "corrupted"))
    (corrupted / "model.safetensors").write_bytes(b"\x00" * 1000)
    pickled = Path(shutil.copytree(tiny_bert_path, root / "pickled"))
    # Only the name counts: distilqa refuses it without opening it.
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    return {
        "bert": tiny_bert_path, "distilbert": tiny_distilbert_path, "base": base, "truncated": truncated,
        "other": other, "pickled": pickled, "corrupted": corrupted,
    }  # fmt: skip


@dataclass
class Ctx:
    """What a case builds its command line from: input files under ``in/``, the output path ``out``, models."""

    root: Path
    models: dict[str, Path]

    @property
    def out(self) -> str:
        return str(self.root / "out")

    def file(self, name: str, content) -> str:
        path = self.root / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
        return str(path)

    def data(self, rows=None) -> str:
        return self.file("data.json", [ROW, ROW_B] if rows is None else rows)

    def a_file(self) -> str:
        """A regular file: anything under it cannot be created, even by root."""
        return self.file("a-file", "x")

    def m(self, name: str) -> str:
        return str(self.models[name])


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    words: list[str | Callable[[Ctx], str]]
    quiet: bool = True  # stderr is the error line alone
    setup: Callable[[Ctx], None] | None = None
    marks: list = field(default_factory=list)


def evaluate(c: Ctx, data: str | None = None, *extra: str) -> list[str]:
    return [
        "evaluate",
        "--model",
        c.m("bert"),
        "--data",
        data or c.data(),
        "--output-dir",
        c.out,
        "--no-progress",
        *extra,
    ]


def train(c: Ctx, data: str | None = None, *extra: str) -> list[str]:
    return [
        "train",
        "--model_name_or_path",
        c.m("bert"),
        "--train_file",
        data or c.data(),
        "--output_dir",
        c.out,
        *TRAIN,
        *extra,
    ]


def distill(c: Ctx, *extra: str, student: str = "distilbert", teacher: str = "bert") -> list[str]:
    return [
        "distill",
        "--teacher",
        c.m(teacher),
        "--student",
        c.m(student),
        "--train_file",
        c.data(),
        "--output_dir",
        c.out,
        *TRAIN,
        *extra,
    ]


def augment(c: Ctx, *extra: str, data: str | None = None) -> list[str]:
    return [
        "augment",
        "--teacher",
        c.m("bert"),
        "--data",
        data or c.data(),
        "--no-progress",
        *extra,
        "--output",
        c.out + ".json",
    ]


def predict(c: Ctx, *extra: str) -> list[str]:
    return [
        "predict",
        "--model",
        c.m("bert"),
        "--max-seq-length",
        "64",
        "--doc-stride",
        "16",
        "--max-query-length",
        "16",
        *extra,
    ]


def score(c: Ctx, predictions, *extra: str, rows=None) -> list[str]:
    return ["score", c.data(rows), c.file("pred.json", predictions), *extra]


def init_student(c: Ctx, *extra: str, teacher: str = "bert") -> list[str]:
    return ["init-student", "--teacher", c.m(teacher), "--output", c.out, *extra]


def existing_output(c: Ctx) -> None:
    """An earlier evaluate output folder (with distilqa's marker): a failed run leaves its files as they were."""
    from distilqa.infra.ownership import EVALUATE, claim_folder

    claim_folder(c.root / "out", EVALUATE)
    (c.root / "out" / "predictions.json").write_text('{"a": "old"}')


LONG_QUESTION = "who " * 300 + "wrote it?"

CASES = [
    # -- data files (evaluate; the same loader serves every command) ------------------------------------------
    Case("not-json", lambda c: evaluate(c, c.file("bad.json", "{nope")), ["bad.json", "not valid JSON"]),
    Case("not-utf8", lambda c: evaluate(c, c.file("bad.json", b'[{"id": "caf\xe9"}]')), ["bad.json", "not UTF-8"]),
    Case("wrong-schema", lambda c: evaluate(c, c.file("bad.json", {"hello": 1})), ["bad.json", "unknown schema"]),
    Case("row-not-object", lambda c: evaluate(c, c.data([1, 2])), ["data.json", "row 0 is not an object"]),
    Case("missing-context", lambda c: evaluate(c, c.data([without(ROW, "context")])), ["data.json", "lacks field(s) context"]),
    Case("empty-context", lambda c: evaluate(c, c.data([{**ROW, "context": "  "}])), ["data.json", "'a'", "empty 'context'"]),
    Case("missing-question", lambda c: evaluate(c, c.data([without(ROW, "question")])), ["lacks field(s) question"]),
    Case("empty-question", lambda c: evaluate(c, c.data([{**ROW, "question": ""}])), ["'a'", "empty 'question'"]),
    Case("missing-answers", lambda c: evaluate(c, c.data([without(ROW, "answers")])), ["lacks field(s) answers"]),
    Case("answers-wrong-type", lambda c: evaluate(c, c.data([{**ROW, "answers": "Ada"}])), ["'answers' must be"]),
    Case("empty-answer-text", lambda c: evaluate(c, c.data([{**ROW, "answers": {"text": [""], "answer_start": [0]}}])), ["'a'", "empty answer text"]),
    Case("missing-id", lambda c: evaluate(c, c.data([without(ROW, "id")])), ["lacks field(s) id"]),
    Case("empty-id", lambda c: evaluate(c, c.data([{**ROW, "id": ""}])), ["missing or empty 'id'"]),
    Case("duplicate-ids", lambda c: evaluate(c, c.data([ROW, {**ROW_B, "id": "a"}])), ["data.json", "duplicate question id 'a'"]),
    Case("empty-dataset", lambda c: evaluate(c, c.data([])), ["data.json", "holds no questions"]),
    Case("data-missing", lambda c: evaluate(c, str(c.root / "in" / "nope.json")), ["nope.json", "does not exist"]),
    Case("existing-output-kept", lambda c: evaluate(c, c.file("bad.json", "{nope")), ["bad.json"], setup=existing_output),
    # -- windowing and post-processing options --------------------------------------------------------------------
    Case("doc-stride-too-large", lambda c: evaluate(c, None, "--doc-stride", "500"), ["doc_stride 500", "--doc_stride"]),
    Case("question-longer-than-window", lambda c: evaluate(c, c.data([{**ROW, "question": LONG_QUESTION}]), "--max-seq-length", "64", "--doc-stride", "16", "--max-query-length", "64"), ["max_seq_length 64", "--max_query_length"]),  # fmt: skip
    Case("max-seq-length-too-long", lambda c: evaluate(c, None, "--max-seq-length", "1024"), ["model_max_length 512", "--max_seq_length"]),
    Case("n-best-zero", lambda c: evaluate(c, None, "--n-best", "0"), ["n_best", "--n_best"]),
    Case("max-answer-length-zero", lambda c: evaluate(c, None, "--max-answer-length", "-1"), ["max_answer_length", "--max_answer_length"]),
    Case("batch-size-zero", lambda c: evaluate(c, None, "--batch-size", "0"), ["--batch_size"]),
    # -- models ----------------------------------------------------------------------------------------------------
    Case("model-missing", lambda c: ["evaluate", "--model", str(c.root / "no-model"), "--data", c.data(), "--output-dir", c.out], ["no-model", "does not exist"]),  # fmt: skip
    Case("hub-name-offline", lambda c: ["evaluate", "--model", "someone/not-cached-model", "--data", c.data(), "--output-dir", c.out], ["someone/not-cached-model", "offline mode"]),  # fmt: skip
    Case("not-a-qa-model", lambda c: ["evaluate", "--model", c.m("base"), "--data", c.data(), "--output-dir", c.out], ["base-encoder", "not a question-answering model"]),  # fmt: skip
    Case("truncated-safetensors", lambda c: ["evaluate", "--model", c.m("truncated"), "--data", c.data(), "--output-dir", c.out], ["truncated", "corrupted or truncated"]),  # fmt: skip
    Case("corrupted-safetensors", lambda c: ["evaluate", "--model", c.m("corrupted"), "--data", c.data(), "--output-dir", c.out], ["corrupted", "corrupted or truncated"]),  # fmt: skip
    Case("pickle-weights-only", lambda c: ["evaluate", "--model", c.m("pickled"), "--data", c.data(), "--output-dir", c.out], ["pickled", "only pickle weights", "safetensors"]),  # fmt: skip
    Case("different-tokenizers-required-same", lambda c: distill(c, "--require_same_tokenizer", "true", student="other"), ["other-vocab", "do not share a tokenizer", "--require_same_tokenizer"]),  # fmt: skip
    Case("teacher-not-qa", lambda c: distill(c, teacher="base"), ["base-encoder", "not a question-answering model"]),
    # -- outputs that cannot be written (a path under a regular file stops root too) -------------------------
    Case("evaluate-output-under-file", lambda c: [*evaluate(c)[:-3], "--output-dir", c.a_file() + "/x"], ["--output_dir", "a-file", "is a file"]),  # fmt: skip
    Case("evaluate-output-is-file", lambda c: [*evaluate(c)[:-3], "--output-dir", c.a_file()], ["--output_dir", "a-file", "is a file"]),  # fmt: skip
    Case("predict-output-under-file", lambda c: predict(c, "--question", "Who?", "--context", "Ada.", "--output", c.a_file() + "/x.json"), ["--output", "a-file"]),  # fmt: skip
    Case("train-output-under-file", lambda c: [*train(c), "--output_dir", c.a_file() + "/run"], ["output_dir", "a-file"]),
    Case("distill-cache-under-file", lambda c: distill(c, "--teacher_cache", c.a_file() + "/cache"), ["teacher_cache", "a-file"]),
    Case("init-student-output-under-file", lambda c: [*init_student(c)[:-2], "--output", c.a_file() + "/s"], ["--output", "a-file"]),
    # -- training data, options and config files ----------------------------------------------------------------
    Case("answer-start-outside-context", lambda c: train(c, c.data([{**ROW, "answers": {"text": ["Ada"], "answer_start": [99]}}])), ["data.json", "answer_start", "for 1 question(s): a"]),  # fmt: skip
    Case("answer-start-mismatch", lambda c: train(c, c.data([ROW, {**ROW_B, "answers": {"text": ["Bob"], "answer_start": [3]}}])), ["answer_start does not point", ": b"]),  # fmt: skip
    Case("train-empty-dataset", lambda c: train(c, c.data([])), ["holds no questions"]),
    Case("train-model-missing", lambda c: [*train(c), "--model_name_or_path", str(c.root / "no-model")], ["no-model", "does not exist"]),
    Case("train-doc-stride", lambda c: train(c, None, "--doc_stride", "60"), ["doc_stride 60"]),
    Case("train-n-best-zero", lambda c: train(c, None, "--n_best", "0"), ["n_best", "--n_best"]),
    Case("train-max-answer-length-zero", lambda c: train(c, None, "--max_answer_length", "0"), ["--max_answer_length"]),
    Case("train-eval-without-data", lambda c: train(c, None, "--eval_strategy", "steps"), ["--eval_file"]),
    Case("train-unknown-option", lambda c: train(c, None, "--lerning_rate", "1"), ["distilqa train", "--lerning_rate"]),
    Case("train-wrong-type", lambda c: train(c, None, "--learning_rate", "fast"), ["--learning_rate", "invalid float value"]),
    Case("config-unknown-key", lambda c: ["train", c.file("run.yaml", "lerning_rate: 1\n"), *train(c)[1:]], ["run.yaml", "unknown key(s) lerning_rate"]),  # fmt: skip
    Case("config-wrong-type", lambda c: ["train", c.file("run.yaml", "num_train_epochs: many\n"), *train(c)[1:]], ["run.yaml", "num_train_epochs", "invalid float"]),  # fmt: skip
    Case("config-not-a-mapping", lambda c: ["train", c.file("run.yaml", "- 1\n- 2\n"), *train(c)[1:]], ["run.yaml", "mapping"]),
    Case("config-not-yaml", lambda c: ["train", c.file("run.yaml", "a: [1\n"), *train(c)[1:]], ["run.yaml", "not valid YAML"]),
    Case("config-missing", lambda c: ["train", str(c.root / "in" / "none.yaml")], ["none.yaml", "does not exist"]),
    Case("distill-temperature", lambda c: distill(c, "--temperature", "0"), ["temperature", "--temperature"]),
    Case("distill-attention-with-cache", lambda c: distill(c, "--alpha_attention", "1", "--teacher_cache", str(c.root / "cache")), ["alpha_attention", "drop --teacher_cache"]),  # fmt: skip
    Case("distill-attention-heads", lambda c: distill(c, "--alpha_attention", "1"), ["--attention_relation_heads 12", "hidden size 32"]),
    # -- predict ---------------------------------------------------------------------------------------------------
    Case("predict-no-context", lambda c: predict(c, "--question", "Who?"), ["--question", "--context"]),
    Case("predict-two-contexts", lambda c: predict(c, "--question", "Who?", "--context", "x", "--context-file", "y"), ["--context_file", "not allowed"]),  # fmt: skip
    Case("predict-input-not-json", lambda c: predict(c, "--input", c.file("q.jsonl", "{nope\n")), ["q.jsonl:1", "not valid JSON"]),
    Case("predict-input-fields", lambda c: predict(c, "--input", c.file("q.jsonl", '{"question": "Who?"}\n')), ["q.jsonl:1", "'context'"]),
    Case("predict-context-not-utf8", lambda c: predict(c, "--question", "Who?", "--context-file", c.file("ctx.txt", b"caf\xe9")), ["ctx.txt", "not UTF-8"]),  # fmt: skip
    # -- score: agrees with the official scripts on what is scored; refuses what they cannot read ---------------
    Case("predictions-not-object", lambda c: score(c, ["Ada"]), ["pred.json", "holds an array"]),
    Case("predictions-not-strings", lambda c: score(c, {"a": 1}), ["pred.json", "'a'", "must be a string"]),
    Case("predictions-not-json", lambda c: score(c, "{nope"), ["pred.json", "not valid JSON"]),
    Case("predictions-for-other-data", lambda c: score(c, {"zz": "x"}), ["pred.json", "no prediction for any"]),
    Case("na-probs-mismatch", lambda c: score(c, {"a": "Ada", "c": ""}, "--na-prob-file", c.file("na.json", {"a": 0.1}), rows=[ROW, NO_ANSWER]), ["na.json", "no probability for 1", "'c'"]),  # fmt: skip
    Case("na-probs-not-object", lambda c: score(c, {"a": "Ada"}, "--na-prob-file", c.file("na.json", [0.5]), rows=[ROW, NO_ANSWER]), ["na.json", "holds an array"]),  # fmt: skip
    Case("na-probs-on-v1-data", lambda c: score(c, {"a": "Ada"}, "--na-prob-file", c.file("na.json", {"a": 0.5})), ["--na_prob_file", "SQuAD 2.0 data only"]),  # fmt: skip
    # -- init-student ------------------------------------------------------------------------------------------------
    Case("init-student-bad-layers", lambda c: init_student(c, "--layers", "0,x"), ["--layers", "0,x"]),
    Case("init-student-layer-out-of-range", lambda c: init_student(c, "--layers", "0,7"), ["--layers 0,7", "out of range"]),
    Case("init-student-teacher-missing", lambda c: ["init-student", "--teacher", str(c.root / "none"), "--output", c.out], ["none", "does not exist"]),  # fmt: skip
    Case("init-student-truncated-teacher", lambda c: init_student(c, "--layers", "0", teacher="truncated"), ["truncated", "corrupted or truncated"]),  # fmt: skip
    # -- usage errors: one line, not the usage dump (every command: tests/cli/test_errors.py) ----------------------
    Case("augment-copies-zero", lambda c: augment(c, "--copies", "0"), ["--copies", ">= 1"]),
    Case("augment-replace-prob", lambda c: augment(c, "--replace-prob", "1.5"), ["--replace_prob", "(0, 1]"]),
    Case("augment-output-is-folder", lambda c: [*augment(c)[:-2], "--output", str(c.root)], ["--output", "is a folder"]),
    Case("augment-teacher-missing", lambda c: ["augment", "--teacher", str(c.root / "no-model"), "--data", c.data(), "--output", c.out + ".json"], ["no-model", "does not exist"]),  # fmt: skip
    Case("augment-bad-offsets", lambda c: augment(c, data=c.data([{**ROW, "answers": {"text": ["Ada"], "answer_start": [3]}}])), ["data.json", "answer_start"]),  # fmt: skip
    Case("evaluate-unknown-option", lambda c: [*evaluate(c), "--bogus"], ["distilqa evaluate: error: unrecognized arguments: --bogus"]),
    Case("evaluate-missing-required", lambda c: ["evaluate", "--data", c.data()], ["distilqa evaluate", "--model"]),
    Case("evaluate-bad-int", lambda c: [*evaluate(c), "--limit", "x"], ["--limit", "invalid int value"]),
    Case("score-missing-argument", lambda c: ["score", c.data()], ["distilqa score", "predictions"]),
    Case("predict-unknown-option", lambda c: predict(c, "--questoin", "x"), ["distilqa predict", "--questoin"]),
    Case("init-student-bad-int", lambda c: init_student(c, "--num-layers", "two"), ["--num_layers", "invalid int value"]),
    Case("init-student-vocab-from-missing", lambda c: init_student(c, "--vocab-from", str(c.root / "no.json")), ["--vocab_from", "no.json", "does not exist"]),
    Case("init-student-vocab-from-not-squad", lambda c: init_student(c, "--vocab-from", c.file("v.json", {"a": 1})), ["v.json", "unknown schema"]),
    Case("unknown-command", lambda c: ["evalute"], ["unknown command 'evalute'"]),
    Case("unknown-benchmark", lambda c: ["benchmark", "speed"], ["unknown benchmark 'speed'"]),
]  # fmt: skip


# "distilqa: error: ..." for bad input, "distilqa <command>: error: ..." for a malformed command line.
ERROR_LINE = re.compile(r"^distilqa( [a-z-]+)*: error: ")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1 (also for the already imported hub library) and no socket may connect."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(self, address, *args):
        raise AssertionError(f"network access attempted: connect({address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line_and_writes_nothing(case: Case, models, tmp_path, capsys, offline):
    ctx = Ctx(tmp_path, models)
    argv = case.argv(ctx)
    if case.setup:
        case.setup(ctx)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert lines and ERROR_LINE.match(lines[-1]), err
    assert sum(bool(ERROR_LINE.match(line)) for line in lines) == 1, err
    if case.quiet:
        assert len(lines) == 1, f"noise before the error:\n{err}"
    for word in case.words:
        assert word in lines[-1], f"{word!r} not in: {lines[-1]}"
    assert snapshot(tmp_path) == before, "the failed command created or changed files"


# A cheap input error per command; with --debug (anywhere on the line) the exception propagates.
DEBUG_CASES = {
    "train": lambda c: train(c, c.data([])),
    "distill": lambda c: distill(c, "--require_same_tokenizer", "true", student="other"),
    "augment": lambda c: augment(c, "--copies", "0"),
    "cache-teacher": lambda c: ["cache-teacher", "--teacher", str(c.root / "none"), "--train_file", c.data(), "--output", c.out],
    "init-student": lambda c: init_student(c, "--layers", "0,9"),
    "evaluate": lambda c: evaluate(c, c.data([])),
    "predict": lambda c: predict(c, "--question", "Who?"),
    "score": lambda c: score(c, ["Ada"]),
    "export": lambda c: ["export", "--model", str(c.root / "none"), "--output", c.out],
    "serve": lambda c: ["serve", str(c.root / "none"), "--port", "0"],
    "benchmark": lambda c: ["benchmark", "speed"],
    "demo": lambda c: ["demo", "--output", c.a_file() + "/report"],
}  # fmt: skip


def test_every_command_has_a_debug_case():
    assert set(DEBUG_CASES) == set(COMMANDS)


@pytest.mark.parametrize("command", list(DEBUG_CASES))
def test_debug_reraises(command, models, tmp_path, capsys, offline):
    argv = DEBUG_CASES[command](Ctx(tmp_path, models))
    with pytest.raises(InputError):
        main(["--debug", *argv])
    assert ": error:" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "predict", "score", "init-student", "train"])
def test_help_still_works(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_score_scores_missing_as_zero_and_ignores_unknown_ids_with_warnings(tmp_path, capsys):
    """What the official v1.1 script does with a partial file (it prints to stderr per missing question)."""
    ctx = Ctx(tmp_path, {})
    assert main(score(ctx, {"a": "Ada", "zz": "x", "yy": "y"})) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"exact_match": 50.0, "f1": 50.0}
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(w.startswith("distilqa: warning: ") for w in warnings)
    assert "1 of 2 questions have no prediction" in warnings[0] and "score 0" in warnings[0]
    assert "ignored 2 prediction(s)" in warnings[1]
