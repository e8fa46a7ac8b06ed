"""Plain-loop SQuAD post-processing: the oracle that ``distilqa.qa.postprocess`` is tested and benchmarked against.

It follows ``postprocess_qa_predictions`` of the transformers question-answering example loop for loop, with
the tie-breaking that ``distilqa.qa.postprocess`` documents: top-k by a stable sort (ties -> lower index), candidates
ordered by (score desc, window, start, end), the null entry after spans of equal score. Not part of the package.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from distilqa.qa.postprocess import PostprocessResult


def reference_postprocess(
    examples,
    example_ids,
    offsets,
    start_logits,
    end_logits,
    n_best: int = 20,
    max_answer_length: int = 30,
    version_2: bool = False,
    null_threshold: float = 0.0,
) -> PostprocessResult:
    """Same signature and result as :func:`distilqa.qa.postprocess.postprocess_predictions`, one window at a time."""
    start_logits = np.asarray(start_logits, dtype=np.float32)
    end_logits = np.asarray(end_logits, dtype=np.float32)
    offsets = np.asarray(offsets)
    features_of = defaultdict(list)
    for feature, qid in enumerate(example_ids):
        features_of[qid].append(feature)

    predictions, nbest, null_odds, scores = {}, {}, {}, {}
    for example in examples:
        qid, context = example["id"], example["context"]
        candidates = []  # (sort key, entry)
        null = None  # (score, start_logit, end_logit)
        for feature in features_of[qid]:
            starts, ends = start_logits[feature], end_logits[feature]
            feature_offsets = offsets[feature].tolist()
            feature_null = starts[0] + ends[0]
            if null is None or feature_null < null[0]:
                null = (feature_null, starts[0], ends[0])
            top_starts = np.argsort(-starts, kind="stable")[:n_best].tolist()
            top_ends = np.argsort(-ends, kind="stable")[:n_best].tolist()
            for start in top_starts:
                for end in top_ends:
                    if feature_offsets[start][0] < 0 or feature_offsets[end][0] < 0:
                        continue
                    if end < start or end - start + 1 > max_answer_length:
                        continue
                    score = float(starts[start] + ends[end])
                    entry = {
                        "text": context[feature_offsets[start][0] : feature_offsets[end][1]],
                        "score": score,
                        "start_logit": float(starts[start]),
                        "end_logit": float(ends[end]),
                        "start": feature_offsets[start][0],
                        "end": feature_offsets[end][1],
                    }
                    candidates.append(((-score, feature, start, end), entry))
        if version_2 and null is not None:
            entry = {
                "text": "",
                "score": float(null[0]),
                "start_logit": float(null[1]),
                "end_logit": float(null[2]),
            }
            entry |= {"start": -1, "end": -1, "null": True}
            candidates.append(((-float(null[0]), math.inf, 0, 0), entry))
        candidates.sort(key=lambda item: item[0])
        ranked = [entry for _, entry in candidates]

        spans = [entry for entry in ranked if not entry.get("null")]
        best_score = spans[0]["score"] if spans else 0.0
        answer = spans[0]["text"] if spans else ""
        score = best_score
        if version_2:
            null_score = float(null[0]) if null is not None else 0.0
            null_odds[qid] = null_score - best_score
            if not spans or null_odds[qid] > null_threshold:
                answer, score = "", null_score
        predictions[qid], scores[qid] = answer, score

        kept = ranked[:n_best]
        if not kept:
            nbest[qid] = [
                {"text": "", "probability": 1.0, "start_logit": 0.0, "end_logit": 0.0, "start": -1, "end": -1}
            ]
            continue
        top = kept[0]["score"]
        exps = [math.exp(entry["score"] - top) for entry in kept]
        total = sum(exps)
        nbest[qid] = [
            {
                "text": entry["text"],
                "probability": e / total,
                "start_logit": entry["start_logit"],
                "end_logit": entry["end_logit"],
                "start": entry["start"],
                "end": entry["end"],
            }
            for entry, e in zip(kept, exps, strict=True)
        ]
    return PostprocessResult(predictions=predictions, nbest=nbest, null_odds=null_odds, scores=scores)
