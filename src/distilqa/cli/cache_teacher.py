"""``distilqa cache-teacher [CONFIG] --teacher T --train_file F --output DIR [--option value ...]``: cache teacher logits.

Runs the teacher once over the training windows and stores its start/end logits (float16, memory-mapped) with
a fingerprint of the teacher, tokenizer, windowing, data and teacher dtype. ``distilqa distill --teacher_cache
DIR`` with the same data and options then trains from the cache instead of running the teacher every step.

The options are ``distill``'s (the same config file works for both; ``--teacher_cache DIR`` is accepted for
``--output DIR``): ``--max_seq_length``, ``--doc_stride``, ``--max_query_length``, ``--max_train_samples``,
``--teacher_dtype``, ``--per_device_eval_batch_size`` (the build's batch size), ``--seed``. ``--student S``
tokenizes with the student's tokenizer, as ``distill`` does (default: the teacher's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distilqa.errors import InputError

# DistillationConfig needs an output_dir; this command never writes to it.
UNUSED_OUTPUT_DIR = "cache-teacher-output-dir-unused"


@dataclass
class CacheTeacherArguments:
    """The teacher to cache, and optionally the student whose tokenizer ``distill`` will use."""

    teacher: str | None = field(default=None, metadata={"help": "fine-tuned QA teacher: folder or hub name"})
    student: str | None = field(
        default=None,
        metadata={"help": "tokenize with this student's tokenizer, as distill does (default: the teacher's)"},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow custom modelling code from the checkpoints"}
    )

    def __post_init__(self):
        if not self.teacher:
            raise InputError("no teacher: pass --teacher FOLDER_OR_HUB_NAME")


@dataclass
class CacheOutput:
    """Where the cache goes."""

    output: str | None = field(
        default=None, metadata={"help": "cache folder to write (same as --teacher_cache)"}
    )
    force: bool = field(
        default=False, metadata={"help": "rebuild even when the cache in the folder is valid"}
    )


def build_parser():
    from distilqa.cli.parser import Section
    from distilqa.cli.quiet import Quiet
    from distilqa.cli.train import training_parser
    from distilqa.distill.config import DistillationConfig

    # distill's options; output_dir is accepted (a config file shared with distill sets it) and not used.
    return training_parser(
        "distilqa cache-teacher",
        __doc__,
        CacheTeacherArguments,
        DistillationConfig,
        Section(CacheOutput, "cache"),
        Section(Quiet, "cache"),
        config_fields={"output_dir": {"default": UNUSED_OUTPUT_DIR, "hidden": True}},
    )


def main(argv: list[str]) -> int:
    cache_args, data_args, config, out, _ = build_parser().parse(argv)
    output = out.output or config.teacher_cache
    if not output:
        raise InputError("no cache folder: pass --output DIR (or --teacher_cache DIR, as for distill)")
    summary = cache_teacher(cache_args, data_args, config, output, force=out.force)
    width = max(map(len, summary))
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in summary.items()))
    return 0


def cache_teacher(
    cache_args: CacheTeacherArguments, data_args, config, output: str, force: bool = False
) -> dict[str, str]:
    """Build (or validate) the cache for ``distill``'s training features; returns the printed summary."""
    from transformers import set_seed

    from distilqa.distill.cache.fingerprint import compute_fingerprint
    from distilqa.distill.cache.store import TeacherCache, check_cache_output
    from distilqa.distill.projection import SpanProjector, tokenizers_differ
    from distilqa.infra.models import load_tokenizer
    from distilqa.runs import load_split

    check_cache_output(output, "--output", {"teacher": cache_args.teacher, "student": cache_args.student, "train_file": data_args.train_file})  # fmt: skip
    set_seed(config.seed)
    trust = cache_args.trust_remote_code
    tokenizer = load_tokenizer(cache_args.student or cache_args.teacher, trust_remote_code=trust)
    teacher_tokenizer = (
        load_tokenizer(cache_args.teacher, trust_remote_code=trust) if cache_args.student else None
    )
    cross = cache_args.student is not None and tokenizers_differ(
        teacher_tokenizer, tokenizer, cache_args.teacher, cache_args.student, config
    )
    examples, features = load_split(data_args, tokenizer, config, "train")
    features = features.remove_columns(["example_index"])  # exactly what run_distill hands to the cache
    projector = None
    if (
        cross
    ):  # the rows hold the teacher's distributions projected onto the student's windows (at --temperature)
        projector = SpanProjector(
            teacher_tokenizer, tokenizer, examples, features, config.feature_params, config.temperature
        )
    if force:
        fingerprint = compute_fingerprint(
            cache_args.teacher, tokenizer, features, config.feature_params, config.teacher_dtype, projector
        )
        cache = TeacherCache.build(
            output, cache_args.teacher, tokenizer, features, config, fingerprint, trust, projector
        )
    else:
        cache = TeacherCache.load_or_build(
            output,
            cache_args.teacher,
            tokenizer,
            features,
            config,
            trust_remote_code=trust,
            projector=projector,
        )
    seconds = cache.manifest["build_seconds"]
    return {
        "cache": str(cache.path) + ("" if cache.built else " (already valid, not rebuilt)"),
        "fingerprint": cache.fingerprint,
        "rows": f"{len(cache):,} windows x {cache.seq_len} positions (start + end logits, float16)",
        "size on disk": f"{cache.size_mb:.2f} MB",
        "build time": f"{seconds:.1f} s" + ("" if cache.built else " (when it was built)"),
        "next": f"distilqa distill --teacher {cache_args.teacher} --teacher_cache {cache.path} ...",
    }
