"""Start / end logits of every window -> n-best answer spans -> one answer per question (SQuAD v1.1 / v2.0).

The semantics are those of ``postprocess_qa_predictions`` in the transformers question-answering example (and
BERT's ``run_squad.py``): in each window take the ``n_best`` highest start and end positions, pair them, keep
pairs that lie in the context, run forward and are at most ``max_answer_length`` tokens long, score them with
``start_logit + end_logit``, merge the windows of a question and keep the ``n_best`` best. For SQuAD 2.0 the
null (CLS) score of a question is the minimum over its windows, and the answer is ``""`` when
``null_score - best_span_score > null_threshold``.

Unlike the example, the work is vectorised over the whole batch of windows with numpy (top-k by partition,
valid (start, end) pairs by one searchsorted, one stable sort to merge windows); Python only builds the output
dicts. Every tie is broken the same way: higher logit / score first, then the lower window, start and end
index; the null entry goes after spans of equal score. ``tests/postprocess_oracle.py`` holds the plain-loop
version that the tests and ``experiments/perf/postprocess_speed.py`` compare against.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distilqa.errors import InputError


@dataclass
class PostprocessResult:
    """Answers and n-best lists per question id.

    Attributes:
        predictions (`dict[str, str]`): id -> answer text (``""`` = no answer).
        nbest (`dict[str, list[dict]]`): id -> up to ``n_best`` entries ``{"text", "probability", "start_logit",
            "end_logit", "start", "end"}``, best first (``start``/``end``: character offsets in the context, -1 for
            the null entry); probabilities are a softmax over the listed scores.
        null_odds (`dict[str, float]`): SQuAD 2.0 only: ``null_score - best_span_score`` per id.
        scores (`dict[str, float]`): id -> ``start_logit + end_logit`` of the predicted span (the null score when
            a SQuAD 2.0 prediction is ``""``).
    """

    predictions: dict[str, str]
    nbest: dict[str, list[dict[str, Any]]]
    null_odds: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)

    def best_entry(self, qid: str) -> dict[str, Any] | None:
        """The n-best entry of ``qid``'s predicted answer (with its probability and character span), if listed."""
        return next((e for e in self.nbest[qid] if e["text"] == self.predictions[qid]), None)


