"""Configuration of distillation: teacher and student, and ``DistillationConfig`` (the loss and the teacher's execution)."""

from __future__ import annotations

from dataclasses import dataclass, field

from distilqa.errors import InputError
from distilqa.qa.config import QuestionAnsweringConfig, check_numbers


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
    alpha_null: float = field(
        default=0.0,
        metadata={
            "help": "SQuAD 2.0: weight of T^2 * binary KL between the teacher's and the student's sigmoid(margin / T), "
            "margin = null score - best valid span score of each window (the has-answer decision post-processing "
            "makes); works with the online teacher, the teacher cache and another tokenizer; 0: off"
        },
    )
    null_window_weight: float = field(
        default=1.0,
        metadata={
            "help": "weight in the gold-span cross-entropy of the windows labelled 'no answer' although their "
            "question has an answer in another window (most windows of a long context); 1: as every window"
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
    require_same_tokenizer: bool = field(
        default=False,
        metadata={
            "help": "refuse a teacher that tokenizes differently instead of projecting its span distributions onto "
            "the student's tokens through character offsets"
        },
    )
    cache_spot_check: int = field(
        default=4, metadata={"help": "cached rows recomputed with the live teacher on load (0: skip)"}
    )

    def __post_init__(self):
        check_numbers(self)  # NaN would pass the range checks below (every comparison with NaN is false)
        if self.temperature <= 0:
            raise InputError(
                f"temperature must be > 0, got {self.temperature}; pass --temperature 2.0 for the paper's value"
            )
        for name in (
            "alpha_ce",
            "alpha_squad",
            "alpha_hidden",
            "alpha_attention",
            "alpha_null",
            "null_window_weight",
        ):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        weights = ("alpha_ce", "alpha_squad", "alpha_hidden", "alpha_attention", "alpha_null")
        if all(getattr(self, name) == 0 for name in weights):
            raise InputError(
                f"{', '.join(weights[:-1])} and {weights[-1]} are all 0: nothing to learn; set at least one > 0"
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
