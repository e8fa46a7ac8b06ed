"""Span distillation across tokenizers: the teacher's start/end distributions carried to the student's tokens.

A teacher and a student with different tokenizers cut the same question and context into different tokens and
windows, so their logits cannot be compared position by position. Both read the same characters, though, and the
offset mappings say which characters each token covers. For every student training window this module builds
teacher logits over the *student's* positions, which the usual ``T^2 * KL`` term
(:func:`distilqa.distill.losses.distillation_loss`) then takes unchanged.

**One teacher window.** Each teacher window's logits become probabilities ``softmax(z / T)`` over its real
(non-padding) positions. The start mass of a teacher context token goes to the student context token that holds
its first character (in a gap between student tokens, e.g. a space: the next student token); the end mass goes to
the student token that holds its last character (in a gap: the previous one). Mass on a teacher token outside the
student window's context (the teacher points at text this window does not have) and mass on the teacher's null
position (index 0, CLS) both go to the student's null position, just as a gold answer outside a window is
labelled with the null position. Question tokens are carried the same way through the question's characters;
the other special tokens and the padding positions by their order. Several teacher tokens that land on one student
token add their mass; a student token that receives none gets the logit :data:`NO_MASS`. The result is returned
as logits ``T * log(mass)``, so that ``softmax(logits / T)`` is the projected distribution.

**Several teacher windows.** The teacher windows of the same example are ranked by how much of the student
window's context they cover (ties: the one with less context outside it first). When one of them holds the
student window's whole context, the first such window alone gives the distribution. Otherwise (the teacher's
windows hold fewer characters than the student's) every teacher window that overlaps it is projected and each
student token takes the largest mass any of them gives it, as SQuAD post-processing takes the best span over
windows; the null position takes the smallest "not here" mass (null plus outside) among them, since a window
that does not hold the answer cannot say that the student window does not hold it either. The question, special
and padding positions come from the first-ranked window. So the distributions are merged in probability space;
the softmax renormalises the result.

**Identity.** With the same tokenizer and windowing, each student window has a teacher window with exactly its
tokens, which speaks for all of them alone; every position then gets its own teacher logit shifted by one
constant (the log normaliser), so every softmax over any prefix of the window, and so the loss, equals today's
same-tokenizer path to float rounding (``tests/distill/test_projection.py``).

Example::

    >>> projector = SpanProjector(teacher_tokenizer, student_tokenizer, examples, student_features, params, 2.0)
    >>> runner = ProjectedTeacher(teacher_model, projector, batch_size=32)
    >>> logits = runner([0, 5, 2])          # (3, 2, student max_seq_length) float32, student positions
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from distilqa.errors import InputError
from distilqa.qa.features import FeatureParams, _tokenize

logger = logging.getLogger(__name__)

QUESTION, CONTEXT, SPECIAL, PAD = 0, 1, 2, 3
# The logit of a student position that receives no teacher mass: exp(NO_MASS / T) is 0 in float32 for any T the
# config allows in practice, and it stays finite (float16 holds it), so the KL term has no 0 * inf.
NO_MASS = -1.0e4
PROJECTION_VERSION = (
    "char-offsets-1"  # part of the teacher cache's fingerprint: change it when the rule changes
)
NULL = 0  # the null (no answer) position of every window: the CLS token, as the features label it


@dataclass
class Layouts:
    """Where each window's tokens come from, for every window of a list of examples (one row per window).

    Attributes:
        example (`np.ndarray` of shape (windows,)): the example each window belongs to.
        role (`np.ndarray` of shape (windows, max_seq_length)): :data:`QUESTION`, :data:`CONTEXT`, :data:`SPECIAL`
            or :data:`PAD` per position.
        start, end (`np.ndarray` of shape (windows, max_seq_length)): character offsets of each token within its
            text (the cut question for question tokens, the context for context tokens); 0 elsewhere.
        inputs (`dict[str, np.ndarray]`): the model inputs (``input_ids``, ``attention_mask``, ...).
    """

    example: np.ndarray
    role: np.ndarray
    start: np.ndarray
    end: np.ndarray
    inputs: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.example)


def window_layouts(tokenizer, examples, params: FeatureParams, batch_size: int = 512) -> Layouts:
    """Tokenize ``examples`` into windows exactly as :func:`distilqa.qa.features.build_train_features` does, keeping
    each token's role and character offsets."""
    dataset = examples if hasattr(examples, "column_names") else examples.to_dataset()
    example, role, start, end, inputs = [], [], [], [], {}
    for first in range(0, len(dataset), batch_size):
        batch = dataset[first : first + batch_size]
        encoded = _tokenize(tokenizer, batch, params)
        mapping = encoded["overflow_to_sample_mapping"]
        for i, offsets in enumerate(encoded["offset_mapping"]):
            sequence = encoded.sequence_ids(i)
            mask = encoded["attention_mask"][i]
            role.append(
                [
                    PAD if not m else SPECIAL if s is None else QUESTION if s == 0 else CONTEXT
                    for s, m in zip(sequence, mask, strict=True)
                ]
            )
            start.append([o[0] for o in offsets])
            end.append([o[1] for o in offsets])
            example.append(first + mapping[i])
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            if name in encoded:
                inputs.setdefault(name, []).extend(encoded[name])
    roles = np.asarray(role, dtype=np.int8)
    return Layouts(
        example=np.asarray(example, dtype=np.int64),
        role=roles,
        start=np.where(roles <= CONTEXT, np.asarray(start), 0).astype(np.int32),
        end=np.where(roles <= CONTEXT, np.asarray(end), 0).astype(np.int32),
        inputs={k: np.asarray(v, dtype=np.int64) for k, v in inputs.items()},
    )


