"""Make SQuAD 2.0-style data from a SQuAD v1.1 file: unanswerable questions with real text, seeded.

For a share ``p`` of the questions (default 1/3), the question is moved to a paragraph of a *different* article
whose context does not contain any of its gold answers (case-insensitive), and marked ``is_impossible: true``
with ``answers: []`` and ``plausible_answers: []``; every other question stays in its own paragraph as an
answerable v2 entry (``is_impossible: false``). Each question appears once, under its own id. The output is
official SQuAD 2.0 JSON (``"version": "v2.0"``), and the same input, share and seed give the same bytes.

``--split`` splits by article into two halves A and B (a seeded shuffle of the articles): ``--output
dev-v2.json --split`` writes ``dev-v2-a.json`` and ``dev-v2-b.json`` (choose a threshold on one, measure on
the other). Every paragraph and every question lies in exactly one half. With 4 articles or more the halves
are made first and each is transformed on its own (foreign paragraphs from the same half, so each half has the
share ``p``). With 2 or 3 articles (the shared dev subset has 2) a half may hold one article, so the whole file
is transformed first and an unanswerable question goes to the half of the paragraph it was paired with; the
halves' shares of unanswerable questions then differ (printed, and a warning says so).

    python -m experiments.squad2.make_v2 --input train.json --output /tmp/squad2/train-v2.json --seed 0
    python -m experiments.squad2.make_v2 --input dev.json --output /tmp/squad2/dev-v2.json --seed 0 --split

These unanswerables are easier than real SQuAD 2.0 ones (those were written to look answerable from their
paragraph; these are a topic mismatch): see README.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
from pathlib import Path
from typing import Any

VERSION = "v2.0"
DEFAULT_SHARE = 0.33


class DataError(ValueError):
    """Input a user can fix: the message names the file or option and the fix."""


def load_v1(path: str | Path) -> dict[str, Any]:
    """The official SQuAD v1.1 JSON at ``path`` (``{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}``)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"--input {path} does not exist; give a SQuAD v1.1 JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"--input {path} is not JSON ({err}); give a SQuAD v1.1 JSON file") from None
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list) or not all(
        isinstance(a, dict) and isinstance(a.get("paragraphs"), list) for a in articles
    ):
        raise DataError(
            f"--input {path} is not official SQuAD JSON (a 'data' list of articles with 'paragraphs')"
        )
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph.get("qas", []):
                if qa.get("is_impossible") or not qa.get("answers"):
                    raise DataError(
                        f"--input {path}: question {qa.get('id')!r} has no answer; give SQuAD v1.1 data, where "
                        "every question has one"
                    )
    return document


def _contains_answer(context: str, answers: list[str]) -> bool:
    lowered = context.lower()
    return any(text.lower() in lowered for text in answers if text.strip())


def make_v2(document: dict[str, Any], share: float = DEFAULT_SHARE, seed: int = 0) -> tuple[dict, dict]:
    """The SQuAD 2.0 document made from the v1.1 ``document``, and a summary of what was done.

    Args:
        document: official SQuAD v1.1 JSON (not changed).
        share (`float`, defaults to 0.33): the share of questions made unanswerable, in [0, 1).
        seed (`int`, defaults to 0): which questions, and which foreign paragraph each gets.

    Returns:
        ``(v2_document, summary)``; the summary counts questions, unanswerable ones and those left answerable
        because no paragraph of another article lacks their answer.
    """
    if not 0.0 <= share < 1.0:
        raise DataError(f"--unanswerable must lie in [0, 1), got {share}; e.g. --unanswerable 0.33")
    articles = copy.deepcopy(document["data"])
    if share > 0 and len(articles) < 2:
        raise DataError(
            "the data holds fewer than 2 articles: a question needs a paragraph of another article"
        )
    rng = random.Random(seed)
    # every question, with where it is: (article, paragraph, qa)
    places = [(a, p, qa) for a, art in enumerate(articles) for p, par in enumerate(art["paragraphs"]) for qa in par.get("qas", [])]  # fmt: skip
    paragraphs = [(a, p) for a, art in enumerate(articles) for p in range(len(art["paragraphs"]))]
    chosen = set(rng.sample(range(len(places)), round(share * len(places))))
    moved: dict[tuple[int, int], list[dict]] = {}
    kept: dict[tuple[int, int], list[dict]] = {}
    skipped = 0
    for index, (a, p, qa) in enumerate(places):
        answers = [answer["text"] for answer in qa["answers"]]
        target = _foreign_paragraph(rng, articles, paragraphs, a, answers) if index in chosen else None
        if index in chosen and target is None:
            skipped += 1
        if target is None:
            kept.setdefault((a, p), []).append({**qa, "is_impossible": False})
            continue
        impossible = {"id": qa["id"], "question": qa["question"], "answers": [], "plausible_answers": [], "is_impossible": True}  # fmt: skip
        moved.setdefault(target, []).append(impossible)
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article["paragraphs"]):
            paragraph["qas"] = kept.get((a, p), []) + moved.get((a, p), [])
    impossible_count = sum(len(v) for v in moved.values())
    summary = {
        "questions": len(places),
        "unanswerable": impossible_count,
        "answerable": len(places) - impossible_count,
        "left_answerable_no_foreign_paragraph": skipped,
        "share": round(impossible_count / len(places), 4) if places else 0.0,
        "seed": seed,
    }
    return {"version": VERSION, "data": articles}, summary


