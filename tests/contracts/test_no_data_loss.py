"""Nothing of the user's is ever deleted or overwritten: every command, every output at risk.

Each case puts a ``precious.txt`` in the folder at risk (a folder the user made, the teacher's, the student's, a
model folder inside a run) or points an output at an input file, runs ``distilqa.cli.main`` in process and
checks: exit code 2; stderr is one ``distilqa: error:`` line naming the output and the reason; no file under the
test folder was created, changed or removed (so ``precious.txt`` and every input survive). The refusals come
before any model is loaded. The last tests check the other side: distilqa's own outputs are still replaced.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import DEMO_DATA
from distilqa.cli import main
from distilqa.infra.ownership import EVALUATE, MODEL, RUN, claim_folder, read_marker, write_marker

TRAIN = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16", "--max_steps", "1",
         "--per_device_train_batch_size", "2", "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true"]  # fmt: skip
PRECIOUS = "precious.txt"


@dataclass
class Ctx:
    """The test folder: a teacher and a student (copies of the tiny models, each with a precious.txt), the demo
    training file, a JSONL question file, and helpers for folders at risk."""

    root: Path
    bert: Path
    distilbert: Path

    def model(self, source: Path, where: str) -> str:
        folder = Path(shutil.copytree(source, self.root / where))
        (folder / PRECIOUS).write_text("the user's notes")
        return str(folder)

    @property
    def teacher(self) -> str:
        return str(self.root / "teacher")

    @property
    def student(self) -> str:
        return str(self.root / "student")

    @property
    def data(self) -> str:
        return str(self.root / "train.json")

    @property
    def questions(self) -> str:
        return str(self.root / "questions.jsonl")

    def user_folder(self, name: str) -> str:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PRECIOUS).write_text("the user's")
        return str(folder)

    def path(self, name: str) -> str:
        return str(self.root / name)


def distill(c: Ctx, *extra: str, teacher: str | None = None, output_dir: str | None = None) -> list[str]:
    return ["distill", "--teacher", teacher or c.teacher, "--student", c.student, "--train_file", c.data,
            "--output_dir", output_dir or c.path("out"), *TRAIN, *extra]  # fmt: skip


def train(c: Ctx, output_dir: str, *extra: str, model: str | None = None) -> list[str]:
    return ["train", "--model_name_or_path", model or c.teacher, "--train_file", c.data, "--output_dir", output_dir,
            *TRAIN, *extra]  # fmt: skip


def cache_teacher(c: Ctx, output: str, *extra: str) -> list[str]:
    return [
        "cache-teacher",
        "--teacher",
        c.teacher,
        "--train_file",
        c.data,
        "--output",
        output,
        *TRAIN,
        *extra,
    ]


def init_student(c: Ctx, output: str) -> list[str]:
    return ["init-student", "--teacher", c.teacher, "--output", output, "--force"]


def evaluate(c: Ctx, output_dir: str, model: str | None = None) -> list[str]:
    return ["evaluate", "--model", model or c.teacher, "--data", c.data, "--output-dir", output_dir, "--no-progress",
            "--max-seq-length", "64", "--doc-stride", "16", "--max-query-length", "16", "--limit", "2"]  # fmt: skip


def a_run_with_a_user_model(c: Ctx) -> str:
    """A train run folder distilqa made, whose model/ someone replaced with their own folder."""
    run = claim_folder(c.root / "run", RUN)
    c.user_folder("run/model")
    return str(run)


def a_run_with_a_foreign_checkpoint(c: Ctx) -> str:
    run = claim_folder(c.root / "run", RUN)
    c.user_folder("run/checkpoint-100")
    return str(run)


def a_model_folder(c: Ctx) -> str:
    """distilqa's model folder (another kind than the command writes)."""
    folder = Path(shutil.copytree(c.bert, c.root / "made" / "model"))
    write_marker(folder, MODEL)
    return str(folder)