def _log_softmax(logits: np.ndarray, real: np.ndarray, temperature: float) -> np.ndarray:
    """``log softmax(z / T)`` normalised over the real positions (float64; padding keeps its shifted logit)."""
    x = logits.astype(np.float64) / temperature
    top = x[real].max()
    return x - (top + np.log(np.exp(x[real] - top).sum()))


def _locate(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray, side: str) -> np.ndarray:
    """Index of the student token (of one text, sorted by start) that holds each character; a character in a
    gap goes to the next token (``side="start"``) or the previous one (``"end"``); -1 outside the tokens' span."""
    k = np.searchsorted(starts, chars, side="right") - 1
    inside = (k >= 0) & (chars < ends[np.clip(k, 0, None)])
    index = k if side == "end" else np.where(inside, k, k + 1)
    return np.where((chars < starts[0]) | (chars >= ends[-1]), -1, index)


def _add(out: np.ndarray, positions: np.ndarray, values: np.ndarray) -> None:
    np.logaddexp.at(out, positions, values)


def _carry(
    out, lp, t_pos, t_start, t_end, s_pos, s_start, s_end, owner=None, owner_id=None
) -> tuple[float, float]:
    """Add teacher token masses ``lp`` (2, L_t) at ``t_pos`` to the student tokens ``s_pos`` of the same text;
    return the (start, end) log mass that falls outside the student tokens' span. ``owner`` restricts which
    student tokens this teacher window may give mass to (the ones it speaks for)."""
    outside = [-np.inf, -np.inf]
    if len(t_pos) == 0 or len(s_pos) == 0:
        return outside[0], outside[1]
    last = np.maximum(t_start, t_end - 1)  # an empty offset (a token of no characters) ends where it starts
    for side, (chars, how) in enumerate(((t_start, "start"), (last, "end"))):
        index = _locate(chars, s_start, s_end, how)
        values = lp[side, t_pos]
        out_of_span = index < 0
        if out_of_span.any():
            outside[side] = float(np.logaddexp.reduce(values[out_of_span]))
        keep = ~out_of_span
        _add(out[side], s_pos[index[keep]], values[keep])
    return outside[0], outside[1]


