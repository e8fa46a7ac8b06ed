"""``DistillationTrainer``: DistilBERT's task-specific SQuAD distillation on the Trainer.

It extends :class:`distilqa.qa.trainer.QuestionAnsweringTrainer` (so evaluation, post-processing and EM/F1 come
for free) and changes three things:

* ``compute_loss`` returns :func:`distilqa.distill.losses.distillation_loss` of the student against the teacher's
  logits: from the online teacher (eval mode, no gradients, on the student's device, optionally in bf16/fp16),
  or from a :class:`distilqa.distill.cache.store.TeacherCache` looked up by each window's ``feature_index``; with
  ``alpha_hidden > 0`` it adds TinyBERT's hidden-state term (:func:`distilqa.distill.losses.hidden_state_loss` over
  :func:`distilqa.distill.losses.uniform_layer_map`) and with ``alpha_attention > 0`` MiniLMv2's self-attention
  relation term between the last layers (:func:`distilqa.distill.losses.attention_relation_loss`, projections caught
  by :func:`distilqa.distill.attention.capture_projections`); both need the online teacher; with ``alpha_null > 0``
  the SQuAD 2.0 null-margin term, over each window's ``context_mask`` column (online, cached or projected teacher);
* the columns kept for the batches are the union of the student's and the teacher's ``forward`` inputs (the
  Trainer would otherwise drop ``token_type_ids`` for a DistilBERT student and starve a BERT teacher), and each
  model then gets only the inputs its ``forward`` names;
* the teacher's own EM/F1 on the eval set can be logged once at the start (:meth:`evaluate_teacher`).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

import torch

from distilqa.distill.attention import attention_projections, capture_projections
from distilqa.distill.config import ATTENTION_NEEDS_ONLINE_TEACHER, HIDDEN_NEEDS_ONLINE_TEACHER
from distilqa.distill.losses import (
    attention_relation_loss,
    distillation_loss,
    hidden_state_loss,
    uniform_layer_map,
)
from distilqa.errors import InputError
from distilqa.infra.models import forward_parameters
from distilqa.qa.features import ANSWER_OUTSIDE, CONTEXT_MASK
from distilqa.qa.trainer import QuestionAnsweringTrainer

logger = logging.getLogger(__name__)

LABELS = ("start_positions", "end_positions")
CACHE_INDEX = "feature_index"


def forward_inputs(model) -> set[str]:
    """The argument names of ``model.forward`` as a set (see :func:`distilqa.infra.models.forward_parameters`)."""
    return set(forward_parameters(model))


def check_loss_terms(student_config, teacher_config, args) -> None:
    """The hidden-state term needs equal hidden sizes; the attention relation term needs relation heads that
    divide both. Model configs suffice, so a command can refuse before it loads any weights."""
    sizes = (student_config.hidden_size, teacher_config.hidden_size)
    if args.alpha_hidden > 0 and sizes[0] != sizes[1]:
        raise InputError(
            f"alpha_hidden > 0 needs the same hidden size in student and teacher, got {sizes[0]} and {sizes[1]}; pass --alpha_hidden 0"
        )
    heads = args.attention_relation_heads
    if args.alpha_attention > 0:
        for role, size in zip(("student", "teacher"), sizes):
            if size % heads:
                raise InputError(
                    f"--attention_relation_heads {heads} does not divide the {role}'s hidden size {size}; choose a divisor of both hidden sizes"
                )


class DistillationTrainer(QuestionAnsweringTrainer):
    """Distill ``teacher`` into ``model`` (the student) with DistilBERT's SQuAD loss.

    Args:
        model: the student, an ``AutoModelForQuestionAnswering``.
        teacher: the fine-tuned teacher model, or `None` when ``teacher_cache`` holds all its logits.
        teacher_cache (:class:`distilqa.distill.cache.store.TeacherCache`, *optional*): precomputed teacher logits for
            every training window; the train features must then carry a ``feature_index`` column.
        args (:class:`distilqa.distill.config.DistillationConfig`): ``temperature``, ``alpha_ce``, ``alpha_squad``,
            ``alpha_hidden``, ``alpha_attention``, ``teacher_dtype`` plus all Trainer arguments.
    """

    def __init__(self, model=None, teacher=None, args=None, teacher_cache=None, projector=None, **kwargs):
        if teacher is None and teacher_cache is None:
            raise ValueError("DistillationTrainer needs a teacher model or a teacher_cache")
        super().__init__(model=model, args=args, **kwargs)
        self.teacher_cache = teacher_cache
        self.teacher = None
        if teacher is not None:
            dtype = getattr(torch, self.args.teacher_dtype)
            self.teacher = teacher.to(device=self.args.device, dtype=dtype).eval()
            self.teacher.requires_grad_(False)
        self._student_inputs = forward_inputs(self.model)
        self._teacher_inputs = forward_inputs(self.teacher) if self.teacher is not None else set()
        # Another tokenizer (distilqa.distill.projection): the online teacher reads its own windows of each batch's
        # examples and its distributions are projected onto the student's positions.
        self._projected = None
        if projector is not None and self.teacher is not None:
            from distilqa.distill.projection import ProjectedTeacher, check_cross_tokenizer_terms

            check_cross_tokenizer_terms(self.args)
            batch = max(1, int(self.args.per_device_eval_batch_size))
            self._projected = ProjectedTeacher(self.teacher, projector, self._teacher_inputs, batch)
            self._teacher_inputs = set()  # the student's batch holds no teacher inputs
        # soft, hard, hidden, attention, null sums and count since the last log
        self._parts = torch.zeros(6, dtype=torch.float64)
        self._layer_map = None
        if self.args.alpha_hidden > 0 or self.args.alpha_attention > 0:
            if self.teacher is None:
                raise InputError(
                    HIDDEN_NEEDS_ONLINE_TEACHER
                    if self.args.alpha_hidden > 0
                    else ATTENTION_NEEDS_ONLINE_TEACHER
                )
            check_loss_terms(self.model.config, self.teacher.config, self.args)
        if self.args.alpha_attention > 0:
            self._check_attention_distillation()

    def _check_attention_distillation(self) -> None:
        # DataParallel replicas share the hooks and would overwrite each other's captures
        if self.args.n_gpu > 1:
            raise InputError(
                "alpha_attention > 0 cannot run under DataParallel (several GPUs, one process): launch with torchrun"
            )
        heads = self.args.attention_relation_heads
        for role, model in (("student", self.model), ("teacher", self.teacher)):
            try:
                projections = attention_projections(model)
            except ValueError as error:
                raise InputError(
                    f"alpha_attention > 0: the {role}'s {error}; pass --alpha_attention 0"
                ) from None
            for projection in projections:  # grouped-query attention makes k/v narrower than hidden_size
                if projection.out_features % heads:
                    raise InputError(
                        f"--attention_relation_heads {heads} does not divide the {role}'s attention projections "
                        f"({projection.out_features} wide); choose a divisor of every projection width"
                    )

    def _set_signature_columns_if_needed(self):
        # Keep the union of both models' inputs (and the cache index); HF keeps only the student's.
        if self._signature_columns is None:
            super()._set_signature_columns_if_needed()
            extra = set(self._teacher_inputs) | {CACHE_INDEX, CONTEXT_MASK, ANSWER_OUTSIDE, *LABELS}
            self._signature_columns = list(dict.fromkeys([*self._signature_columns, *sorted(extra)]))

    def _only(self, inputs: dict, names: set[str]) -> dict:
        return {k: v for k, v in inputs.items() if k in names and k not in LABELS}

    @torch.no_grad()
    def teacher_outputs(
        self, inputs: dict, hidden: bool = False, online: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
        """The teacher's (start, end) logits for a batch, float32, on the batch's device, and its hidden states
        when ``hidden``; ``hidden`` or ``online`` run the teacher model even when a cache is loaded."""
        if self.teacher_cache is not None and CACHE_INDEX in inputs and not (hidden or online):
            start, end = self.teacher_cache.lookup(inputs[CACHE_INDEX])
            length = inputs["input_ids"].shape[1]
            device = inputs["input_ids"].device
            return start[:, :length].to(device).float(), end[:, :length].to(device).float(), None
        if self._projected is not None:
            if CACHE_INDEX not in inputs:
                raise ValueError(
                    f"cross-tokenizer distillation needs the '{CACHE_INDEX}' column in the batch"
                )
            logits = self._projected(inputs[CACHE_INDEX])
            length, device = inputs["input_ids"].shape[1], inputs["input_ids"].device
            return logits[:, 0, :length].to(device), logits[:, 1, :length].to(device), None
        if self.teacher is None:
            raise ValueError(
                f"the batch has no '{CACHE_INDEX}' column for the teacher cache and no teacher model is loaded"
            )
        extra = {"output_hidden_states": True} if hidden else {}
        out = self.teacher(**self._only(inputs, self._teacher_inputs), **extra)
        return out.start_logits.float(), out.end_logits.float(), out.hidden_states if hidden else None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        hidden, attention = self.args.alpha_hidden > 0, self.args.alpha_attention > 0
        alpha_null = getattr(self.args, "alpha_null", 0.0)
        if alpha_null > 0 and CONTEXT_MASK not in inputs:
            raise ValueError(
                f"alpha_null > 0 needs the '{CONTEXT_MASK}' column in the batch: build the train features with "
                "build_train_features(..., context_mask=True)"
            )
        null_window_weight = getattr(self.args, "null_window_weight", 1.0)
        if null_window_weight != 1.0 and ANSWER_OUTSIDE not in inputs:
            raise ValueError(
                f"null_window_weight != 1 needs the '{ANSWER_OUTSIDE}' column in the batch: build the train features "
                "with build_train_features(..., answer_outside=True)"
            )
        with capture_projections(self.teacher) if attention else nullcontext() as teacher_projections:
            teacher_start, teacher_end, teacher_states = self.teacher_outputs(
                inputs, hidden=hidden, online=attention
            )
        with capture_projections(model) if attention else nullcontext() as student_projections:
            outputs = model(
                **self._only(inputs, self._student_inputs),
                **({"output_hidden_states": True} if hidden else {}),
            )
        parts = distillation_loss(
            outputs.start_logits,
            outputs.end_logits,
            teacher_start,
            teacher_end,
            inputs["start_positions"],
            inputs["end_positions"],
            temperature=self.args.temperature,
            alpha_ce=self.args.alpha_ce,
            alpha_squad=self.args.alpha_squad,
            alpha_null=alpha_null,
            context_mask=inputs.get(CONTEXT_MASK) if alpha_null > 0 else None,
            max_answer_length=self.args.max_answer_length,
            answer_outside=inputs.get(ANSWER_OUTSIDE) if null_window_weight != 1.0 else None,
            null_window_weight=null_window_weight,
        )
        loss, hidden_part, attention_part = parts.loss, 0.0, 0.0
        if hidden:
            if self._layer_map is None:
                self._layer_map = uniform_layer_map(len(outputs.hidden_states) - 1, len(teacher_states) - 1)
            term = hidden_state_loss(
                outputs.hidden_states, teacher_states, inputs["attention_mask"], self._layer_map
            )
            loss = loss + self.args.alpha_hidden * term
            hidden_part = term.item()
        if attention:
            if model.training and torch.is_grad_enabled() and not student_projections[0].requires_grad:
                raise InputError(
                    "alpha_attention > 0: the student's attention projections carry no gradient (reentrant gradient "
                    "checkpointing?); pass --activation_checkpointing_kwargs '{\"use_reentrant\": false}'"
                )
            term = attention_relation_loss(
                student_projections,
                teacher_projections,
                inputs["attention_mask"],
                self.args.attention_relation_heads,
            )
            loss = loss + self.args.alpha_attention * term
            attention_part = term.item()
        if model.training:
            self._parts += torch.tensor(
                [parts.soft.item(), parts.hard.item(), hidden_part, attention_part, parts.null.item(), 1.0],
                dtype=torch.float64,
            )
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # Evaluation runs the student alone: give it only the inputs its forward names.
        inputs = {k: v for k, v in inputs.items() if k in self._student_inputs}
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:  # the two loss terms, averaged over steps and processes like HF averages "loss"
            parts = self._parts
            if self.args.world_size > 1:  # every process logs at the same steps, so the collective is safe
                parts = self.accelerator.reduce(parts.to(self.args.device), reduction="sum").cpu()
            soft, hard, hidden, attention, null, count = parts.tolist()
            if count > 0:
                logs = {**logs, "loss_soft": round(soft / count, 4), "loss_hard": round(hard / count, 4)}
                if self.args.alpha_hidden > 0:
                    logs["loss_hidden"] = round(hidden / count, 4)
                if self.args.alpha_attention > 0:
                    logs["loss_attention"] = round(attention / count, 4)
                if getattr(self.args, "alpha_null", 0.0) > 0:
                    logs["loss_null"] = round(null / count, 4)
            self._parts.zero_()
        super().log(logs, *args, **kwargs)

    def evaluate_teacher(self, metric_key_prefix: str = "teacher") -> dict[str, float]:
        """EM/F1 of the teacher on the eval set, logged once (``teacher_exact_match``, ``teacher_f1``, ...)."""
        if self.teacher is None or self.eval_dataset is None:
            return {}
        student, self.model = self.model, self.teacher
        student_inputs, self._student_inputs = self._student_inputs, self._teacher_inputs
        try:
            return self.evaluate(metric_key_prefix=metric_key_prefix)
        finally:
            self.model, self._student_inputs = student, student_inputs
