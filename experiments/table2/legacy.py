"""The rows the earlier scripts recorded (``docs/results/table2-*.jsonl``), read as settings: the raw files stay.

``benchmarks/table2_cpu.py`` wrote one object per row keyed by a hand-built name (``row``: ``alone/init=teacher/
seed=1``, ``distilled/.../ah=10/aug=4/stage1=2``) with the row's fields beside it; ``benchmarks/table2_sweep.py``
added ``job``, ``phase`` and ``teacher_job`` (the teacher job's name) to the rows of its jobs. What they did not
write down, and how it is filled in:

* the device: the sweep's rows ran on a lent GPU (``cuda``), the others on the CPU;
* the data: the sweep's ``demo-`` phases used the demo's built-in files, everything else the shared SQuAD subset;
* the teacher of a student: the teacher row whose ``job`` is its ``teacher_job``; else the teacher row of the
  phase ``{phase}-teacher``; else (table2_cpu.py's rows) its default teacher, 2 epochs at lr 2e-4;
* ``epochs`` of a row on variants was its passes over the enlarged file: the settings count the same steps in
  passes over the original file (``epochs * train_questions_ratio`` plus the first stage);
* everything else is what both scripts always used (seed 42 for teachers, warm-up 0.1, weight decay 0.01, the
  packaged MiniLM, layers 0, 2, 4 when ``student_layers`` is missing).

A teacher row marked ``reused`` is a teacher trained elsewhere measured again for a job: it is not a row of its
own and is left out.
"""

from __future__ import annotations

from typing import Any

from experiments.table2.settings import resolve, settings_hash

DEMO_DATA = "src/distilqa/demo/data"
STUDENT_FIELDS = ("init", "seed", "student_layers", "learning_rate")
DISTILLED_FIELDS = (
    "temperature", "alpha_ce", "alpha_squad", "alpha_hidden", "alpha_attention", "augment_copies",
    "augment_min_probability", "stage1_epochs", "stage1_alpha_hidden", "stage1_augment_copies",
)  # fmt: skip
METRICS = (
    "exact_match", "f1", "params", "disk_mb", "questions_per_s", "train_s", "train_s_measured",
    "resumed_from_step", "train_questions_ratio",
)  # fmt: skip


def legacy_rows(records: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """``records`` (the objects of one earlier results file, in order) as rows: ``hash``, ``name``,
    ``settings``, their metrics, ``source`` and ``legacy`` (the old ``row`` key and ``job``)."""
    teachers = [r for r in records if r.get("row") == "teacher" and not r.get("reused")]
    by_job = {r["job"]: r for r in teachers if r.get("job")}
    by_phase = {r["phase"]: r for r in teachers if r.get("phase")}
    rows = []
    for record in records:
        if record.get("row") == "teacher" and record.get("reused"):
            continue
        teacher = by_job.get(record.get("teacher_job")) or by_phase.get(f"{record.get('phase')}-teacher")
        if record.get("teacher_job") and teacher is None:
            raise ValueError(
                f"{source}: row {record['row']!r}: its teacher job {record['teacher_job']!r} is not there"
            )
        settings = resolve(legacy_settings(record, teacher))
        name = record["row"].split("/")[0]
        rows.append({
            "hash": settings_hash(settings), "name": name, "settings": settings,
            **{key: record[key] for key in METRICS if key in record},
            "source": source, "legacy": {key: record[key] for key in ("row", "job") if key in record},
        })  # fmt: skip
    return rows


def legacy_settings(record: dict[str, Any], teacher: dict[str, Any] | None) -> dict[str, Any]:
    """The raw settings of one earlier row (see the module docstring); ``teacher`` is its teacher's record."""
    phase = str(record.get("phase", ""))
    raw: dict[str, Any] = {
        "kind": record["kind"],
        "device": "cuda" if "job" in record else "cpu",
        "data": DEMO_DATA if phase.startswith("demo-") else "../shared/data/squad-v1.1-subset",
        **{key: record[key] for key in ("max_seq_length", "doc_stride", "batch_size")},
    }
    if record["kind"] == "teacher":
        return {**raw, "teacher": {"epochs": record["epochs"], "learning_rate": record["learning_rate"]}}
    raw["teacher"] = (
        {"epochs": teacher["epochs"], "learning_rate": teacher["learning_rate"]} if teacher else {}
    )
    raw.update({key: record[key] for key in STUDENT_FIELDS if key in record})
    ratio = record.get("train_questions_ratio")
    epochs = record["epochs"] if not ratio else record["epochs"] * ratio + record.get("stage1_epochs", 0)
    raw["epochs"] = round(epochs, 1)
    if record["kind"] == "distilled":
        raw.update({key: record[key] for key in DISTILLED_FIELDS if key in record})
    return raw


def is_legacy(record: dict[str, Any]) -> bool:
    """Whether ``record`` was written by the earlier scripts (they wrote no ``hash``)."""
    return "hash" not in record and "row" in record