def project_window(student: tuple, teachers: list[tuple], temperature: float) -> np.ndarray:
    """Teacher logits over one student window's positions (see the module docstring).

    Args:
        student: ``(role, start, end)`` of the student window, each of shape (L_s,).
        teachers: ``(role, start, end, logits)`` of each teacher window of the same example; ``logits`` of shape
            (2, L_t): start and end logits.
        temperature (`float`): T of the soft term; the projection is done on ``softmax(z / T)``.

    Returns:
        `np.ndarray` of shape (2, L_s), float32: logits whose ``softmax(. / T)`` is the projected distribution.
    """
    role, start, end = student
    out = np.full((2, len(role)), -np.inf)
    context = np.flatnonzero(role == CONTEXT)
    c_start, c_end = start[context], end[context]
    if not teachers:
        raise ValueError("a student window needs the teacher windows of its example")
    windows = []
    for t_role, t_start, t_end, _ in teachers:
        t_context = np.flatnonzero(t_role == CONTEXT)
        low, high = int(t_start[t_context[0]]), int(t_end[t_context[-1]])
        overlap = max(0, min(high, int(c_end[-1])) - max(low, int(c_start[0])))
        windows.append((-overlap, (high - low) - overlap, low, high, t_context))
    order = sorted(range(len(windows)), key=lambda t: (*windows[t][:2], t))
    whole = [t for t in order if windows[t][2] <= c_start[0] and c_end[-1] <= windows[t][3]]
    speakers = whole[:1] or [
        t for t in order if windows[t][0] < 0
    ]  # one window holding it all, else all that overlap
    nulls, primary = [], None
    for t in speakers:
        t_role, t_start, t_end, logits = teachers[t]
        lp = np.stack([_log_softmax(row, t_role != PAD, temperature) for row in logits])
        t_context = windows[t][4]
        mine = np.full_like(out, -np.inf)
        away = _carry(mine, lp, t_context, t_start[t_context], t_end[t_context], context, c_start, c_end)
        np.maximum(out, mine, out=out)
        nulls.append([np.logaddexp(lp[side, NULL], away[side]) for side in (0, 1)])
        if primary is None:
            primary = (t_role, t_start, t_end, lp)
    if primary is None:  # no teacher window reaches this window's text: it says nothing but "not here"
        out[:, NULL] = 0.0
        return np.where(np.isfinite(out), temperature * out, NO_MASS).astype(np.float32)
    out[:, NULL] = np.min(np.asarray(nulls), axis=0)
    t_role, t_start, t_end, lp = primary
    t_question, s_question = np.flatnonzero(t_role == QUESTION), np.flatnonzero(role == QUESTION)
    _carry(
        out,
        lp,
        t_question,
        t_start[t_question],
        t_end[t_question],
        s_question,
        start[s_question],
        end[s_question],
    )
    for kind in (SPECIAL, PAD):  # by order; the null position (the first special) is done above
        t_pos, s_pos = np.flatnonzero(t_role == kind), np.flatnonzero(role == kind)
        t_pos, s_pos = t_pos[t_pos != NULL], s_pos[s_pos != NULL]
        n = min(len(t_pos), len(s_pos))
        for side in (0, 1):
            _add(out[side], s_pos[:n], lp[side, t_pos[:n]])
    logits = temperature * out
    return np.where(np.isfinite(logits), logits, NO_MASS).astype(np.float32)


class SpanProjector:
    """The teacher's windows for the student's training windows, and the projection between them.

    Args:
        teacher_tokenizer, student_tokenizer: fast tokenizers (character offsets are needed).
        examples: the training examples (:class:`distilqa.qa.data.SquadExamples`) the student features come from.
        student_features (`datasets.Dataset`): the student's training windows, in the order
            :func:`distilqa.qa.features.build_train_features` made them (checked).
        params (:class:`distilqa.qa.features.FeatureParams`): the windowing; the teacher windows its own tokens
            with the same numbers.
        temperature (`float`): T of the soft term.
    """

    def __init__(self, teacher_tokenizer, student_tokenizer, examples, student_features, params, temperature):
        self.temperature = float(temperature)
        self.params = params
        self.student = window_layouts(student_tokenizer, examples, params)
        ids = np.asarray(student_features.with_format("numpy", columns=["input_ids"])["input_ids"])
        if ids.shape != self.student.inputs["input_ids"].shape or not np.array_equal(
            ids, self.student.inputs["input_ids"]
        ):
            raise ValueError("the student features are not the windows of these examples in build order")
        self.teacher = window_layouts(teacher_tokenizer, examples, params)
        from distilqa.distill.cache.fingerprint import tokenizer_component

        self.teacher_tokenizer_sha256 = tokenizer_component(teacher_tokenizer)
        order = np.argsort(self.teacher.example, kind="stable")
        bounds = np.searchsorted(self.teacher.example[order], np.arange(len(examples) + 1))
        self._teacher_rows = [order[bounds[e] : bounds[e + 1]] for e in range(len(examples))]

    def __len__(self) -> int:
        return len(self.student)

    def fingerprint(self) -> dict:
        """What the projected rows depend on beyond the student's windows (the teacher cache's fingerprint)."""
        import hashlib

        digest = hashlib.sha256()
        for name in sorted(self.teacher.inputs):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(self.teacher.inputs[name]).tobytes())
        for array in (self.teacher.example, self.teacher.role, self.teacher.start, self.teacher.end):
            digest.update(np.ascontiguousarray(array).tobytes())
        return {
            "method": PROJECTION_VERSION,
            "temperature": self.temperature,
            "teacher_tokenizer": self.teacher_tokenizer_sha256,
            "teacher_windows": digest.hexdigest(),
        }

    @property
    def seq_len(self) -> int:
        return self.student.role.shape[1]

    def teacher_rows(self, student_rows) -> np.ndarray:
        """The teacher windows of the examples of ``student_rows`` (sorted, unique)."""
        examples = np.unique(self.student.example[np.asarray(student_rows, dtype=np.int64)])
        return np.unique(np.concatenate([self._teacher_rows[e] for e in examples]))

    def project(self, student_rows, teacher_rows, teacher_logits: np.ndarray) -> np.ndarray:
        """Logits (len(student_rows), 2, seq_len) float32 over the student positions of ``student_rows``.

        Args:
            teacher_rows: the teacher windows whose logits are given (at least :meth:`teacher_rows`).
            teacher_logits (`np.ndarray` of shape (len(teacher_rows), 2, L_t)).
        """
        at = {int(r): i for i, r in enumerate(teacher_rows)}
        t, s = self.teacher, self.student
        out = np.empty((len(student_rows), 2, self.seq_len), dtype=np.float32)
        for k, row in enumerate(np.asarray(student_rows, dtype=np.int64)):
            windows = [
                (t.role[r], t.start[r], t.end[r], teacher_logits[at[int(r)]])
                for r in self._teacher_rows[s.example[row]]
            ]
            out[k] = project_window((s.role[row], s.start[row], s.end[row]), windows, self.temperature)
        return out


