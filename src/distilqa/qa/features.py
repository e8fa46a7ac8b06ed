"""Question + context -> model features: overlapping windows, character offsets and gold token positions.

Long contexts are cut into windows of ``max_seq_length`` tokens that overlap by ``doc_stride`` tokens; the
question is cut to ``max_query_length`` tokens first, so every window has room for context. Train features
carry ``start_positions`` / ``end_positions`` (the CLS index 0 when the answer is not inside the window or the
question is unanswerable); eval features carry ``example_id`` and ``offset_mapping`` with ``[-1, -1]`` at every
position that is not a context token, which is what :mod:`distilqa.qa.postprocess` reads.

Works with tokenizers that return ``token_type_ids`` (BERT) and those that do not (DistilBERT); needs a fast
(Rust) tokenizer for character offsets.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from distilqa.errors import InputError

NOT_CONTEXT = [-1, -1]


@dataclass(frozen=True)
class FeatureParams:
    """How examples become windows. Part of every teacher-cache fingerprint.

    Args:
        max_seq_length (`int`, defaults to 384): tokens per window, question and special tokens included.
        doc_stride (`int`, defaults to 128): tokens of overlap between consecutive windows of one context.
        max_query_length (`int`, defaults to 64): questions longer than this are cut to this many tokens.
    """

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


WINDOW = FeatureParams()  # the one home of the 384 / 128 / 64 window defaults (configs, CLI, benchmarks)


def validate_feature_params(tokenizer, params: FeatureParams) -> None:
    """Raise :class:`InputError` for combinations the tokenizer would reject (or panic on) later."""
    for name in ("max_seq_length", "doc_stride", "max_query_length"):
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"{name} must be a positive integer, got {value!r}; pass --{name} N with N >= 1")
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(
            f"tokenizer {type(tokenizer).__name__} is not a fast tokenizer; distilqa needs character offsets "
            "(save the model with a tokenizer.json, or load it with use_fast=True)"
        )
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 100_000 and params.max_seq_length > limit:
        raise InputError(
            f"max_seq_length {params.max_seq_length} exceeds the tokenizer's model_max_length {limit}; "
            f"pass --max_seq_length {limit} or less"
        )
    special = tokenizer.num_special_tokens_to_add(pair=True)
    room = params.max_seq_length - params.max_query_length - special
    if room <= 0:
        raise InputError(
            f"max_seq_length {params.max_seq_length} leaves no room for context after max_query_length "
            f"{params.max_query_length} and {special} special tokens; raise --max_seq_length or lower --max_query_length"
        )
    if params.doc_stride >= room:
        raise InputError(
            f"doc_stride {params.doc_stride} must be smaller than the context room per window "
            f"(max_seq_length {params.max_seq_length} - max_query_length {params.max_query_length} - "
            f"{special} special tokens = {room}); lower --doc_stride (e.g. {room // 2}) or --max_query_length"
        )


def _cut_questions(tokenizer, questions: list[str], max_query_length: int) -> list[str]:
    """Strip leading spaces and cut each question to ``max_query_length`` tokens (at a token boundary)."""
    questions = [q.lstrip() for q in questions]
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    cut = []
    for question, offsets in zip(questions, encoded["offset_mapping"], strict=True):
        if len(offsets) > max_query_length:
            question = question[: offsets[max_query_length - 1][1]]
        cut.append(question)
    return cut


def _tokenize(tokenizer, batch: dict[str, list], params: FeatureParams):
    if tokenizer.padding_side != "right":
        raise InputError(
            "the tokenizer pads on the left; distilqa expects right padding (set tokenizer.padding_side='right')"
        )
    return tokenizer(
        _cut_questions(tokenizer, batch["question"], params.max_query_length),
        batch["context"],
        truncation="only_second",
        max_length=params.max_seq_length,
        stride=params.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )


def count_windows(tokenizer, questions: list[str], contexts: list[str], params: FeatureParams) -> list[int]:
    """How many windows (features) each question/context pair makes with ``params``, as the eval features cut them.

    The same tokenization as :func:`prepare_eval_features` without padding or offsets; a fast tokenizer is not
    safe to call from two threads at once, so give this one its own copy where another thread predicts.
    """
    if not questions:
        return []
    encoded = tokenizer(
        _cut_questions(tokenizer, list(questions), params.max_query_length),
        list(contexts),
        truncation="only_second",
        max_length=params.max_seq_length,
        stride=params.doc_stride,
        return_overflowing_tokens=True,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    counts = [0] * len(questions)
    for sample in encoded["overflow_to_sample_mapping"]:
        counts[sample] += 1
    return counts


def _context_range(sequence_ids: list[int | None]) -> tuple[int, int]:
    """First and last token index of the context (sequence 1) in one window."""
    first = sequence_ids.index(1)
    last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
    return first, last


CONTEXT_MASK = "context_mask"
ANSWER_OUTSIDE = "answer_outside"


def prepare_train_features(
    batch: dict[str, list],
    tokenizer,
    params: FeatureParams,
    context_mask: bool = False,
    answer_outside: bool = False,
) -> dict[str, list]:
    """Tokenize a batch of examples (columns as lists) into training windows with gold token positions.

    Args:
        batch (`dict[str, list]`): columns ``question``, ``context``, ``answers`` (as in ``Dataset.map(batched=True)``).
        tokenizer: a fast tokenizer.
        params (:class:`FeatureParams`): window sizes.
        context_mask (`bool`, defaults to `False`): also return a ``context_mask`` column, 1 at the context tokens
            of each window (not the question, special tokens or padding); the SQuAD 2.0 null-margin loss reads it.
        answer_outside (`bool`, defaults to `False`): also return an ``answer_outside`` column, 1 for a window
            labelled with the null position although its question has an answer (outside this window).

    Returns:
        `dict[str, list]`: ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the tokenizer makes them),
        ``start_positions``, ``end_positions`` (0, the CLS token, when the answer is not fully in the window)
        and ``example_index`` (position of the source example in ``batch``); ``context_mask`` and
        ``answer_outside`` when asked.
    """
    encoded = _tokenize(tokenizer, batch, params)
    mapping = encoded.pop("overflow_to_sample_mapping")
    offsets_all = encoded.pop("offset_mapping")
    starts, ends, outside = [], [], []
    for i, offsets in enumerate(offsets_all):
        answers = batch["answers"][mapping[i]]
        outside.append(int(bool(answers["text"])))  # cleared below when the answer is inside the window
        if not answers["text"]:
            starts.append(0)
            ends.append(0)
            continue
        char_start = answers["answer_start"][0]
        char_end = char_start + len(answers["text"][0])
        first, last = _context_range(encoded.sequence_ids(i))
        if offsets[first][0] > char_start or offsets[last][1] < char_end:
            starts.append(0)
            ends.append(0)
            continue
        start = first
        while start <= last and offsets[start][0] <= char_start:
            start += 1
        end = last
        while end >= first and offsets[end][1] >= char_end:
            end -= 1
        starts.append(start - 1)
        ends.append(end + 1)
        outside[-1] = 0
    encoded["start_positions"] = starts
    encoded["end_positions"] = ends
    encoded["example_index"] = list(mapping)
    if context_mask:
        encoded[CONTEXT_MASK] = [
            [int(s == 1) for s in encoded.sequence_ids(i)] for i in range(len(offsets_all))
        ]
    if answer_outside:
        encoded[ANSWER_OUTSIDE] = outside
    return dict(encoded)


def prepare_eval_features(batch: dict[str, list], tokenizer, params: FeatureParams) -> dict[str, list]:
    """Tokenize a batch of examples into evaluation windows.

    Returns:
        `dict[str, list]`: model inputs plus ``example_id`` (the question id of each window) and
        ``offset_mapping`` with ``[-1, -1]`` wherever the token is not part of the context.
    """
    encoded = _tokenize(tokenizer, batch, params)
    mapping = encoded.pop("overflow_to_sample_mapping")
    offset_mapping = []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        seq = encoded.sequence_ids(i)
        offset_mapping.append([list(o) if s == 1 else NOT_CONTEXT for o, s in zip(offsets, seq, strict=True)])
    encoded["offset_mapping"] = offset_mapping
    encoded["example_id"] = [batch["id"][j] for j in mapping]
    return dict(encoded)


def _map(examples, fn, tokenizer, params: FeatureParams, desc: str, keep: tuple[str, ...] = (), **kwargs):
    import datasets

    validate_feature_params(tokenizer, params)
    dataset = examples if isinstance(examples, datasets.Dataset) else examples.to_dataset()
    features = dataset.map(
        fn,
        batched=True,
        remove_columns=[c for c in dataset.column_names if c not in keep],
        fn_kwargs={"tokenizer": tokenizer, "params": params, **kwargs},
        desc=desc,
        load_from_cache_file=False,
        # Nothing is cached, so the fingerprint only has to be unique; without one, datasets pickles the whole
        # tokenizer to hash fn_kwargs on every call (about 0.1-0.8 s: most of a single question's latency).
        new_fingerprint=uuid.uuid4().hex,
    )
    if len(features) == 0:
        raise InputError("no features were built: the dataset is empty")
    return features


def build_train_features(
    examples, tokenizer, params: FeatureParams, context_mask: bool = False, answer_outside: bool = False
):
    """All training windows of ``examples`` (SquadExamples or a ``datasets.Dataset``) as a ``datasets.Dataset``;
    with ``context_mask`` / ``answer_outside``, plus those columns (see :func:`prepare_train_features`)."""
    extra = {k: True for k, on in (("context_mask", context_mask), ("answer_outside", answer_outside)) if on}
    return _map(examples, prepare_train_features, tokenizer, params, "Building train features", **extra)


def build_eval_features(examples, tokenizer, params: FeatureParams):
    """All evaluation windows of ``examples`` as a ``datasets.Dataset`` (model inputs + example_id + offsets)."""
    return _map(examples, prepare_eval_features, tokenizer, params, "Building eval features")


def model_input_names(features: Any) -> list[str]:
    """The columns of ``features`` that are model inputs (not bookkeeping like offsets or ids)."""
    bookkeeping = {
        "example_id", "offset_mapping", "example_index", "start_positions", "end_positions", CONTEXT_MASK,
        ANSWER_OUTSIDE,
    }  # fmt: skip
    return [c for c in features.column_names if c not in bookkeeping]


SEQUENCE_COLUMNS = ("input_ids", "attention_mask", "token_type_ids", CONTEXT_MASK)


def trim_padding_collator(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate features padded to max_seq_length, then cut the batch to its longest real sequence.

    Windows of short contexts are mostly padding; cutting the common trailing padding of a batch changes no
    logit of a real token (the attention mask hides padding) and saves that compute. Positions are counted
    from the left, so gold positions and cached teacher logits (sliced to the batch width) still line up.
    """
    from transformers import default_data_collator

    batch = default_data_collator(rows)
    width = int(batch["attention_mask"].sum(dim=1).max())
    for name in SEQUENCE_COLUMNS:
        if name in batch:
            batch[name] = batch[name][:, :width]
    return batch
