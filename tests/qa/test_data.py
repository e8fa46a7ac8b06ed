from __future__ import annotations

import json

import pytest

from conftest import shared_file
from distilqa.errors import InputError
from distilqa.qa.data import load_examples


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_official_json_v11(tiny_squad):
    examples = load_examples(tiny_squad)
    assert len(examples) == 3 and not examples.version_2
    assert examples[1]["answers"]["text"] == ["42 metres", "42 metres tall"]
    assert examples[0]["title"] == "Marrow Hill"


def test_shared_subset_loads():
    train = load_examples(shared_file("train.json"))
    dev = load_examples(shared_file("dev.json"))
    assert (len(train), len(dev)) == (3012, 795)
    assert not set(train.ids) & set(dev.ids)


def test_rows_json_jsonl_and_answer_lists_agree(tmp_path, tiny_squad):
    rows = load_examples(tiny_squad).rows
    as_list = write(tmp_path, "rows.json", json.dumps(rows))
    as_jsonl = write(tmp_path, "rows.jsonl", "\n".join(json.dumps(r) for r in rows))
    as_data = write(tmp_path, "data.json", json.dumps({"data": rows}))
    dict_answers = [
        {
            **r,
            "answers": [
                {"text": t, "answer_start": s}
                for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])
            ],
        }
        for r in rows
    ]
    as_dicts = write(tmp_path, "dicts.jsonl", "\n".join(json.dumps(r) for r in dict_answers))
    for path in (as_list, as_jsonl, as_data, as_dicts):
        assert load_examples(path).rows == rows


def test_v2_detected_from_unanswerable(tmp_path):
    rows = [
        {
            "id": "a",
            "context": "Ada wrote it.",
            "question": "Who wrote it?",
            "answers": {"text": ["Ada"], "answer_start": [0]},
        },
        {
            "id": "b",
            "context": "Ada wrote it.",
            "question": "When?",
            "answers": {"text": [], "answer_start": []},
        },
    ]
    assert load_examples(write(tmp_path, "v2.jsonl", "\n".join(map(json.dumps, rows)))).version_2
    assert not load_examples(write(tmp_path, "v1.jsonl", json.dumps(rows[0]))).version_2
    official = {
        "version": "v2.0",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "Ada wrote it.",
                        "qas": [
                            {
                                "id": "x",
                                "question": "Who?",
                                "answers": [],
                                "plausible_answers": [{"text": "Ada", "answer_start": 0}],
                                "is_impossible": True,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    examples = load_examples(write(tmp_path, "official_v2.json", json.dumps(official)))
    assert examples.version_2 and examples[0]["answers"]["text"] == []


ROW = {
    "id": "a",
    "context": "Ada wrote it.",
    "question": "Who wrote it?",
    "answers": {"text": ["Ada"], "answer_start": [0]},
}


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "not valid JSON"),
        ('{"hello": 1}', "unknown schema"),
        (json.dumps([{**ROW, "context": ""}]), "empty 'context'"),
        (json.dumps([{k: v for k, v in ROW.items() if k != "question"}]), "lacks field(s) question"),
        (json.dumps([ROW, ROW]), "duplicate question id 'a'"),
        (
            json.dumps([{**ROW, "answers": {"text": ["Ada"], "answer_start": [3]}}]),
            "answer_start does not point",
        ),
        (json.dumps([{**ROW, "answers": {"text": ["Ada"], "answer_start": [99]}}]), "for 1 question(s): a"),
        (json.dumps([{**ROW, "id": ""}]), "missing or empty 'id'"),
        (json.dumps([]), "holds no questions"),
        (json.dumps([{**ROW, "answers": "Ada"}]), "'answers' must be"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, content, expected):
    with pytest.raises(InputError, match=None) as info:
        load_examples(write(tmp_path, "bad.json", content))
    assert expected in str(info.value)
    assert "bad.json" in str(info.value)


def test_not_utf8_and_missing_file(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(
        json.dumps([{**ROW, "context": "Ada wrote it. café"}], ensure_ascii=False).encode("latin-1")
    )
    with pytest.raises(InputError, match="not UTF-8"):
        load_examples(path)
    with pytest.raises(InputError, match="does not exist"):
        load_examples(tmp_path / "nope.json")


def test_offset_mismatch_can_be_ignored_for_scoring(tmp_path):
    path = write(
        tmp_path, "off.json", json.dumps([{**ROW, "answers": {"text": ["Ada"], "answer_start": [3]}}])
    )
    examples = load_examples(path, check_offsets="ignore")
    assert examples.offset_mismatches == ["a"]
    with pytest.warns(UserWarning, match="answer_start"):
        load_examples(path, check_offsets="warn")


def test_hub_name_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(InputError, match="cannot load dataset 'no-such-user/no-such-squad'.*offline"):
        load_examples("no-such-user/no-such-squad")