def link_to_teacher(c: Ctx) -> str:
    (c.root / "link").symlink_to(c.root / "teacher")
    return c.path("link")


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    words: list[str]


CASES = [
    # -- distill: the teacher cache and the output folder ----------------------------------------------------
    Case(
        "distill-cache-is-a-user-folder",
        lambda c: distill(c, "--teacher_cache", c.user_folder("runs")),
        ["teacher_cache", "runs", "did not make", PRECIOUS],
    ),  # fmt: skip
    Case(
        "distill-cache-is-the-train-file",
        lambda c: distill(c, "--teacher_cache", c.data),
        ["teacher_cache", "train.json", "is a file"],
    ),  # fmt: skip
    Case(
        "distill-cache-is-the-teacher",
        lambda c: distill(c, "--teacher_cache", c.teacher),
        ["teacher_cache", "is the teacher folder"],
    ),  # fmt: skip
    Case(
        "distill-cache-inside-the-student",
        lambda c: distill(c, "--teacher_cache", c.student + "/cache"),
        ["teacher_cache", "inside the student folder"],
    ),  # fmt: skip
    Case(
        "distill-output-dir-holds-the-teacher",
        lambda c: distill(c, teacher=c.model(c.bert, "RUN/model"), output_dir=c.path("RUN")),
        ["output_dir", "holds the teacher"],
    ),  # fmt: skip
    Case(
        "distill-output-dir-is-the-student",
        lambda c: distill(c, output_dir=c.student),
        ["output_dir", "is the student folder"],
    ),  # fmt: skip
    Case(
        "distill-output-dir-is-a-user-folder",
        lambda c: distill(c, output_dir=c.user_folder("mine")),
        ["output_dir", "mine", "did not make"],
    ),  # fmt: skip
    # -- cache-teacher --------------------------------------------------------------------------------------
    Case(
        "cache-teacher-output-is-a-user-folder",
        lambda c: cache_teacher(c, c.user_folder("runs")),
        ["--output", "runs", "did not make"],
    ),  # fmt: skip
    Case(
        "cache-teacher-force-output-is-a-user-folder",
        lambda c: cache_teacher(c, c.user_folder("runs"), "--force"),
        ["--output", "did not make", "with or without --force"],
    ),  # fmt: skip
    Case(
        "cache-teacher-output-is-the-teacher",
        lambda c: cache_teacher(c, c.teacher),
        ["--output", "is the teacher folder"],
    ),  # fmt: skip
    Case(
        "cache-teacher-output-is-a-link-to-the-teacher",
        lambda c: cache_teacher(c, link_to_teacher(c), "--force"),
        ["--output", "is the teacher folder"],
    ),  # fmt: skip
    Case(
        "cache-teacher-output-inside-the-teacher",
        lambda c: cache_teacher(c, c.teacher + "/cache"),
        ["inside the teacher folder"],
    ),  # fmt: skip
    Case(
        "cache-teacher-output-is-the-train-file",
        lambda c: cache_teacher(c, c.data),
        ["--output", "train.json", "is a file"],
    ),  # fmt: skip
    Case(
        "cache-teacher-output-is-a-model-folder",
        lambda c: cache_teacher(c, a_model_folder(c), "--force"),
        ["model folder, not a teacher cache"],
    ),  # fmt: skip
    # -- train ----------------------------------------------------------------------------------------------
    Case(
        "train-existing-user-model-folder",
        lambda c: train(c, a_run_with_a_user_model(c)),
        ["output_dir", "run/model", "did not make"],
    ),  # fmt: skip
    Case(
        "train-output-dir-holds-the-model",
        lambda c: train(c, c.path("RUN"), model=c.model(c.bert, "RUN/model")),
        ["output_dir", "holds the model"],
    ),  # fmt: skip
    Case(
        "train-output-dir-is-the-model", lambda c: train(c, c.teacher), ["output_dir", "is the model folder"]
    ),
    Case("train-output-dir-is-the-train-file", lambda c: train(c, c.data), ["output_dir", "is a file"]),
    Case(
        "train-output-dir-is-a-user-folder",
        lambda c: train(c, c.user_folder("mine")),
        ["output_dir", "did not make"],
    ),  # fmt: skip
    Case(
        "train-rotation-and-a-foreign-checkpoint",
        lambda c: train(
            c,
            a_run_with_a_foreign_checkpoint(c),
            "--save_strategy",
            "steps",
            "--save_steps",
            "1",
            "--save_total_limit",
            "1",
        ),
        ["checkpoint-100", "distilqa did not write"],
    ),  # fmt: skip
    # -- init-student --force -------------------------------------------------------------------------------
    Case(
        "init-student-output-is-the-teacher",
        lambda c: init_student(c, c.teacher),
        ["--output", "is the teacher folder"],
    ),  # fmt: skip
    Case(
        "init-student-output-is-a-link-to-the-teacher",
        lambda c: init_student(c, link_to_teacher(c)),
        ["is the teacher folder"],
    ),  # fmt: skip
    Case(
        "init-student-output-inside-the-teacher",
        lambda c: init_student(c, c.teacher + "/student"),
        ["inside the teacher folder"],
    ),  # fmt: skip
    Case(
        "init-student-output-holds-the-teacher", lambda c: init_student(c, str(c.root)), ["holds the teacher"]
    ),
    Case(
        "init-student-output-is-a-user-folder",
        lambda c: init_student(c, c.user_folder("mine")),
        ["--output", "did not make"],
    ),  # fmt: skip
    Case(
        "init-student-output-is-a-model-folder",
        lambda c: init_student(c, a_model_folder(c)),
        ["model folder, not an init-student folder"],
    ),  # fmt: skip
    # -- augment, predict: a file output is never an input ------------------------------------------------
    Case(
        "augment-output-is-the-data",
        lambda c: ["augment", "--teacher", c.teacher, "--data", c.data, "--output", c.data],
        ["--output", "is the --data file"],
    ),  # fmt: skip
    Case(
        "augment-output-inside-the-teacher",
        lambda c: ["augment", "--teacher", c.teacher, "--data", c.data, "--output", c.teacher + "/aug.json"],
        ["inside the teacher folder"],
    ),  # fmt: skip
    Case(
        "predict-output-is-the-input",
        lambda c: ["predict", "--model", c.teacher, "--input", c.questions, "--output", c.questions],
        ["--output", "is the --input file"],
    ),  # fmt: skip
    Case(
        "predict-output-is-the-context-file",
        lambda c: [
            "predict",
            "--model",
            c.teacher,
            "--question",
            "Who?",
            "--context-file",
            c.data,
            "--output",
            c.data,
        ],
        ["--output", "is the --context_file"],
    ),  # fmt: skip
    # -- evaluate -------------------------------------------------------------------------------------------
    Case(
        "evaluate-output-is-a-user-folder",
        lambda c: evaluate(c, c.user_folder("mine")),
        ["--output_dir", "did not make"],
    ),  # fmt: skip
    Case(
        "evaluate-output-is-the-model",
        lambda c: evaluate(c, c.teacher),
        ["--output_dir", "is the model folder"],
    ),
    Case(
        "evaluate-output-is-a-train-run",
        lambda c: evaluate(c, str(claim_folder(c.root / "run", RUN))),
        ["run folder, not an evaluate output folder"],
    ),  # fmt: skip
    # -- export ---------------------------------------------------------------------------------------------
    Case(
        "export-output-is-a-user-folder",
        lambda c: ["export", "--model", c.teacher, "--output", c.user_folder("onnx")],
        ["--output", "did not make"],
    ),  # fmt: skip
    Case(
        "export-output-is-the-model",
        lambda c: ["export", "--model", c.teacher, "--output", c.teacher],
        ["--output", "is the model folder"],
    ),  # fmt: skip
    Case(
        "export-output-inside-the-model",
        lambda c: ["export", "--model", c.teacher, "--output", c.teacher + "/onnx"],
        ["inside the model folder"],
    ),  # fmt: skip
    # -- demo -----------------------------------------------------------------------------------------------
    Case(
        "demo-report-is-a-user-folder",
        lambda c: ["demo", "--quick", "--output", c.user_folder("report")],
        ["--output", "report", "did not make"],
    ),  # fmt: skip
]


