"""experiments/table2/settings.py: a row's resolved settings, the hash that names it, and how a study expands."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.table2.settings import (
    StudyError,
    flatten,
    load_study,
    parse_assignments,
    plan,
    resolve,
    settings_hash,
)

pytestmark = pytest.mark.experiments
STUDIES = Path(__file__).resolve().parents[2] / "experiments" / "table2" / "studies"

# a distilled row where every setting applies: two stages, variants in both, the attention term
EVERYTHING = {
    "kind": "distilled", "alpha_hidden": 10, "alpha_attention": 1, "augment_copies": 4,
    "augment_min_probability": 0.5, "stage1_epochs": 2, "stage1_augment_copies": 4, "student_vocab": "train",
    "student_vocab_size": 8000,
}  # fmt: skip
# another valid value for each of its settings
OTHER = {
    "data": "src/distilqa/demo/data", "limit_train": 24, "limit_dev": 16, "max_seq_length": 384, "doc_stride": 128,
    "batch_size": 32, "warmup": 0.0, "weight_decay": 0.0, "device": "cuda", "init": "pretrained",
    "student_layers": [1, 3, 5], "epochs": 5, "learning_rate": 2e-4, "seed": 2, "temperature": 4, "alpha_ce": 0.9,
    "alpha_squad": 0.1, "alpha_hidden": 1, "alpha_attention": 0.2, "attention_relation_heads": 6,
    "augment_copies": 8, "augment_min_probability": 0.3, "stage1_epochs": 3, "stage1_alpha_hidden": 1,
    "stage1_augment_copies": 8, "teacher.model": "/elsewhere", "teacher.epochs": 5, "teacher.learning_rate": 1e-4,
    "teacher.seed": 1, "student_vocab_size": 5000,
}  # fmt: skip


def test_the_hash_is_stable():
    """The hash names a row in every results file: the same settings give it on any machine, run or order."""
    assert settings_hash(resolve({"kind": "alone"})) == "fc1ed9036a82"
    assert settings_hash(resolve({"kind": "teacher"})) == "354197abe9f7"
    assert settings_hash({"b": 1, "a": [1, 2]}) == settings_hash({"a": [1, 2], "b": 1})


def test_the_hash_changes_when_any_setting_changes():
    row = resolve(EVERYTHING)
    # a setting added to the schema must be added to OTHER (and so to this test)
    assert set(flatten(row)) - {"kind", "student_vocab"} == set(OTHER)  # its other value: the next test
    for key, value in OTHER.items():
        raw = {
            **EVERYTHING,
            **({"teacher": {key[8:]: value}} if key.startswith("teacher.") else {key: value}),
        }
        changed = resolve(raw)
        assert settings_hash(changed) != settings_hash(row), key
        assert [k for k in flatten(row) if flatten(row)[k] != flatten(changed)[k]] == [key]
        if key in ("data", "limit_train", "device", "max_seq_length"):  # the teacher shares them
            assert changed["teacher"][key] == changed[key]


def test_a_trimmed_vocabulary_is_a_setting_and_the_teachers_leaves_hashes_as_they_were():
    alone = resolve({"kind": "alone"})
    assert resolve({"kind": "alone", "student_vocab": "teacher", "student_vocab_size": 50}) == alone
    trimmed = resolve({"kind": "alone", "student_vocab": "train"})
    assert {k: v for k, v in trimmed.items() if not k.startswith("student_vocab")} == alone
    assert (trimmed["student_vocab"], trimmed["student_vocab_size"]) == ("train", 0)
    assert settings_hash(trimmed) != settings_hash(alone)


def test_equal_settings_resolve_to_one_hash():
    base = settings_hash(resolve({"kind": "distilled", "alpha_hidden": 10}))
    written_otherwise = [
        {"kind": "distilled", "alpha_hidden": 10.0, "epochs": 10, "learning_rate": "1e-4", "seed": 1.0},
        {"kind": "distilled", "alpha_hidden": "10", "student_layers": "0,2,4", "teacher": {"epochs": 2}},
        # settings that do not apply to the row are left out
        {"kind": "distilled", "alpha_hidden": 10, "stage1_alpha_hidden": 5, "stage1_augment_copies": 4},
        {
            "kind": "distilled",
            "alpha_hidden": 10,
            "augment_min_probability": 0.5,
            "attention_relation_heads": 6,
        },
    ]
    for raw in written_otherwise:
        assert settings_hash(resolve(raw)) == base, raw
    assert "temperature" not in resolve({"kind": "alone", "temperature": 4})
    assert "teacher" not in resolve({"kind": "teacher", "epochs": 99})  # a teacher row's own are teacher.*


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"kind": "alone", "tempreature": 2}, "unknown setting 'tempreature'"),
        ({"kind": "student"}, "kind 'student'"),
        ({"kind": "distilled", "alpha_hidden": "a lot"}, "alpha_hidden: 'a lot' is not a number"),
        ({"kind": "distilled", "seed": 1.5}, "seed: 1.5 is not a whole number"),
        ({"kind": "distilled", "epochs": 2, "stage1_epochs": 2}, "stage1_epochs 2: the first stage is part"),
        (
            {"kind": "distilled", "augment_copies": 4, "augment_min_probability": 1},
            "augment_min_probability 1",
        ),
        ({"kind": "alone", "init": "random"}, "init 'random'"),
        (
            {"kind": "alone", "teacher": {"data": "x"}},
            "a teacher sets only model, epochs, learning_rate, seed",
        ),
        ({"kind": "alone", "student_layers": "0,two"}, "student_layers: '0,two' is not a list"),
        ({"kind": "distilled", "alpha_ce": 0, "alpha_squad": 0}, "nothing to learn"),
        ({"kind": "alone", "limit_train": 0}, "limit_train 0: must be >= 1"),
        ({"kind": "alone", "student_vocab": "data"}, "student_vocab 'data': choose teacher"),
        ({"kind": "alone", "student_vocab": "train", "student_vocab_size": -1}, "student_vocab_size -1"),
        ({"kind": "teacher", "teacher": {"learning_rate": 0}}, "teacher.learning_rate 0: must be > 0"),
    ],
)
def test_a_bad_setting_is_named(raw, message):
    with pytest.raises(StudyError, match=message.replace("(", r"\(")):
        resolve(raw)


def test_a_study_expands_into_rows():
    study = {
        "seeds": [1, 2],
        "settings": {"epochs": 5, "teacher": {"epochs": 3}},
        "rows": [
            {"name": "alone", "kind": "alone"},
            {
                "name": "hidden",
                "kind": "distilled",
                "grid": {"alpha_hidden": [1, 10], "teacher": [{}, {"epochs": 5}]},
            },
            {
                "name": "grid",
                "kind": "distilled",
                "seeds": [1],
                "each": [{"temperature": 4}, {"alpha_ce": 0.9}],
            },
            {
                "name": "again",
                "kind": "alone",
                "seeds": [2],
            },  # the same settings as a row above: planned once
        ],
    }
    rows = plan(study, parse_assignments(["limit_dev=8", "teacher.learning_rate=1e-4"], "--set"))
    names = [row.name for row in rows]
    assert names == ["teacher", "alone", "alone", "hidden", "hidden", "teacher", "hidden", "hidden"] + ["hidden"] * 4 + ["grid"] * 2  # fmt: skip
    assert len({row.hash for row in rows}) == len(rows) and all(
        row.hash == settings_hash(row.settings) for row in rows
    )
    teachers = [row.settings for row in rows if row.name == "teacher"]
    assert [t["epochs"] for t in teachers] == [3.0, 5.0] and all(t["learning_rate"] == 1e-4 for t in teachers)
    assert all(row.settings["limit_dev"] == 8 and row.settings.get("epochs") in (5.0, 3.0) for row in rows)
    grid = [row.settings for row in rows if row.name == "grid"]
    assert [(g["temperature"], g["alpha_ce"], g["seed"]) for g in grid] == [(4.0, 0.5, 1), (2.0, 0.9, 1)]


@pytest.mark.parametrize(
    "study, message",
    [
        ({"rows": "alone"}, "a study is a mapping"),
        ({"rows": [{"kind": "alone"}], "setings": {}}, "a study is a mapping"),
        ({"rows": ["alone"]}, r"rows\[1\]: 'alone' is not a mapping"),
        ({"rows": [{"kind": "alone", "grid": {"seed": 3}}]}, r"rows\[1\]: grid maps settings to lists"),
        (
            {"rows": [{"name": "x", "kind": "distilled", "stage1_epochs": 20}]},
            r"rows\[1\] \(x\): stage1_epochs 20",
        ),
    ],
)
def test_a_bad_study_is_named(study, message):
    with pytest.raises(StudyError, match=message):
        plan(study, source="s.yaml")


def test_staged_study_plans_its_rows():
    """What benchmarks/table2_sweep.py --study staged planned: 3 seeds x 11 rows from one teacher."""
    rows = plan(load_study(STUDIES / "staged.yaml"))
    teachers = [row for row in rows if row.settings["kind"] == "teacher"]
    assert (
        len(teachers) == 1
        and teachers[0].settings["epochs"] == 2
        and teachers[0].settings["learning_rate"] == 2e-4
    )
    students = [row.settings for row in rows if row.settings["kind"] != "teacher"]
    assert len(students) == 3 * 11
    seeds: dict[str, set[int]] = {}
    for settings in students:
        assert settings["teacher"] == teachers[0].settings
        seeds.setdefault(settings_hash({**settings, "seed": 0}), set()).add(settings["seed"])
    assert len(seeds) == 11 and all(s == {1, 2, 3} for s in seeds.values())

    def has(**wanted):
        return any(all(s.get(k) == v for k, v in wanted.items()) for s in students)

    assert has(kind="alone", epochs=5.0) and has(kind="alone", epochs=10.0)
    assert has(epochs=5.0, stage1_epochs=2.0, stage1_augment_copies=0, alpha_hidden=10.0)
    assert has(epochs=10.0, stage1_epochs=4.0) and has(epochs=10.0, stage1_epochs=2.0, alpha_hidden=0.0)
    assert has(epochs=10.0, stage1_epochs=0.0, augment_copies=4) and has(
        epochs=10.0, stage1_epochs=2.0, augment_copies=4
    )
    assert has(epochs=5.0, stage1_augment_copies=4) and has(epochs=10.0, stage1_augment_copies=4)
    # a smoke run: the same rows on a few questions
    smoke = plan(load_study(STUDIES / "staged.yaml"), {"limit_train": 24, "limit_dev": 16})
    assert len(smoke) == len(rows) and all(r.settings["limit_train"] == 24 for r in smoke)
    assert all(r.settings["teacher"]["limit_train"] == 24 for r in smoke if r.settings["kind"] != "teacher")


def test_every_study_file_plans():
    for path in sorted(STUDIES.glob("*.yaml")):
        study = load_study(path)
        rows = plan(study, source=path.name)
        assert study["description"] and rows, path.name