class ProjectedTeacher:
    """The teacher model run on its own windows, projected onto student windows: ``runner(rows)`` gives the
    (len(rows), 2, seq_len) float32 CPU logits of those student training rows, like the same-tokenizer runner.

    Args:
        model: the teacher, in eval mode, on its device and dtype.
        projector (:class:`SpanProjector`).
        input_names: the teacher's ``forward`` inputs.
        batch_size (`int`): teacher windows per forward.
    """

    def __init__(self, model, projector: SpanProjector, input_names, batch_size: int = 32):
        self.model = model
        self.projector = projector
        self.names = [n for n in projector.teacher.inputs if n in set(input_names)]
        self.batch_size = max(1, int(batch_size))

    def __call__(self, rows):
        import torch

        rows = np.asarray(torch.as_tensor(rows).cpu(), dtype=np.int64).reshape(-1)
        teacher_rows = self.projector.teacher_rows(rows)
        device = next(self.model.parameters()).device
        parts = []
        with torch.inference_mode():
            for first in range(0, len(teacher_rows), self.batch_size):
                chosen = teacher_rows[first : first + self.batch_size]
                # Full windows, padding included, as the teacher cache stores them: the padding positions'
                # logits are carried to the student's padding (by order), which a trimmed batch would not have.
                batch = {
                    n: torch.from_numpy(self.projector.teacher.inputs[n][chosen]).to(device)
                    for n in self.names
                }
                out = self.model(**batch)
                parts.append(torch.stack([out.start_logits, out.end_logits], dim=1).float().cpu().numpy())
        projected = self.projector.project(rows, teacher_rows, np.concatenate(parts))
        return torch.from_numpy(projected)


def tokenizers_differ(teacher_tokenizer, student_tokenizer, teacher: str, student: str, config) -> bool:
    """Whether ``distill`` must project (printing one line saying so); raises when it may not.

    Raises:
        InputError: the tokenizers differ and ``--require_same_tokenizer`` is set, or a loss term that compares
            positions (hidden states, attention relations) is on.
    """
    from distilqa.infra.models import check_same_tokenizer, same_tokenizer

    if same_tokenizer(teacher_tokenizer, student_tokenizer):
        return False
    if config.require_same_tokenizer:
        check_same_tokenizer(teacher_tokenizer, student_tokenizer, teacher, student)
    check_cross_tokenizer_terms(config)
    if getattr(config, "process_index", 0) == 0:
        logger.info(
            "Teacher %s and student %s tokenize differently: the teacher reads its own windows and its start/end "
            "distributions are carried to the student's tokens through character offsets "
            "(--require_same_tokenizer refuses instead)",
            teacher,
            student,
        )
    return True


def check_cross_tokenizer_terms(config) -> None:
    """The hidden-state and attention-relation terms compare positions: they need one tokenizer."""
    for name in ("alpha_hidden", "alpha_attention"):
        if getattr(config, name, 0) > 0:
            raise InputError(
                f"{name} > 0 compares teacher and student position by position, which needs one tokenizer; the "
                f"teacher and student tokenize differently: pass --{name} 0"
            )
