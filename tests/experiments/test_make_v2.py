"""experiments/squad2/make_v2.py: SQuAD 2.0-style data from SQuAD v1.1, on a small v1.1 fixture made here."""

from __future__ import annotations

import json

import pytest

from distilqa.qa.data import load_examples
from distilqa.qa.metrics import squad_v2_score
from experiments.squad2.make_v2 import main, make_v2

pytestmark = pytest.mark.experiments

TOPICS = ["glaciers", "violins", "comets", "tulips", "bridges", "falcons"]


def v1_document(articles: int = 6, paragraphs: int = 2, questions: int = 3) -> dict:
    """``articles`` articles about different topics; every answer is a word of its own paragraph only, except
    the answer "THE RIVER", which every paragraph contains (in other case)."""
    data = []
    for a in range(articles):
        topic = TOPICS[a]
        pars = []
        for p in range(paragraphs):
            words = [f"{topic}{p}w{q}" for q in range(questions)]
            river = "THE RIVER" if a == 0 and p == 0 else "The river"
            context = f"{river} bank hosts {topic}. " + " ".join(f"Item {w} is noted." for w in words)
            qas = [
                {"id": f"{a}-{p}-{q}", "question": f"Which item number {q} of {topic}?",
                 "answers": [{"text": w, "answer_start": context.index(w)}]}
                for q, w in enumerate(words)
            ]  # fmt: skip
            if a == 0 and p == 0:  # its answer is in every paragraph: it can never be made unanswerable
                qas.append({"id": "everywhere", "question": "Where?",
                            "answers": [{"text": "THE RIVER", "answer_start": 0}]})  # fmt: skip
            pars.append({"context": context, "qas": qas})
        data.append({"title": topic, "paragraphs": pars})
    return {"version": "1.1", "data": data}


def write(tmp_path, document, name="v1.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def questions(document):
    return {
        qa["id"]: (article["title"], paragraph["context"], qa)
        for article in document["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


def test_seeded_and_deterministic(tmp_path):
    source = write(tmp_path, v1_document())
    outputs = []
    for name, seed in (("a.json", 3), ("b.json", 3), ("c.json", 4)):
        assert main(["--input", str(source), "--output", str(tmp_path / name), "--seed", str(seed)]) == 0
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]


@pytest.mark.parametrize("share", [0.33, 0.5, 0.0])
def test_the_share_of_unanswerable_questions(share):
    document = v1_document()
    v2, summary = make_v2(document, share=share, seed=1)
    total = len(questions(document))
    made = [qa for _, _, qa in questions(v2).values() if qa["is_impossible"]]
    assert len(questions(v2)) == total == summary["questions"]  # every question once
    assert len(made) == summary["unanswerable"]
    assert len(made) + summary["left_answerable_no_foreign_paragraph"] == round(share * total)


def test_unanswerable_questions_get_a_foreign_paragraph_without_their_answer():
    document = v1_document()
    original = questions(document)
    v2, summary = make_v2(document, share=0.99, seed=0)  # every question chosen
    assert v2["version"] == "v2.0"
    assert summary["left_answerable_no_foreign_paragraph"] == 1  # "the river" is in every paragraph
    for qid, (title, context, qa) in questions(v2).items():
        old_title, old_context, old_qa = original[qid]
        assert qa["question"] == old_qa["question"]
        if qa["is_impossible"]:
            assert qa["answers"] == [] and qa["plausible_answers"] == []
            assert title != old_title  # another article
            assert all(a["text"].lower() not in context.lower() for a in old_qa["answers"])
        else:
            assert (context, qa["answers"]) == (old_context, old_qa["answers"])
    assert not questions(v2)["everywhere"][2]["is_impossible"]
    assert document == v1_document()  # the input is not changed


def test_the_output_loads_and_scores_as_squad_2(tmp_path):
    source = write(tmp_path, v1_document())
    out = tmp_path / "v2.json"
    assert main(["--input", str(source), "--output", str(out)]) == 0
    examples = load_examples(out)
    assert examples.version_2 and len(examples) == len(questions(v1_document()))
    unanswerable = [row["id"] for row in examples if not row["answers"]["text"]]
    assert 0 < len(unanswerable) < len(examples)
    gold = {row["id"]: (row["answers"]["text"] or [""])[0] for row in examples}
    assert squad_v2_score(examples, gold)["f1"] == 100.0
    scores = squad_v2_score(examples, dict.fromkeys(gold, ""))
    assert scores["NoAns_f1"] == 100.0 and scores["HasAns_f1"] == 0.0
    assert scores["NoAns_total"] == len(unanswerable)


@pytest.mark.parametrize("articles", [6, 2])
def test_split_by_article_into_two_halves(tmp_path, articles, capsys):
    source = write(tmp_path, v1_document(articles=articles))
    assert (
        main(["--input", str(source), "--output", str(tmp_path / "dev.json"), "--split", "--seed", "5"]) == 0
    )
    halves = [json.loads((tmp_path / f"dev-{name}.json").read_text()) for name in "ab"]
    titles = [{a["title"] for a in half["data"]} for half in halves]
    assert titles[0] and titles[1] and not titles[0] & titles[1]
    assert titles[0] | titles[1] == set(TOPICS[:articles])
    ids = [set(questions(half)) for half in halves]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == set(questions(v1_document(articles=articles)))
    for name, half in zip("ab", halves, strict=True):
        assert load_examples(tmp_path / f"dev-{name}.json").version_2
        assert any(qa["is_impossible"] for _, _, qa in questions(half).values())
    warned = "transformed before the split" in capsys.readouterr().err
    assert warned == (articles < 4)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    v2 = v1_document()
    v2["data"][0]["paragraphs"][0]["qas"][0].update(answers=[], is_impossible=True)
    for argv, message in (
        (["--input", str(tmp_path / "missing.json")], "does not exist"),
        (["--input", str(write(tmp_path, v2, "v2.json"))], "has no answer"),
        (["--input", str(write(tmp_path, v1_document())), "--unanswerable", "1.0"], "[0, 1)"),
        (["--input", str(write(tmp_path, v1_document(articles=1), "one.json"))], "fewer than 2 articles"),
    ):
        assert main([*argv, "--output", str(tmp_path / "out.json")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.json").exists()
