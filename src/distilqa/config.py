"""Configuration dataclasses: data, models, and the Trainer arguments of QA fine-tuning and distillation.

The trainer configs subclass ``transformers.TrainingArguments`` (as TRL's ``SFTConfig`` does), so every
Trainer option, the distillation knobs and ``Trainer.hyperparameter_search`` all see one object. One parser
(:mod:`distilqa.cli.args`) reads them from YAML/JSON files and the command line, whose values win.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from distilqa.errors import InputError
from distilqa.features import FeatureParams


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
class DistillModelArguments:
    """Teacher and student of ``distilqa distill``."""

    teacher: str | None = field(default=None, metadata={"help": "fine-tuned QA teacher: folder or hub name"})
    student: str | None = field(
        default=None, metadata={"help": "student to train: folder or hub name (e.g. from init-student)"}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow custom modelling code from the checkpoints"}
    )

    def __post_init__(self):
        for name in ("teacher", "student"):
            if not getattr(self, name):
                raise InputError(f"no {name}: pass --{name} FOLDER_OR_HUB_NAME")


@dataclass
class QuestionAnsweringConfig(TrainingArguments):
    """``TrainingArguments`` plus windowing and post-processing for extractive QA.

    Evaluation runs the package's post-processing and SQuAD metrics, so ``metric_for_best_model`` can be
    ``"f1"`` / ``"exact_match"`` (v1.1) or ``"f1"`` / ``"exact"`` / ``"best_f1"`` (v2.0).
    """

    max_seq_length: int = field(default=384, metadata={"help": "tokens per window, question included"})
    doc_stride: int = field(
        default=128, metadata={"help": "tokens of overlap between windows of a long context"}
    )
    max_query_length: int = field(default=64, metadata={"help": "questions are cut to this many tokens"})
    n_best: int = field(default=20, metadata={"help": "candidate starts/ends per window in post-processing"})
    max_answer_length: int = field(default=30, metadata={"help": "longest answer in tokens"})
    null_threshold: float = field(
        default=0.0, metadata={"help": "SQuAD 2.0: answer '' when null - best span score exceeds this"}
    )

    def __post_init__(self):
        if not self.output_dir:
            raise InputError(
                "no output folder: pass --output_dir DIR (checkpoints, the final model and metrics go there)"
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


TEACHER_DTYPES = ("float32", "bfloat16", "float16")
HIDDEN_NEEDS_ONLINE_TEACHER = (
    "alpha_hidden > 0 needs the online teacher (hidden states are not cached): drop --teacher_cache"
)
ATTENTION_NEEDS_ONLINE_TEACHER = (
    "alpha_attention > 0 needs the online teacher (attention relations are not cached): drop --teacher_cache"
)


@dataclass
class DistillationConfig(QuestionAnsweringConfig):
    """``QuestionAnsweringConfig`` plus the distillation loss and the teacher's execution.

    Defaults are the DistilBERT paper's SQuAD setting (Sanh et al., 2019): T=2, alpha_ce=0.5, alpha_squad=0.5
    (from the authors' ``run_squad_w_distillation.py`` example in transformers/examples/research_projects).
    """

    temperature: float = field(
        default=2.0, metadata={"help": "softmax temperature T of the soft (teacher) term"}
    )
    alpha_ce: float = field(default=0.5, metadata={"help": "weight of T^2 * KL(teacher || student)"})
    alpha_squad: float = field(
        default=0.5, metadata={"help": "weight of the student's gold-span cross-entropy"}
    )
    alpha_hidden: float = field(
        default=0.0,
        metadata={
            "help": "weight of the MSE between student and teacher hidden states, layers mapped uniformly "
            "(TinyBERT); needs the online teacher and equal hidden sizes; 0: off (DistilBERT's recipe)"
        },
    )
    alpha_attention: float = field(
        default=0.0,
        metadata={
            "help": "weight of MiniLMv2's self-attention relation loss (query-query, key-key, value-value KL, their "
            "mean: 3 is the paper's sum at weight 1) between the last layers of student and teacher; needs the online "
            "teacher; 0: off"
        },
    )
    attention_relation_heads: int = field(
        default=12,
        metadata={
            "help": "heads the relation loss splits each projection into (must divide both hidden sizes)"
        },
    )
    teacher_dtype: str = field(
        default="float32",
        metadata={
            "help": "precision of the online teacher: float32, bfloat16, float16 (the loss stays fp32)"
        },
    )
    teacher_cache: str | None = field(
        default=None,
        metadata={
            "help": "folder of cached teacher logits (built if missing or stale); no online teacher then"
        },
    )
    cache_spot_check: int = field(
        default=4, metadata={"help": "cached rows recomputed with the live teacher on load (0: skip)"}
    )

    def __post_init__(self):
        if self.temperature <= 0:
            raise InputError(
                f"temperature must be > 0, got {self.temperature}; pass --temperature 2.0 for the paper's value"
            )
        for name in ("alpha_ce", "alpha_squad", "alpha_hidden", "alpha_attention"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if (
            self.alpha_ce == 0
            and self.alpha_squad == 0
            and self.alpha_hidden == 0
            and self.alpha_attention == 0
        ):
            raise InputError(
                "alpha_ce, alpha_squad, alpha_hidden and alpha_attention are all 0: nothing to learn; set at least one > 0"
            )
        if self.alpha_hidden > 0 and self.teacher_cache:
            raise InputError(HIDDEN_NEEDS_ONLINE_TEACHER)
        if self.alpha_attention > 0 and self.teacher_cache:
            raise InputError(ATTENTION_NEEDS_ONLINE_TEACHER)
        if self.attention_relation_heads < 1:
            raise InputError(
                f"attention_relation_heads must be >= 1, got {self.attention_relation_heads}; pass --attention_relation_heads 12"
            )
        if self.teacher_dtype not in TEACHER_DTYPES:
            raise InputError(
                f"teacher_dtype must be one of {', '.join(TEACHER_DTYPES)}, got {self.teacher_dtype!r}"
            )
        super().__post_init__()


def _accelerator_available() -> bool:
    import torch

    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:
        return accelerator.is_available()
    return torch.cuda.is_available()
