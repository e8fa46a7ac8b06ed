"""The DistilBERT SQuAD distillation loss, as a pure function.

    loss = alpha_ce * T^2 * (KL(p_t^start || p_s^start) + KL(p_t^end || p_s^end)) / 2
         + alpha_squad * (CE(start_s, gold_start) + CE(end_s, gold_end)) / 2
         [+ alpha_null * T^2 * KL(sigmoid(m_t / T) || sigmoid(m_s / T))]

with ``p = softmax(logits / T)`` over the sequence positions and KL averaged over the batch ("batchmean").
The ``T^2`` factor keeps the gradient scale of the soft term independent of the temperature (Hinton et al.,
2015). Sanh et al. (2019), DistilBERT, section 4.2: the student is fine-tuned on SQuAD with this loss, the
teacher a fine-tuned BERT-base. Everything is computed in float32 whatever the training precision.

The optional SQuAD 2.0 term distils the has-answer decision itself: ``m`` is a window's null margin (see
:func:`null_margin`), the quantity post-processing compares with the null threshold, and the term is the binary KL
between the teacher's and the student's ``sigmoid(m / T)``. The KL over positions carries the teacher's null mass
only implicitly; this term makes the student match the teacher's null-vs-best-span decision directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


@dataclass
class DistillationLoss:
    """The total loss and its parts (for logging); ``null`` is 0 when the null-margin term is off."""

    loss: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor
    null: torch.Tensor | None = None

    def __post_init__(self):
        if self.null is None:
            self.null = self.hard.new_zeros(())


def soft_cross_entropy(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, mean over the batch.

    Args:
        student, teacher (`torch.Tensor` of shape (batch, seq_len)): logits.
        temperature (`float`): T > 0.
    """
    log_p_student = F.log_softmax(student.float() / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher.float() / temperature, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


def span_cross_entropy(
    start: torch.Tensor, end: torch.Tensor, start_positions, end_positions, weight=None
) -> torch.Tensor:
    """The usual extractive-QA loss: mean of start and end cross-entropy; positions are clamped into range.

    With ``weight`` (`torch.Tensor` of shape (batch,)), each window's ``(CE_start + CE_end) / 2`` is multiplied by its
    weight and the sum divided by the batch size (not by the sum of the weights: a window of weight 1 weighs what it
    weighs without weights, and a batch of weight-0 windows gives 0)."""
    length = start.size(-1)
    start_positions = start_positions.clamp(0, length - 1)
    end_positions = end_positions.clamp(0, length - 1)
    if weight is None:
        return (
            F.cross_entropy(start.float(), start_positions) + F.cross_entropy(end.float(), end_positions)
        ) / 2
    per_window = (
        F.cross_entropy(start.float(), start_positions, reduction="none")
        + F.cross_entropy(end.float(), end_positions, reduction="none")
    ) / 2
    return (per_window * weight.float()).sum() / per_window.numel()


NULL_INDEX = (
    0  # the null (CLS) position of every window, as in distilqa.qa.features and distilqa.qa.postprocess
)

# Score of an invalid span: finite, so a window without a valid span gives a finite (huge) margin and no NaN.
_INVALID_SPAN = -1e9


def null_margin(
    start: torch.Tensor, end: torch.Tensor, context_mask: torch.Tensor, max_answer_length: int = 30
) -> torch.Tensor:
    """Per window ``(start[null] + end[null]) - best valid span score``, float32: what post-processing compares
    with the null threshold (a window answers "" when its margin exceeds the threshold).

    A valid span ``(i, j)`` has ``i <= j < i + max_answer_length`` with both ``i`` and ``j`` context tokens; its score
    is ``start[i] + end[j]``. The null position is 0 (the CLS token). Exact: the maximum over a band of
    ``max_answer_length`` ends per start, a (batch, seq_len, max_answer_length) tensor. The gradient reaches the
    null logits and the logits of the best span.

    Args:
        start, end (`torch.Tensor` of shape (batch, seq_len)): start and end logits.
        context_mask (`torch.Tensor` of shape (batch, seq_len)): 1 (or True) at context tokens, 0 at the question,
            special tokens and padding.
        max_answer_length (`int`, defaults to 30): longest span, in tokens.

    Returns:
        `torch.Tensor` of shape (batch,). A window without a valid span gets a margin of about ``1e9``.
    """
    if max_answer_length < 1:
        raise ValueError(f"max_answer_length must be >= 1, got {max_answer_length}")
    start, end = start.float(), end.float()
    context = context_mask.bool()
    width = max_answer_length - 1
    # ends[b, i, k] = end[b, i + k]: the ends of the spans starting at i
    ends = F.pad(end, (0, width), value=_INVALID_SPAN).unfold(1, max_answer_length, 1)
    end_in_context = F.pad(context, (0, width), value=False).unfold(1, max_answer_length, 1)
    valid = context[:, :, None] & end_in_context
    scores = (start[:, :, None] + ends).masked_fill(~valid, _INVALID_SPAN)
    best = scores.flatten(1).max(dim=1).values
    return start[:, NULL_INDEX] + end[:, NULL_INDEX] - best


def null_margin_loss(
    student_margin: torch.Tensor, teacher_margin: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(Bernoulli(sigmoid(m_t / T)) || Bernoulli(sigmoid(m_s / T)))``, mean over windows, float32.

    The binary KL of the teacher's and the student's "no answer" probabilities; 0 when the margins agree. Computed
    with ``logsigmoid`` (``log(1 - sigmoid(x)) = logsigmoid(-x)``), stable for large margins.

    Args:
        student_margin, teacher_margin (`torch.Tensor` of shape (batch,)): see :func:`null_margin`.
        temperature (`float`): T > 0.
    """
    s = student_margin.float() / temperature
    t = teacher_margin.detach().float() / temperature
    p_t = torch.sigmoid(t)
    kl = p_t * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p_t) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.mean() * temperature**2


def distillation_loss(
    student_start: torch.Tensor,
    student_end: torch.Tensor,
    teacher_start: torch.Tensor,
    teacher_end: torch.Tensor,
    start_positions: torch.Tensor,
    end_positions: torch.Tensor,
    temperature: float = 2.0,
    alpha_ce: float = 0.5,
    alpha_squad: float = 0.5,
    alpha_null: float = 0.0,
    context_mask: torch.Tensor | None = None,
    max_answer_length: int = 30,
    answer_outside: torch.Tensor | None = None,
    null_window_weight: float = 1.0,
) -> DistillationLoss:
    """DistilBERT's task-specific distillation loss for extractive QA.

    Args:
        student_start, student_end (`torch.Tensor` of shape (batch, seq_len)): student logits.
        teacher_start, teacher_end (`torch.Tensor` of shape (batch, seq_len)): teacher logits (no gradient).
        start_positions, end_positions (`torch.LongTensor` of shape (batch,)): gold token positions.
        temperature (`float`, defaults to 2.0): softmax temperature T of the soft term.
        alpha_ce (`float`, defaults to 0.5): weight of the soft (teacher) term.
        alpha_squad (`float`, defaults to 0.5): weight of the hard (gold span) term.
        alpha_null (`float`, defaults to 0.0): weight of the SQuAD 2.0 null-margin term
            (:func:`null_margin_loss` of :func:`null_margin` of student and teacher); 0: off, and the loss is
            exactly the two-term loss.
        context_mask (`torch.Tensor` of shape (batch, seq_len), *optional*): context tokens of each window (the
            student's windows; the teacher's logits are aligned to them); needed when ``alpha_null > 0``.
        max_answer_length (`int`, defaults to 30): longest span of the null margin.
        answer_outside (`torch.Tensor` of shape (batch,), *optional*): 1 for a window labelled with the null position
            although its question has an answer (in another window); needed when ``null_window_weight != 1``.
        null_window_weight (`float`, defaults to 1.0): weight of those windows in the hard term (see
            :func:`span_cross_entropy`); 1: the plain mean.

    Returns:
        :class:`DistillationLoss` with ``loss`` (scalar, float32), ``soft``, ``hard`` and ``null`` (0 when off).

    Example::

        >>> s = torch.zeros(2, 8); t = torch.randn(2, 8)
        >>> distillation_loss(s, s, t, t, torch.tensor([1, 2]), torch.tensor([3, 4])).loss.shape
        torch.Size([])
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    teacher_start, teacher_end = teacher_start.detach(), teacher_end.detach()
    soft = (
        soft_cross_entropy(student_start, teacher_start, temperature)
        + soft_cross_entropy(student_end, teacher_end, temperature)
    ) / 2
    weight = None
    if null_window_weight != 1.0:
        if answer_outside is None:
            raise ValueError("null_window_weight != 1 needs the answer_outside flag of the windows")
        outside = answer_outside.to(student_start.device).bool()
        weight = torch.where(outside, null_window_weight, 1.0)
    hard = span_cross_entropy(student_start, student_end, start_positions, end_positions, weight)
    loss = alpha_ce * soft + alpha_squad * hard
    if alpha_null <= 0:
        return DistillationLoss(loss, soft.detach(), hard.detach())
    if context_mask is None:
        raise ValueError("alpha_null > 0 needs the context_mask of the windows")
    null = null_margin_loss(
        null_margin(student_start, student_end, context_mask, max_answer_length),
        null_margin(teacher_start, teacher_end, context_mask, max_answer_length),
        temperature,
    )
    return DistillationLoss(loss + alpha_null * null, soft.detach(), hard.detach(), null.detach())


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """TinyBERT's uniform mapping of hidden states: student state ``m`` learns teacher state ``m * N / M``.

    States are counted as in ``output_hidden_states`` (0 is the embedding output, ``i`` the output of layer
    ``i``), so the embeddings match the embeddings and the last layer the last layer; a 3-layer student of a
    6-layer teacher gives ``[(0, 0), (1, 2), (2, 4), (3, 6)]``.
    """
    if not 0 < student_layers <= teacher_layers:
        raise ValueError(
            f"a student with {student_layers} layers cannot be mapped onto a teacher with {teacher_layers}"
        )
    return [(m, round(m * teacher_layers / student_layers)) for m in range(student_layers + 1)]


def hidden_state_loss(
    student_states, teacher_states, attention_mask: torch.Tensor, layer_map
) -> torch.Tensor:
    """Mean squared error between mapped hidden states over the real (unpadded) tokens, float32.

    Args:
        student_states, teacher_states (tuples of `torch.Tensor` of shape (batch, seq_len, hidden)): the
            ``hidden_states`` outputs of both models (same hidden size).
        attention_mask (`torch.Tensor` of shape (batch, seq_len)): 1 for real tokens.
        layer_map (list of (student index, teacher index)): e.g. :func:`uniform_layer_map`.

    Returns:
        The squared error per hidden unit, averaged over real tokens and over the mapped pairs.
    """
    mask = attention_mask.float().unsqueeze(-1)
    units = mask.sum() * student_states[0].size(-1)
    total = student_states[0].new_zeros((), dtype=torch.float32)
    for s, t in layer_map:
        diff = student_states[s].float() - teacher_states[t].detach().float()
        total = total + (diff.pow(2) * mask).sum() / units
    return total / len(layer_map)


def _relation_scores(
    projection: torch.Tensor, attention_mask: torch.Tensor, relation_heads: int, padded: bool | None = None
) -> torch.Tensor:
    """``X X^T / sqrt(d)`` per relation head, float32, padded keys at -1e9 (finite: 0 * -1e9 stays 0, no NaN).

    ``padded`` (whether the mask has any 0; found out when None, a GPU sync) picks the padding bias added inside
    the matmul (``baddbmm``, one pass less over (batch, heads, len, len)) or a plain ``bmm``."""
    batch, length, hidden = projection.shape
    if hidden % relation_heads:
        raise ValueError(f"{relation_heads} relation heads do not divide the hidden size {hidden}")
    size = hidden // relation_heads
    with torch.autocast(projection.device.type, enabled=False):  # fp16 cannot hold the -1e9 bias
        heads = (
            projection.float()
            .view(batch, length, relation_heads, size)
            .transpose(1, 2)
            .reshape(-1, length, size)
        )
        if padded is None:
            padded = not bool(attention_mask.all())
        if padded:
            pad = (~attention_mask.bool()).float().mul_(-1e9)[:, None, None, :]
            bias = pad.expand(batch, relation_heads, 1, length).reshape(-1, 1, length)
            scores = torch.baddbmm(bias, heads, heads.transpose(1, 2), alpha=size**-0.5)
        else:  # the common case with long SQuAD contexts
            scores = torch.bmm(heads * size**-0.5, heads.transpose(1, 2))
    return scores.view(batch, relation_heads, length, length)


def self_attention_relations(
    projection: torch.Tensor, attention_mask: torch.Tensor, relation_heads: int, padded: bool | None = None
) -> torch.Tensor:
    """MiniLMv2's self-attention relation of one projection (queries, keys or values), as log-probabilities.

    The projection is split into ``relation_heads`` heads whatever the model's own head count, and each head gives
    ``log_softmax(X X^T / sqrt(d))`` over the real (unpadded) tokens; padded keys get probability 0.

    Args:
        projection (`torch.Tensor` of shape (batch, seq_len, hidden)): the output of a query, key or value projection.
        attention_mask (`torch.Tensor` of shape (batch, seq_len)): 1 for real tokens.
        relation_heads (`int`): must divide ``hidden``.
        padded (`bool`, *optional*): whether ``attention_mask`` has any 0, if the caller knows.

    Returns:
        `torch.Tensor` of shape (batch, relation_heads, seq_len, seq_len), float32.
    """
    return F.log_softmax(_relation_scores(projection, attention_mask, relation_heads, padded), dim=-1)


# elements of one (sequences, heads, len, len) relation tensor: 16 MB in float32, under glibc's 32 MB mmap ceiling
RELATION_CHUNK_ELEMENTS = 1 << 22


class _RelationCrossEntropy(torch.autograd.Function):
    """``-sum(weight * sum_k p_t log_softmax(s))`` with the gradient ``weight * (softmax(s) - p_t)`` written out.

    Autograd through ``log_softmax`` + ``kl_div`` keeps and revisits several (batch, heads, len, len) tensors;
    this keeps one (``distilqa benchmark training`` times the term's share of a training step, mode ``attention``).
    """

    @staticmethod
    def forward(ctx, student_scores, teacher_probs, weight):
        log_s = F.log_softmax(student_scores, dim=-1)
        ctx.save_for_backward(log_s, teacher_probs, weight)
        return -(torch.linalg.vecdot(teacher_probs, log_s) * weight).sum()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        log_s, teacher_probs, weight = ctx.saved_tensors
        return log_s.exp().sub_(teacher_probs).mul_((weight * grad)[..., None]), None, None


def attention_relation_loss(
    student_projections, teacher_projections, attention_mask: torch.Tensor, relation_heads: int = 12
) -> torch.Tensor:
    """MiniLMv2's multi-head self-attention relation distillation (Wang et al., 2021), float32.

    For each of the query-query, key-key and value-value relations of one student layer and one teacher layer,
    ``KL(teacher relation || student relation)`` over the keys, averaged over the real query tokens and the
    relation heads; then averaged over the three relations. Student and teacher may differ in hidden size and
    head count (both are re-split into ``relation_heads``); they must see the same tokens.

    Args:
        student_projections, teacher_projections (sequences of 3 `torch.Tensor` of shape (batch, seq_len, hidden)):
            the query, key and value projections (see :func:`distilqa.distill.attention.capture_projections`).
        attention_mask (`torch.Tensor` of shape (batch, seq_len)): 1 for real tokens.
        relation_heads (`int`, defaults to 12): heads each projection is split into.

    Returns:
        Scalar tensor; 0 when the student's relations equal the teacher's.
    """
    real = attention_mask.float()
    batch, length = real.shape
    # mean over real queries and heads, as a (batch, heads, queries) weight
    weight = (real[:, None, :] / (real.sum() * relation_heads)).expand(batch, relation_heads, length)
    pairs = list(zip(student_projections, teacher_projections, strict=True))
    # On the CPU a few sequences at a time: (batch, heads, len, len) float32 tensors of 50 MB and more are mmap-ed
    # and page-faulted afresh at every step by the C allocator, which made this term 2.5x slower on 2 cores.
    chunk = batch
    if attention_mask.device.type == "cpu":
        chunk = max(1, RELATION_CHUNK_ELEMENTS // (relation_heads * length * length))
    padded = not bool(attention_mask.all())  # once per call: on a GPU each such question is a sync
    total = real.new_zeros(())
    with torch.autocast(attention_mask.device.type, enabled=False):  # vecdot would autocast to fp16/bf16
        for rows in (slice(i, i + chunk) for i in range(0, batch, chunk)):
            mask, w = attention_mask[rows], weight[rows]
            for student, teacher in pairs:
                with torch.no_grad():
                    log_t = self_attention_relations(teacher[rows], mask, relation_heads, padded)
                    p_t = log_t.exp()
                    teacher_term = (
                        torch.linalg.vecdot(p_t, log_t) * w
                    ).sum()  # KL = teacher_term + cross-entropy
                student_scores = _relation_scores(student[rows], mask, relation_heads, padded)
                total = total + teacher_term + _RelationCrossEntropy.apply(student_scores, p_t, w)
    return total / 3