def mask_padding(logits: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Logits of shape ``attention_mask.shape`` with ``-1e4`` at every padding position.

    Padding is never context, and must take none of the n-best slots: otherwise a short window's answers would
    depend on which windows share its batch. The Trainer's evaluation and the predictor both call this.

    Args:
        logits (`np.ndarray`): (N, W) start or end logits; W may be shorter (batches cut to their longest window)
            or longer than the features' length L.
        attention_mask (`np.ndarray`): (N, L) bool, the features' attention mask.
    """
    length = attention_mask.shape[1]
    wide = np.full(attention_mask.shape, -1e4, dtype=np.float32)
    width = min(length, logits.shape[1])
    wide[:, :width] = logits[:, :width]
    wide[~attention_mask] = -1e4
    return wide


def offsets_array(offset_mapping: Iterable[Sequence[Sequence[int] | None]]) -> np.ndarray:
    """Turn a column of per-window offset lists into one int array, padding short rows with ``-1``.

    Args:
        offset_mapping (`Iterable`): one list of ``[start_char, end_char]`` (or ``None``) per window, e.g.
            ``features["offset_mapping"]`` of a ``datasets.Dataset``.

    Returns:
        `np.ndarray` of shape (N, L, 2), int64, ``-1`` at every position that is not a context token.
    """
    rows = list(offset_mapping)
    length = max((len(row) for row in rows if row is not None), default=0)
    out = np.full((len(rows), length, 2), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        if row is None or len(row) == 0:
            continue
        try:
            out[i, : len(row)] = [(-1, -1) if pair is None else pair for pair in row]
        except (TypeError, ValueError) as err:
            raise InputError(
                f"offset_mapping row {i} is not a list of [start_char, end_char] pairs ({err}); "
                "pass the offset_mapping column built by prepare_eval_features"
            ) from None
    return out


def _top_k_columns(x: np.ndarray, k: int) -> np.ndarray:
    """Columns (N, k) of the ``k`` largest values in each row of a finite ``x`` (N, M), ascending; ties -> lower."""
    n, m = x.shape
    if k >= m or n == 0:
        return np.broadcast_to(np.arange(min(k, m)), (n, min(k, m)))
    level = np.partition(x, m - k, axis=1)[:, m - k, None]
    take = x >= level
    flat = np.flatnonzero(take)
    if len(flat) > n * k:  # some rows have ties at the level: keep the lowest columns among the equal values
        excess = np.count_nonzero(take, axis=1) - k
        tied = np.flatnonzero(excess)
        values, level = x[tied], level[tied]
        equal = values == level
        wanted = np.count_nonzero(equal, axis=1) - excess[tied]
        take[tied] = (values > level) | (equal & (np.cumsum(equal, axis=1) <= wanted[:, None]))
        flat = np.flatnonzero(take)
    return flat.reshape(n, k) - np.arange(n)[:, None] * m


def _ascending_key(values: np.ndarray) -> np.ndarray:
    """int64 keys in [0, 2**32) with the order of the float32 ``values`` (-0.0 == 0.0; no NaN)."""
    bits = (values + np.float32(0)).view(np.int32)
    return (bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))).astype(np.int64) + 2**31


def _group_starts(sorted_groups: np.ndarray) -> np.ndarray:
    """Index of the first element of each run in a sorted 1-d array."""
    if sorted_groups.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_groups[1:] != sorted_groups[:-1])))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: the output is ~20 small acyclic dicts per question, and collection passes that
    walk them while they are built cost a quarter of the post-processing time and free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_inputs(example_ids, offsets, start_logits, end_logits, n_best, max_answer_length):
    if n_best <= 0:
        raise InputError(f"n_best must be >= 1, got {n_best}; pass --n_best 1 or more")
    if max_answer_length <= 0:
        raise InputError(
            f"max_answer_length must be >= 1, got {max_answer_length}; pass --max_answer_length 1 or more"
        )
    offsets = np.asarray(offsets)
    if not np.issubdtype(offsets.dtype, np.integer):
        raise InputError(
            f"offsets must be an integer array, got {offsets.dtype}; build it with offsets_array()"
        )
    start_logits = np.asarray(start_logits, dtype=np.float32)
    end_logits = np.asarray(end_logits, dtype=np.float32)
    if start_logits.ndim != 2 or start_logits.shape != end_logits.shape:
        raise InputError(
            f"start_logits {start_logits.shape} and end_logits {end_logits.shape} must both be (N, L); "
            "pass the logits of the eval features"
        )
    if offsets.shape != (*start_logits.shape, 2) or len(example_ids) != len(start_logits):
        raise InputError(
            f"offsets {offsets.shape}, example_ids ({len(example_ids)},) and logits {start_logits.shape} do not "
            "match; expected offsets (N, L, 2) and N example ids for (N, L) logits from the same eval features"
        )
    if not (np.isfinite(start_logits).all() and np.isfinite(end_logits).all()):
        raise InputError("start_logits / end_logits contain NaN or inf; check the model outputs")
    return offsets, start_logits, end_logits


def postprocess_predictions(
    examples: Iterable[dict[str, Any]],
    example_ids: Sequence[str],
    offsets: np.ndarray,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = 30,
    version_2: bool = False,
    null_threshold: float = 0.0,
) -> PostprocessResult:
    """Turn the logits of all eval windows into answers, n-best lists and (v2) null odds.

    Args:
        examples (`Iterable[dict]`): the questions, rows with ``"id"`` and ``"context"`` (a list, a
            `SquadExamples` or a ``datasets.Dataset``); every question gets a prediction.
        example_ids (`Sequence[str]`): the question id of each window, length N.
        offsets (`np.ndarray` of shape (N, L, 2)): character offsets per token, ``-1`` for non-context tokens
            (see :func:`offsets_array`).
        start_logits (`np.ndarray` of shape (N, L)): start logits (cast to float32).
        end_logits (`np.ndarray` of shape (N, L)): end logits (cast to float32).
        n_best (`int`, defaults to 20): top start / end positions per window and entries per n-best list.
        max_answer_length (`int`, defaults to 30): longest answer, in tokens.
        version_2 (`bool`, defaults to `False`): SQuAD 2.0: allow the null answer and report null odds.
        null_threshold (`float`, defaults to 0.0): answer ``""`` when ``null_score - best_span_score`` exceeds it.

    Returns:
        :class:`PostprocessResult`. A question without any valid span gets ``""``, score 0.0 and (v1) a single
        empty n-best entry with probability 1.0; its v2 null odds are ``null_score - 0.0``, as in the example.

    Example:
        >>> import numpy as np
        >>> offsets = np.array([[[-1, -1], [0, 5], [6, 11]]])
        >>> logits = np.array([[0.0, 5.0, 1.0]], dtype=np.float32)
        >>> res = postprocess_predictions([{"id": "q", "context": "hello world"}], ["q"], offsets, logits, logits)
        >>> res.predictions
        {'q': 'hello'}
    """
    offsets, start_logits, end_logits = _check_inputs(
        example_ids, offsets, start_logits, end_logits, n_best, max_answer_length
    )
    if hasattr(examples, "column_names"):  # datasets.Dataset: read whole columns
        ids, contexts = list(examples["id"]), list(examples["context"])
    else:
        records = list(examples)
        ids, contexts = [row["id"] for row in records], [row["context"] for row in records]
    index_of = {qid: i for i, qid in enumerate(ids)}
    try:
        feat_ex = np.fromiter((index_of[qid] for qid in example_ids), dtype=np.int64, count=len(example_ids))
    except KeyError as err:
        raise InputError(
            f"feature example_id {err.args[0]!r} is not among the {len(ids)} examples; "
            "pass the examples the eval features were built from"
        ) from None
    n_feat, length = start_logits.shape
    n_ex = len(ids)

    # Top-k starts and ends per window, in ascending token order: (N, k), flattened to "slots" below.
    k = min(n_best, length)
    s_idx, e_idx = _top_k_columns(start_logits, k), _top_k_columns(end_logits, k)
    rows = np.arange(n_feat)[:, None]
    s_pos, e_pos = (s_idx + rows * length).ravel(), (e_idx + rows * length).ravel()
    s_log, e_log = start_logits.reshape(-1).take(s_pos), end_logits.reshape(-1).take(e_pos)
    flat_offsets = offsets.reshape(-1)
    s_char = flat_offsets.take(2 * s_pos).astype(np.int64)
    e_char = flat_offsets.take(2 * e_pos + 1).astype(np.int64)
    e_context = flat_offsets.take(2 * e_pos) >= 0
    # Valid pairs without an (N, k, k) grid: the ends in [start, start + max_answer_length) of a context start
    # are a run of the sorted ends; one searchsorted over all windows (window r shifted by r * shift) finds it.
    shift = length + max_answer_length
    st = np.flatnonzero(s_char >= 0)
    first_end = (s_idx + rows * shift).ravel()[st]
    ends = (e_idx + rows * shift).ravel()
    lo = np.searchsorted(ends, first_end)
    count = np.searchsorted(ends, first_end + max_answer_length) - lo
    st = np.repeat(st, count)
    en = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(len(st))
    in_context = e_context[en]
    st, en = (
        st[in_context],
        en[in_context],
    )  # start / end slot of each candidate, in (window, start, end) order
    score, feat = s_log[st] + e_log[en], st // max(k, 1)
    n_spans = len(st)
    null_score = np.zeros(n_ex, dtype=np.float32)
    if version_2 and n_feat and length:
        # One null candidate per question: the window with the lowest CLS score (the first such window).
        feat_null = start_logits[:, 0] + end_logits[:, 0]
        order = np.argsort((feat_ex << 32) | _ascending_key(feat_null), kind="stable")
        nf = order[_group_starts(feat_ex[order])]
        null_score[feat_ex[nf]] = feat_null[nf]
        slot = len(s_log) + np.arange(len(nf))  # null entries get slots past the end, with char offsets -1
        s_log = np.concatenate((s_log, start_logits[nf, 0]))
        e_log = np.concatenate((e_log, end_logits[nf, 0]))
        minus_one = np.full(len(nf), -1, dtype=np.int64)
        s_char, e_char = np.concatenate((s_char, minus_one)), np.concatenate((e_char, minus_one))
        st, en = np.concatenate((st, slot)), np.concatenate((en, slot))
        score, feat = np.concatenate((score, feat_null[nf])), np.concatenate((feat, nf))

    # Merge windows: a stable sort by (question, -score) keeps the (window, start, end) order of equal scores
    # and puts the null entry (appended last) after spans of equal score.
    cand_ex = feat_ex[feat]
    order = np.argsort((cand_ex << 32) | (2**32 - 1 - _ascending_key(score)), kind="stable")
    cand_ex, st, en, score, is_null = cand_ex[order], st[order], en[order], score[order], order >= n_spans
    first = _group_starts(cand_ex)
    sizes = np.diff(np.append(first, len(cand_ex)))

    # Best span of each question: the first entry of its group, or the second when the first is the null entry.
    best = first + is_null[first]
    ok = best < first + sizes
    span_ex, best = cand_ex[first[ok]], best[ok]
    has_span = np.zeros(n_ex, dtype=bool)
    span_score = np.zeros(n_ex, dtype=np.float32)
    has_span[span_ex], span_score[span_ex] = True, score[best]
    span_text = [""] * n_ex
    for x, a, b in zip(span_ex.tolist(), s_char[st[best]].tolist(), e_char[en[best]].tolist(), strict=True):
        span_text[x] = contexts[x][a:b]
    if version_2:
        odds = null_score.astype(np.float64) - span_score.astype(np.float64)
        answered = has_span & (odds <= null_threshold)
        texts = [text if yes else "" for text, yes in zip(span_text, answered.tolist(), strict=True)]
        pred_score = np.where(answered, span_score, null_score)
    else:
        texts, pred_score = span_text, span_score

    # n-best lists: the first n_best entries of each group, softmax over their scores.
    keep = np.arange(len(cand_ex)) - np.repeat(first, sizes) < n_best
    kept_sizes = np.minimum(sizes, n_best)
    kept_first = np.cumsum(kept_sizes) - kept_sizes
    kex, kst, ken = cand_ex[keep], st[keep], en[keep]
    kscore = score[keep].astype(np.float64)
    exp = np.exp(kscore - np.repeat(kscore[kept_first], kept_sizes))
    prob = exp / np.repeat(np.add.reduceat(exp, kept_first) if len(exp) else exp, kept_sizes)
    columns = (kex, s_char[kst], e_char[ken], prob, s_log[kst], e_log[ken])
    empty = {"text": "", "probability": 1.0, "start_logit": 0.0, "end_logit": 0.0, "start": -1, "end": -1}
    with _gc_paused():
        entries = [
            {
                "text": contexts[x][a:b],
                "probability": p,
                "start_logit": sl,
                "end_logit": el,
                "start": a,
                "end": b,
            }
            for x, a, b, p, sl, el in zip(*(column.tolist() for column in columns), strict=True)
        ]
        lists: list[list[dict[str, Any]] | None] = [None] * n_ex
        for x, i, n in zip(cand_ex[first].tolist(), kept_first.tolist(), kept_sizes.tolist(), strict=True):
            lists[x] = entries[i : i + n]
        nbest = {qid: [dict(empty)] if lst is None else lst for qid, lst in zip(ids, lists, strict=True)}
    return PostprocessResult(
        predictions=dict(zip(ids, texts, strict=True)),
        nbest=nbest,
        null_odds=dict(zip(ids, odds.tolist(), strict=True)) if version_2 else {},
        scores=dict(zip(ids, pred_score.tolist(), strict=True)),
    )