@pytest.fixture
def ctx(tmp_path, tiny_bert_path, tiny_distilbert_path) -> Ctx:
    c = Ctx(tmp_path, tiny_bert_path, tiny_distilbert_path)
    c.model(tiny_bert_path, "teacher")
    c.model(tiny_distilbert_path, "student")
    shutil.copy(DEMO_DATA / "train.json", c.data)
    Path(c.questions).write_text(json.dumps({"question": "Who?", "context": "Ada wrote it."}) + "\n")
    return c


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p.relative_to(root)): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            p.read_bytes() if p.is_file() else b"",
        )
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_nothing_of_the_users_is_lost(case: Case, ctx: Ctx, capsys):
    argv = case.argv(ctx)
    before = snapshot(ctx.root)
    assert sum(name.endswith(PRECIOUS) for name in before) >= 2  # the teacher's and the student's, at least
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("distilqa: error: "), err
    for word in case.words:
        assert word in lines[0], f"{word!r} not in: {lines[0]}"
    assert snapshot(ctx.root) == before, "the refused command created, changed or removed files"


# -- distilqa's own outputs are still replaced ---------------------------------------------------------------


def test_init_student_force_replaces_its_own_folder_only(ctx, capsys):
    out = ctx.path("student-init")
    assert main(init_student(ctx, out)) == 0
    assert read_marker(out)["kind"] == "init-student" and "model.safetensors" in read_marker(out)["files"]
    assert main(init_student(ctx, out)) == 0  # --force: its own earlier folder
    (Path(out) / PRECIOUS).write_text("added later")
    capsys.readouterr()
    assert main(init_student(ctx, out)) == 2
    assert "holds files distilqa did not write (precious.txt)" in capsys.readouterr().err
    assert (Path(out) / PRECIOUS).read_text() == "added later"


