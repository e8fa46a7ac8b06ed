"""Validate the built-in demo data (``train.json`` and ``dev.json`` next to this file).

Run ``python src/distilqa/demo/data/_check.py``; it prints the counts and exits with status 1 on any problem.

Checks: the official SQuAD v1.1 layout; non-empty titles, contexts, questions and answers; every
``context[answer_start:answer_start + len(text)] == text``; answers start and end on word boundaries;
dev answer variants overlap the first answer; one answer per train question; question ids unique across
both files; no article title (and no paragraph) in both splits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def check(
    split: str, problems: list[str], seen_ids: set[str]
) -> tuple[set[str], set[str], tuple[int, int, int]]:
    obj = json.loads((HERE / f"{split}.json").read_text(encoding="utf-8"))
    if obj.get("version") != "1.1" or not isinstance(obj.get("data"), list):
        problems.append(f"{split}: not SQuAD v1.1 ({{'version': '1.1', 'data': [...]}})")
        return set(), set(), (0, 0, 0)
    titles, contexts, n_paragraphs, n_questions = set(), set(), 0, 0
    for article in obj["data"]:
        title = article.get("title", "")
        if not title.strip() or title in titles:
            problems.append(f"{split}: empty or repeated title {title!r}")
        titles.add(title)
        for paragraph in article["paragraphs"]:
            n_paragraphs += 1
            context = paragraph["context"]
            if not context.strip() or context != " ".join(context.split()):
                problems.append(f"{split}/{title}: empty context or stray whitespace")
            contexts.add(context)
            for qa in paragraph["qas"]:
                n_questions += 1
                qid, answers = qa["id"], qa["answers"]
                if qid in seen_ids:
                    problems.append(f"{split}: duplicate id {qid}")
                seen_ids.add(qid)
                if not qa["question"].strip():
                    problems.append(f"{qid}: empty question")
                if not answers or (split == "train" and len(answers) != 1):
                    problems.append(f"{qid}: {len(answers)} answers")
                spans = []
                for answer in answers:
                    text, start = answer["text"], answer["answer_start"]
                    end = start + len(text)
                    if not text.strip() or context[start:end] != text:
                        problems.append(f"{qid}: answer {text!r} not at {start}")
                        continue
                    if (start > 0 and context[start - 1].isalnum()) or (
                        end < len(context) and context[end].isalnum()
                    ):
                        problems.append(f"{qid}: answer {text!r} cuts a word")
                    spans.append((start, end))
                if spans and any(e <= spans[0][0] or s >= spans[0][1] for s, e in spans[1:]):
                    problems.append(f"{qid}: answer variants do not overlap")
    return titles, contexts, (len(obj["data"]), n_paragraphs, n_questions)


def main() -> int:
    problems: list[str] = []
    seen_ids: set[str] = set()
    train_titles, train_contexts, train_counts = check("train", problems, seen_ids)
    dev_titles, dev_contexts, dev_counts = check("dev", problems, seen_ids)
    if train_titles & dev_titles or train_contexts & dev_contexts:
        problems.append(f"articles in both splits: {sorted(train_titles & dev_titles)}")
    for split, (articles, paragraphs, questions) in (("train", train_counts), ("dev", dev_counts)):
        print(f"{split}: {articles} articles, {paragraphs} paragraphs, {questions} questions")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
