"""Teacher-labelled extra training questions: TinyBERT-style word replacement, answered by the teacher.

A 3,000-question training set is small for distillation: the student sees the teacher's soft answers only
where there are questions. TinyBERT (Jiao et al., 2020, section 3.1) enlarges the transfer set by replacing
words of each training sentence with near neighbours and letting the teacher label the result; "Knowledge
distillation: a good teacher is patient and consistent" (Beyer et al., 2022) makes the same point for images.
For extractive QA we perturb the *question* only, so the context (and its offsets) is untouched:

1. the candidates are the tokenizer's whole-word, alphabetic vocabulary entries; a word's neighbours are the
   ``neighbours`` candidates whose input embeddings (taken from the teacher) are nearest by cosine;
2. each question gets ``copies`` variants in which every replaceable word (a single vocabulary token) is swapped
   with probability ``replace_prob`` for a random one of its neighbours (capitalisation kept); variants equal to
   the question or to an earlier variant are dropped;
3. the teacher answers every variant (the usual n-best post-processing); its best span becomes the variant's
   gold answer, so ``distill`` needs nothing new: the KL term follows the teacher's full distribution and the
   cross-entropy term its best span. On SQuAD 2.0 data a null prediction makes the variant unanswerable.

The result is an ordinary SQuAD JSON file (the original questions first, unless ``include_original=False``);
each variant records ``augmented_from`` (the original id) and ``teacher_probability``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from distilqa.errors import InputError
from distilqa.qa.data import SquadExamples

WORD = re.compile(r"[A-Za-z]+")


@dataclass
class AugmentConfig:
    """How many variants per question and how they are made.

    Args:
        copies (`int`, defaults to 4): variants per question (TinyBERT uses 20 for small GLUE sets).
        replace_prob (`float`, defaults to 0.3): probability that each replaceable word is swapped (TinyBERT: 0.4).
        neighbours (`int`, defaults to 15): candidates per word, nearest first (TinyBERT: 15).
        min_probability (`float`, defaults to 0.0): drop variants whose teacher answer has a lower probability.
        seed (`int`, defaults to 42): the random choices.
        include_original (`bool`, defaults to True): keep the original questions (with their gold answers).
    """

    copies: int = 4
    replace_prob: float = 0.3
    neighbours: int = 15
    min_probability: float = 0.0
    seed: int = 42
    include_original: bool = True

    def __post_init__(self):
        if self.copies < 1:
            raise InputError(f"copies (--copies) must be >= 1, got {self.copies}")
        if not 0.0 < self.replace_prob <= 1.0:
            raise InputError(f"replace_prob (--replace_prob) must be in (0, 1], got {self.replace_prob}")
        if self.neighbours < 1:
            raise InputError(f"neighbours (--neighbours) must be >= 1, got {self.neighbours}")
        if not 0.0 <= self.min_probability < 1.0:
            raise InputError(
                f"min_probability (--min_probability) must be in [0, 1), got {self.min_probability}"
            )


class NeighbourTable:
    """Nearest whole-word vocabulary entries by cosine similarity of input embeddings.

    Args:
        tokenizer: a fast tokenizer; its vocabulary gives the candidates and decides which words are replaceable.
        embeddings (`np.ndarray`): (vocab_size, hidden) input embeddings of a model that uses this tokenizer.
        k (`int`): neighbours kept per word.
    """

    def __init__(self, tokenizer, embeddings: np.ndarray, k: int = 15):
        self.tokenizer = tokenizer
        self.k = k
        # A candidate is an entry that reads as one alphabetic word and is what the tokenizer makes of that word
        # after a space (WordPiece "city", byte-level BPE "Ġcity", SentencePiece "▁city"): never a word piece.
        special = set(tokenizer.all_special_tokens)
        entries = [
            (i, t) for t, i in tokenizer.get_vocab().items() if t not in special and i < len(embeddings)
        ]
        texts = [tokenizer.convert_tokens_to_string([t]).strip() for _, t in entries]
        readable = [(i, text) for (i, _), text in zip(entries, texts, strict=True) if WORD.fullmatch(text)]
        encoded = (
            tokenizer([" " + text for _, text in readable], add_special_tokens=False)["input_ids"]
            if readable
            else []
        )
        candidates = sorted((i, text) for (i, text), ids in zip(readable, encoded, strict=True) if ids == [i])
        if len(candidates) <= k:
            raise InputError(
                f"the tokenizer has {len(candidates)} whole-word entries; need more than neighbours={k}"
            )
        self.ids = np.array([i for i, _ in candidates])
        self.words = [text for _, text in candidates]
        matrix = np.asarray(embeddings, dtype=np.float32)[self.ids]
        self.unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        self.row = {word: r for r, word in enumerate(self.words)}
        self._by_id = {i: word for i, word in candidates}
        self._keys: dict[str, str | None] = {}
        self._cache: dict[str, list[str]] = {}

    def key(self, word: str) -> str | None:
        """The candidate a question word is tokenized to (``"River"`` -> ``"river"`` when uncased), or None when
        the word is several tokens (it is then never replaced)."""
        if word not in self._keys:
            ids = self.tokenizer(" " + word, add_special_tokens=False)["input_ids"]
            self._keys[word] = self._by_id.get(ids[0]) if len(ids) == 1 else None
        return self._keys[word]

    def prefetch(self, entries: set[str], chunk: int = 1024) -> None:
        """Compute the neighbours of many entries at once (one matrix product per chunk)."""
        todo = sorted(e for e in entries if e not in self._cache)
        for begin in range(0, len(todo), chunk):
            part = todo[begin : begin + chunk]
            rows = np.array([self.row[e] for e in part])
            sims = self.unit[rows] @ self.unit.T
            sims[np.arange(len(part)), rows] = -np.inf  # never the word itself
            top = np.argpartition(-sims, self.k, axis=1)[:, : self.k]
            order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
            for entry, best in zip(part, np.take_along_axis(top, order, axis=1), strict=True):
                self._cache[entry] = [self.words[j] for j in best]

    def __call__(self, entry: str) -> list[str]:
        if entry not in self._cache:
            self.prefetch({entry})
        return self._cache[entry]


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def question_variants(
    question: str, table: NeighbourTable, copies: int, replace_prob: float, rng: np.random.Generator
) -> list[str]:
    """Up to ``copies`` distinct variants of ``question`` (none equal to it); fewer when it has few replaceable words."""
    spans = [(m.start(), m.end(), table.key(m.group())) for m in WORD.finditer(question)]
    spans = [(s, e, key) for s, e, key in spans if key is not None]
    if not spans:
        return []
    variants: list[str] = []
    for _ in range(copies * 3):  # a few extra draws make up for duplicates
        if len(variants) == copies:
            break
        pieces, last = [], 0
        for start, end, key in spans:
            pieces.append(question[last:start])
            word = question[start:end]
            if rng.random() < replace_prob:
                choices = table(key)
                word = _match_case(choices[rng.integers(len(choices))], word)
            pieces.append(word)
            last = end
        text = "".join(pieces) + question[last:]
        if text != question and text not in variants:
            variants.append(text)
    return variants


def augment_examples(
    examples: SquadExamples,
    predictor,
    table: NeighbourTable,
    config: AugmentConfig,
    batch_size: int = 32,
    options=None,
    progress: bool = True,
) -> tuple[SquadExamples, dict[str, Any]]:
    """The examples plus teacher-labelled question variants, and a summary of what was made.

    Args:
        examples (:class:`SquadExamples`): the training questions.
        predictor (:class:`distilqa.qa.predictor.QAPredictor`): the teacher that answers the variants.
        table (:class:`NeighbourTable`): word neighbours (built from the teacher's embeddings).
        config (:class:`AugmentConfig`): copies, replacement probability, filter, seed.
    """
    rng = np.random.default_rng(config.seed)
    table.prefetch(
        {key for row in examples for m in WORD.finditer(row["question"]) if (key := table.key(m.group()))}
    )
    taken = set(examples.ids)
    variants = []
    for row in examples:
        for n, text in enumerate(
            question_variants(row["question"], table, config.copies, config.replace_prob, rng), 1
        ):
            qid = f"{row['id']}-aug{n}"
            while qid in taken:
                qid += "x"
            taken.add(qid)
            variants.append(
                {
                    "id": qid,
                    "title": row.get("title", ""),
                    "context": row["context"],
                    "question": text,
                    "augmented_from": row["id"],
                }
            )
    made = len(variants)
    if variants:
        unlabelled = SquadExamples(
            [{**v, "answers": {"text": [], "answer_start": []}} for v in variants],
            examples.version_2,
            "variants",
        )
        result = predictor.predict_examples(
            unlabelled,
            batch_size=batch_size,
            options=options,
            version_2=examples.version_2,
            progress=progress,
        )
        labelled = []
        for variant in variants:
            answer = result.predictions[variant["id"]]
            best = result.best_entry(variant["id"])
            probability = (
                round(float(best["probability"]), 4) if best is not None else 0.0
            )  # as written to the file
            if probability < config.min_probability or (not answer and not examples.version_2):
                continue  # a SQuAD 1.1 file has no unanswerable questions: a variant without a span is dropped
            if answer:
                variant["answers"] = {"text": [answer], "answer_start": [int(best["start"])]}
            else:  # SQuAD 2.0: the teacher says "no answer"
                variant["answers"] = {"text": [], "answer_start": []}
            variant["teacher_probability"] = probability
            labelled.append(variant)
        variants = labelled
    rows = (list(examples.rows) if config.include_original else []) + variants
    if not rows:
        raise InputError(
            "no questions left: no variant could be made or all fell below min_probability; lower --min_probability"
        )
    summary = {
        "questions": len(examples),
        "variants made": made,
        "variants kept": len(variants),
        "unanswerable variants": sum(1 for v in variants if not v["answers"]["text"]),
        "rows written": len(rows),
    }
    return SquadExamples(rows, examples.version_2, f"{examples.source} + teacher-labelled variants"), summary


def keep_confident(squad: dict[str, Any], min_probability: float) -> dict[str, Any]:
    """A written variant file (SQuAD JSON) with the variants whose teacher answer has a probability under
    ``min_probability`` dropped: the file ``augment`` writes with that ``min_probability`` and otherwise the same
    settings (the variants and the teacher's answers do not depend on the filter). Rows without
    ``augmented_from`` (the original questions) are kept; paragraphs left empty are dropped."""
    if not 0.0 <= min_probability < 1.0:
        raise InputError(f"min_probability must be in [0, 1), got {min_probability}")

    def kept(qa: dict[str, Any]) -> bool:
        if "augmented_from" not in qa:
            return True
        if "teacher_probability" not in qa:
            raise InputError(
                f"variant {qa.get('id')!r} has no teacher_probability: filter only files written by distilqa augment"
            )
        return qa["teacher_probability"] >= min_probability

    data = []
    for article in squad["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            qas = [qa for qa in paragraph["qas"] if kept(qa)]
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            data.append({**article, "paragraphs": paragraphs})
    return {**squad, "data": data}


def to_squad_json(examples: SquadExamples) -> dict[str, Any]:
    """The official SQuAD layout (articles -> paragraphs -> qas): rows grouped by title, then context, in order of
    first appearance, so each variant sits in its original's paragraph."""
    data: list[dict[str, Any]] = []
    paragraphs: dict[tuple[str, str], dict[str, Any]] = {}
    articles: dict[str, dict[str, Any]] = {}
    for row in examples:
        title = row.get("title", "")
        if title not in articles:
            articles[title] = {"title": title, "paragraphs": []}
            data.append(articles[title])
        if (title, row["context"]) not in paragraphs:
            paragraphs[(title, row["context"])] = {"context": row["context"], "qas": []}
            articles[title]["paragraphs"].append(paragraphs[(title, row["context"])])
        answers = [
            {"text": t, "answer_start": s}
            for t, s in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True)
        ]
        qa = {"id": row["id"], "question": row["question"], "answers": answers}
        if examples.version_2:
            qa["is_impossible"] = not answers
        qa.update({k: row[k] for k in ("augmented_from", "teacher_probability") if k in row})
        paragraphs[(title, row["context"])]["qas"].append(qa)
    return {"version": "v2.0" if examples.version_2 else "1.1", "data": data}