def test_evaluate_writes_into_its_own_folder_again(ctx, capsys):
    out = ctx.path("eval")
    for _ in range(2):
        assert main(evaluate(ctx, out)) == 0
    assert read_marker(out)["kind"] == EVALUATE
    assert {p.name for p in Path(out).iterdir()} == {".distilqa", "predictions.json", "nbest_predictions.json", "metrics.json"}  # fmt: skip


def test_cache_teacher_rebuilds_its_own_cache_with_force(ctx, capsys):
    out = ctx.path("cache")
    assert main(cache_teacher(ctx, out, "--max_train_samples", "4")) == 0
    first = read_marker(out)
    assert first["kind"] == "teacher-cache" and set(first["files"]) == {"logits.npy", "manifest.json"}
    assert main(cache_teacher(ctx, out, "--max_train_samples", "4", "--force")) == 0
    assert "--teacher_cache" in capsys.readouterr().out
    assert (
        sorted(p.name for p in ctx.root.iterdir() if p.name.startswith(".")) == []
    )  # no temporary leftovers


def test_train_twice_into_its_own_run_folder_replaces_its_model(ctx):
    out = ctx.path("run")
    argv = train(ctx, out, "--max_train_samples", "4", "--save_strategy", "steps", "--save_steps", "1")
    assert main(argv) == 0
    assert read_marker(out)["kind"] == RUN and read_marker(Path(out) / "model")["kind"] == MODEL
    assert read_marker(Path(out) / "checkpoint-1")["kind"] == "checkpoint"
    assert main(argv) == 0
    assert sorted(p.name for p in Path(out).iterdir()) == [
        ".distilqa",
        "checkpoint-1",
        "distilqa_run.json",
        "metrics.json",
        "model",
    ]