def _foreign_paragraph(rng, articles, paragraphs, article: int, answers: list[str]) -> tuple[int, int] | None:
    """A random paragraph of another article whose context lacks every answer; None when there is none."""
    for _ in range(50):  # rejection sampling first: almost every foreign paragraph lacks the answer
        a, p = paragraphs[rng.randrange(len(paragraphs))]
        if a != article and not _contains_answer(articles[a]["paragraphs"][p]["context"], answers):
            return a, p
    fitting = [
        (a, p)
        for a, p in paragraphs
        if a != article and not _contains_answer(articles[a]["paragraphs"][p]["context"], answers)
    ]
    return rng.choice(fitting) if fitting else None


def split_articles(document: dict[str, Any], seed: int = 0) -> tuple[dict, dict]:
    """Two documents, halves A and B of the articles (a seeded shuffle; A gets the extra one), in input order."""
    articles = list(document["data"])
    if len(articles) < 2:
        raise DataError(f"--split needs at least 2 articles (1 per half), the input has {len(articles)}")
    order = list(range(len(articles)))
    random.Random(f"split-{seed}").shuffle(order)
    half = (len(order) + 1) // 2
    a, b = sorted(order[:half]), sorted(order[half:])
    return (
        {**document, "data": [articles[i] for i in a]},
        {**document, "data": [articles[i] for i in b]},
    )


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def make_outputs(
    document: dict[str, Any], output: Path, share: float, seed: int, split: bool
) -> list[tuple[Path, dict[str, Any]]]:
    """``[(path, v2 document)]``: one file, or with ``split`` the halves ``OUTPUT-a.json`` and ``OUTPUT-b.json``."""
    if not split:
        return [(output, make_v2(document, share, seed)[0])]
    stem = output.with_suffix("")
    paths = [Path(f"{stem}-{name}.json") for name in "ab"]
    if len(document["data"]) >= 4:  # each half keeps 2+ articles: transformed on its own
        halves = [make_v2(half, share, seed)[0] for half in split_articles(document, seed)]
    else:
        halves = list(split_articles(make_v2(document, share, seed)[0], seed))
        shares = [count(half)["unanswerable"] / max(count(half)["questions"], 1) for half in halves]
        print(
            f"make_v2: warning: {len(document['data'])} articles: transformed before the split, so the halves hold "
            f"{shares[0]:.0%} and {shares[1]:.0%} unanswerable questions",
            file=sys.stderr,
        )
    return list(zip(paths, halves, strict=True))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", required=True, help="SQuAD v1.1 JSON file")
    parser.add_argument(
        "--output", required=True, help="SQuAD 2.0 JSON file to write (with --split: its -a/-b)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    parser.add_argument(
        "--unanswerable",
        type=float,
        default=DEFAULT_SHARE,
        help="share of questions made unanswerable (0.33)",
    )
    parser.add_argument("--split", action="store_true", help="split by article into halves A and B first")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        document = load_v1(args.input)
        output = Path(args.output)
        if output.resolve() == Path(args.input).resolve():
            raise DataError(f"--output {output} is the --input file; choose another path")
        jobs = make_outputs(document, output, args.unanswerable, args.seed, args.split)
    except DataError as err:
        print(f"make_v2: {err}", file=sys.stderr)
        return 2
    for path, part in jobs:
        write_json(path, part)
        print(f"{path}: {json.dumps(count(part))}")
    return 0


def count(document: dict[str, Any]) -> dict[str, int]:
    """Articles, questions and unanswerable questions of a SQuAD 2.0 document."""
    qas = [
        qa for article in document["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]
    ]
    return {
        "articles": len(document["data"]),
        "questions": len(qas),
        "unanswerable": sum(bool(qa["is_impossible"]) for qa in qas),
    }


if __name__ == "__main__":
    sys.exit(main())
