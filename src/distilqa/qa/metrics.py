"""SQuAD v1.1 and v2.0 exact match and F1, computed exactly as the official evaluation scripts do; stdlib only.

The official scripts are ``evaluate-v1.1.py`` and ``evaluate-v2.0.py`` from the SQuAD website. This module
reproduces their numbers to the last digit: the same answer normalization, the same per-question scores, and
the same float operations in the same order (printed with ``json.dumps`` the results are byte-identical, which
``tests/test_metrics.py`` checks against the real scripts when they are available).

Where the two scripts differ, each scoring function follows its own script:
    * v1.1: F1 is 0 when either side normalizes to no tokens; every question counts in the total.
    * v2.0: a question whose gold answers all normalize to "" (or that has none) is unanswerable and its only
      correct answer is ""; F1 is 1 when both sides are empty; no-answer probabilities above
      ``na_prob_thresh`` turn a prediction into "no answer"; with ``na_probs`` the best thresholds are reported.

One departure, where the official v2.0 script stops with a ``KeyError``: a question without a prediction
scores 0 (as in v1.1) and still counts in ``total``; predictions for ids outside the data are ignored, so
full-dev predictions can be scored on a subset. :func:`prediction_coverage` tells the caller about both.

Example::

    >>> from distilqa.qa.metrics import f1_score, normalize_answer
    >>> normalize_answer("The  Eiffel Tower!")
    'eiffel tower'
    >>> round(f1_score("the Eiffel Tower in Paris", "Eiffel Tower"), 4)
    0.6667
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from distilqa.errors import InputError

# Both scripts use this pattern (v2.0 adds re.UNICODE, which is already the default for str patterns).
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower-case, drop ASCII punctuation, replace the articles a/an/the by spaces, collapse white space."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, ground_truth: str) -> int:
    """1 if both answers are equal after :func:`normalize_answer`, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction: str, ground_truth: str, *, version_2: bool = False) -> float:
    """Token-level F1 between two answers after :func:`normalize_answer`.

    Args:
        prediction (`str`): the predicted answer.
        ground_truth (`str`): one gold answer.
        version_2 (`bool`, defaults to `False`): SQuAD 2.0 rule for empty answers: when either side has no
            tokens the score is 1 if both are empty, else 0. The v1.1 rule scores 0 whenever a side is empty.

    Returns:
        `float` in [0, 1] (an `int` 0 or 1 in the cases where the official scripts return one).
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    if version_2 and (not pred_tokens or not gold_tokens):
        return int(pred_tokens == gold_tokens)
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


class Coverage(NamedTuple):
    """How a predictions dict lines up with the questions of a dataset."""

    missing: list[str]  # question ids without a prediction: they score 0
    extra: list[str]  # prediction ids that are not questions of the dataset: they are ignored


def prediction_coverage(examples: Iterable[Mapping[str, Any]], predictions: Mapping[str, Any]) -> Coverage:
    """The dataset ids that lack a prediction and the predicted ids outside the dataset, each in file order."""
    ids = [row["id"] for row in examples]
    known = set(ids)
    return Coverage(
        [qid for qid in ids if qid not in predictions], [qid for qid in predictions if qid not in known]
    )


def squad_v1_score(examples: Iterable[Mapping[str, Any]], predictions: Mapping[str, str]) -> dict[str, float]:
    """SQuAD v1.1 scores, as ``evaluate-v1.1.py`` computes them.

    Args:
        examples (`SquadExamples` or `list[dict]`): rows with ``id`` and ``answers["text"]`` (at least one answer).
        predictions (`dict[str, str]`): question id -> predicted answer text.

    Returns:
        ``{"exact_match": float, "f1": float}`` in percent; every question of ``examples`` counts in the total.
    """
    rows = _rows(examples)
    exact_match = f1 = 0
    for row in rows:
        gold = row["answers"]["text"]
        if not gold:
            raise InputError(
                f"question {row['id']!r} has no gold answer; SQuAD v1.1 scoring needs one (score unanswerable "
                "questions with the SQuAD 2.0 rules)"
            )
        if row["id"] not in predictions:
            continue
        prediction = predictions[row["id"]]
        # The official script adds up question by question (no sum()), which fixes the float rounding.
        exact_match += max(exact_match_score(prediction, answer) for answer in gold)
        f1 += max(f1_score(prediction, answer) for answer in gold)
    return {"exact_match": 100.0 * exact_match / len(rows), "f1": 100.0 * f1 / len(rows)}


def squad_v2_score(
    examples: Iterable[Mapping[str, Any]],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float | int]:
    """SQuAD v2.0 scores, as ``evaluate-v2.0.py`` computes them.

    Args:
        examples (`SquadExamples` or `list[dict]`): rows with ``id`` and ``answers["text"]`` (empty when the
            question is unanswerable).
        predictions (`dict[str, str]`): question id -> predicted answer text, ``""`` for "no answer".
        na_probs (`dict[str, float]`, *optional*): question id -> probability that it has no answer; needed for
            every question that has a prediction. Adds ``best_exact``, ``best_exact_thresh``, ``best_f1`` and
            ``best_f1_thresh``. Without it every probability is 0.
        na_prob_thresh (`float`, defaults to 1.0): a prediction whose no-answer probability exceeds this counts
            as "no answer".

    Returns:
        `dict` with ``exact``, ``f1``, ``total`` and, for the kinds of question present, ``HasAns_exact``,
        ``HasAns_f1``, ``HasAns_total``, ``NoAns_exact``, ``NoAns_f1``, ``NoAns_total`` (percentages, counts).
    """
    rows = _rows(examples)
    has_ans = {row["id"]: bool(row["answers"]["text"]) for row in rows}
    exact_raw: dict[str, int] = {}
    f1_raw: dict[str, float] = {}
    for row in rows:
        qid = row["id"]
        if qid not in predictions:
            continue
        gold = _v2_gold(row)
        exact_raw[qid] = max(exact_match_score(predictions[qid], answer) for answer in gold)
        f1_raw[qid] = max(f1_score(predictions[qid], answer, version_2=True) for answer in gold)

    probs = dict.fromkeys(predictions, 0.0) if na_probs is None else na_probs
    lacking = [qid for qid in exact_raw if qid not in probs]
    if lacking:
        raise InputError(
            f"na_probs has no no-answer probability for {len(lacking)} predicted question(s) (first: "
            f"{lacking[0]!r}); give one for every question"
        )
    exact = _apply_no_answer_threshold(exact_raw, probs, has_ans, na_prob_thresh)
    f1 = _apply_no_answer_threshold(f1_raw, probs, has_ans, na_prob_thresh)

    result = _summary(exact, f1, list(has_ans))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, value in has_ans.items() if value is wanted]
        if qids:
            result.update((f"{prefix}_{key}", value) for key, value in _summary(exact, f1, qids).items())
    if na_probs is not None:
        result["best_exact"], result["best_exact_thresh"] = _best_threshold(
            predictions, exact_raw, probs, has_ans
        )
        result["best_f1"], result["best_f1_thresh"] = _best_threshold(predictions, f1_raw, probs, has_ans)
    return result


def score_predictions(
    examples,
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float | int]:
    """Score with the v2.0 rules when ``examples.version_2`` is set, else with the v1.1 rules.

    Args:
        examples (`SquadExamples`): the gold data, from :func:`distilqa.qa.data.load_examples`.
        predictions (`dict[str, str]`): question id -> predicted answer text.
        na_probs (`dict[str, float]`, *optional*): SQuAD 2.0 only; see :func:`squad_v2_score`.
        na_prob_thresh (`float`, defaults to 1.0): SQuAD 2.0 only; see :func:`squad_v2_score`.
    """
    if examples.version_2:
        return squad_v2_score(examples, predictions, na_probs, na_prob_thresh)
    if na_probs is not None or na_prob_thresh != 1.0:
        raise InputError(
            f"{examples.source or 'the dataset'} is SQuAD v1.1 (every question has an answer); no-answer "
            "probabilities and thresholds apply to SQuAD 2.0 data only: drop them"
        )
    return squad_v1_score(examples, predictions)


def question_f1(examples, predictions: Mapping[str, str]) -> dict[str, float]:
    """Each question's F1 (0 to 1) under the rules of its version (v2.0 when ``examples.version_2`` is set).

    No no-answer threshold is applied: an empty prediction is "no answer". Questions without a prediction are
    left out. The mean over all questions, times 100, is the script's F1 (v1.1, and v2.0 at threshold 1.0).
    """
    version_2 = bool(getattr(examples, "version_2", False))
    scores = {}
    for row in _rows(examples):
        if row["id"] not in predictions:
            continue
        gold = _v2_gold(row) if version_2 else row["answers"]["text"]
        scores[row["id"]] = max(
            (f1_score(predictions[row["id"]], answer, version_2=version_2) for answer in gold), default=0.0
        )
    return scores


def paired_bootstrap_interval(
    before: Mapping[str, float],
    after: Mapping[str, float],
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(after - before) * 100`` over the questions both score.

    Questions are resampled with replacement, the same questions for both sides (a paired test), so the
    interval says how far the change in F1 (points) could move on another sample of questions of this kind.
    Seeded: the same scores give the same interval.
    """
    if not 0.0 < level < 1.0:
        raise InputError(f"level must lie in (0, 1), got {level}")
    diffs = [100.0 * (after[qid] - before[qid]) for qid in before if qid in after]
    if not diffs:
        raise InputError("no question is scored on both sides; give predictions for the same questions")
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    low = means[int(tail * (resamples - 1))]
    high = means[int(round((1.0 - tail) * (resamples - 1)))]
    return low, high


