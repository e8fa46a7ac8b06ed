"""Configuration of QA fine-tuning: the data, the model, and ``QuestionAnsweringConfig`` (a ``TrainingArguments``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from transformers import TrainingArguments

from distilqa.errors import InputError
from distilqa.qa.features import WINDOW, FeatureParams

# The lowest meaningful value of the numbers of a training run (TrainingArguments' and distilqa's); ``None`` stays
# allowed where the field allows it. (lowest, whether the lowest itself is allowed)
LOWEST = {
    "learning_rate": (0, True), "weight_decay": (0, True), "adam_epsilon": (0, True), "max_grad_norm": (0, True),
    "adam_beta1": (0, True), "adam_beta2": (0, True), "label_smoothing_factor": (0, True),
    "num_train_epochs": (0, True), "warmup_steps": (0, True), "warmup_ratio": (0, True), "max_steps": (-1, True),
    "per_device_train_batch_size": (1, True), "per_device_eval_batch_size": (1, True),
    "gradient_accumulation_steps": (1, True), "eval_accumulation_steps": (1, True),
    "dataloader_num_workers": (0, True), "logging_steps": (0, False), "save_steps": (0, False),
    "eval_steps": (0, False), "seed": (0, True), "data_seed": (0, True), "max_seq_length": (1, True),
    "doc_stride": (1, True), "max_query_length": (1, True),
}  # fmt: skip
BELOW_ONE = ("adam_beta1", "adam_beta2", "label_smoothing_factor", "warmup_ratio")


def check_numbers(config) -> None:
    """Refuse NaN / infinity in any number of a config dataclass, and a value below :data:`LOWEST`.

    Raises:
        InputError: one line naming the option.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name, None)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            raise InputError(
                f"{f.name} must be a finite number, got {value}; pass --{f.name} NUMBER or leave it out"
            )
        if f.name in LOWEST:
            low, inclusive = LOWEST[f.name]
            if value < low or (value == low and not inclusive):
                bound = f">= {low}" if inclusive else f"> {low}"
                raise InputError(f"{f.name} must be {bound}, got {value}; pass --{f.name} with such a value")
        if f.name in BELOW_ONE and value >= 1:
            raise InputError(f"{f.name} must be below 1, got {value}; pass --{f.name} with such a value")


# Checkpoints kept when the user sets no save_total_limit (the newest ones; the best one is kept on top).
DEFAULT_SAVE_TOTAL_LIMIT = 2


@dataclass
class DataArguments:
    """Where the SQuAD data comes from."""

    train_file: str | None = field(
        default=None, metadata={"help": "training data: SQuAD .json/.jsonl file or hub dataset name"}
    )
    eval_file: str | None = field(
        default=None, metadata={"help": "evaluation data: SQuAD .json/.jsonl file or hub dataset name"}
    )
    train_split: str = field(default="train", metadata={"help": "split of a hub training dataset"})
    eval_split: str = field(default="validation", metadata={"help": "split of a hub evaluation dataset"})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "use only the first N training questions"}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "use only the first N evaluation questions"}
    )

    def __post_init__(self):
        if not self.train_file:
            raise InputError(
                "no training data: pass --train_file FILE (SQuAD .json/.jsonl or a hub dataset name)"
            )
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InputError(f"{name} must be >= 1, got {value}; pass --{name} N or leave it out")


@dataclass
class ModelArguments:
    """The model to fine-tune with ``distilqa train``."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "model folder or hub name (a QA model or a base encoder)"}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow custom modelling code from the checkpoint"}
    )

    def __post_init__(self):
        if not self.model_name_or_path:
            raise InputError("no model: pass --model_name_or_path FOLDER_OR_HUB_NAME")


@dataclass
class QuestionAnsweringConfig(TrainingArguments):
    """``TrainingArguments`` plus windowing and post-processing for extractive QA.

    Evaluation runs the package's post-processing and SQuAD metrics, so ``metric_for_best_model`` can be
    ``"f1"`` / ``"exact_match"`` (v1.1) or ``"f1"`` / ``"exact"`` / ``"best_f1"`` (v2.0).
    """

    max_seq_length: int = field(
        default=WINDOW.max_seq_length, metadata={"help": "tokens per window, question included"}
    )
    doc_stride: int = field(
        default=WINDOW.doc_stride, metadata={"help": "tokens of overlap between windows of a long context"}
    )
    max_query_length: int = field(
        default=WINDOW.max_query_length, metadata={"help": "questions are cut to this many tokens"}
    )
    n_best: int = field(default=20, metadata={"help": "candidate starts/ends per window in post-processing"})
    max_answer_length: int = field(default=30, metadata={"help": "longest answer in tokens"})
    null_threshold: float = field(
        default=0.0, metadata={"help": "SQuAD 2.0: answer '' when null - best span score exceeds this"}
    )

    save_total_limit: int | None = field(
        default=DEFAULT_SAVE_TOTAL_LIMIT,
        metadata={
            "help": f"checkpoints to keep in output_dir (default {DEFAULT_SAVE_TOTAL_LIMIT}): the newest ones, and "
            "the best one with load_best_model_at_end; 0 keeps every checkpoint"
        },
    )

    force_bf16: bool = field(
        default=False,
        metadata={
            "help": "allow --bf16 on a CPU without native bf16 (AMX / AVX512-BF16), where it is emulated and slow"
        },
    )

    def __post_init__(self):
        if not self.output_dir:
            raise InputError(
                "no output folder: pass --output_dir DIR (checkpoints, the final model and metrics go there)"
            )
        check_numbers(self)
        if self.bf16 and not self.force_bf16 and (self.use_cpu or not _accelerator_available()):
            from distilqa.infra.precision import cpu_has_native_bf16

            if not cpu_has_native_bf16():
                raise InputError(
                    "--bf16 on a CPU without native bf16 (AMX or AVX512-BF16) runs emulated, slower than fp32: "
                    "leave --bf16 out, or pass --force_bf16 true to train in bf16 anyway"
                )
        if self.save_total_limit is not None and self.save_total_limit < 0:
            raise InputError(
                f"save_total_limit must be >= 0, got {self.save_total_limit}; pass --save_total_limit 0 to keep "
                f"every checkpoint, or leave it out to keep {DEFAULT_SAVE_TOTAL_LIMIT}"
            )
        for name in ("n_best", "max_answer_length"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}; pass --{name} 1 or more")
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model = (
                "f1"  # the SQuAD headline metric, not HF's default eval_loss (we have none)
            )
        super().__post_init__()
        if self.dataloader_pin_memory and not _accelerator_available():
            self.dataloader_pin_memory = (
                False  # pinning needs an accelerator; torch warns at every epoch otherwise
            )

    @property
    def feature_params(self) -> FeatureParams:
        return FeatureParams(self.max_seq_length, self.doc_stride, self.max_query_length)


def _accelerator_available() -> bool:
    import torch

    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:
        return accelerator.is_available()
    return torch.cuda.is_available()