def _rows(examples: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rows = list(examples)
    if not rows:
        raise InputError("there are no questions to score; give a dataset with at least one question")
    return rows


def _v2_gold(row: Mapping[str, Any]) -> list[str]:
    """v2.0 gold answers: those that normalize to something, else [""] (the question is unanswerable)."""
    return [text for text in row["answers"]["text"] if normalize_answer(text)] or [""]


def _apply_no_answer_threshold(scores, na_probs, has_ans, na_prob_thresh):
    """Questions predicted to have no answer score 1 if they have none, else 0 (as floats, like the script)."""
    return {
        qid: float(not has_ans[qid]) if na_probs[qid] > na_prob_thresh else score
        for qid, score in scores.items()
    }


def _summary(exact, f1, qids):
    # sum() over the questions in dataset order, like the script: from Python 3.12 on sum() adds floats with
    # compensation, so a loop would differ in the last digits (and the script's digits depend on the
    # interpreter; ours follow). Missing predictions are skipped, i.e. add 0, but count in the total.
    total = len(qids)
    return {
        "exact": 100.0 * sum(exact[qid] for qid in qids if qid in exact) / total,
        "f1": 100.0 * sum(f1[qid] for qid in qids if qid in f1) / total,
        "total": total,
    }


def _best_threshold(predictions, scores, na_probs, has_ans):
    """The score (percent) at the best no-answer threshold, and that threshold (``find_best_thresh``).

    Start with every question answered "no answer" (all unanswerable ones correct), then answer the questions
    one by one in order of rising no-answer probability; keep the best running score.
    """
    score = sum(1 for qid, value in has_ans.items() if not value and qid in scores)
    best_score, best_thresh = score, 0.0
    # A stable sort in the order of na_probs: ties are taken in the order given, as in the script.
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_ans[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score -= 1
        if score > best_score:
            best_score, best_thresh = score, na_probs[qid]
    return 100.0 * best_score / len(has_ans), best_thresh
