"""``distilqa init-student``: make a smaller student from chosen layers of a teacher (default: every other layer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from distilqa.errors import InputError


@dataclass
class InitStudentOptions:
    """The teacher, the layers the student keeps, and where it goes."""

    teacher: str = field(metadata={"help": "teacher model folder or hub name (a base encoder is fine)"})
    output: str = field(metadata={"help": "folder to write the student to"})
    layers: str | None = field(
        default=None,
        metadata={
            "help": "teacher layers to keep, in order, e.g. 0,2,4 (default: every other layer from 0)",
            "exclusive": "layers",
        },
    )
    num_layers: int | None = field(
        default=None,
        metadata={"help": "keep this many evenly spaced layers instead of --layers", "exclusive": "layers"},
    )
    vocab_from: list[str] | None = field(
        default=None,
        metadata={
            "help": "SQuAD training file(s): keep in the student's vocabulary only the tokens their questions and "
            "contexts use, plus special tokens and every single character (WordPiece tokenizers)"
        },
    )
    vocab_size: int | None = field(
        default=None,
        metadata={
            "help": "with --vocab_from: keep only the N most frequent of those tokens (special tokens and single "
            "characters are kept on top)"
        },
    )
    force: bool = field(default=False, metadata={"help": "replace an existing non-empty --output folder"})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow custom modelling code from the checkpoint"}
    )


def build_parser():
    from distilqa.cli.parser import CommandParser

    return CommandParser("distilqa init-student", InitStudentOptions, description=__doc__)


def parse_layers(text: str) -> list[int]:
    """``"0,2,4"`` -> ``[0, 2, 4]``; anything else is an :class:`InputError` naming ``--layers``."""
    parts = [p.strip() for p in text.split(",")]
    try:
        return [int(p) for p in parts if p]
    except ValueError:
        raise InputError(
            f"--layers {text!r} is not a comma-separated list of layer indices; e.g. --layers 0,2,4"
        ) from None


def main(argv: list[str]) -> int:
    (args,) = build_parser().parse(argv)
    from distilqa.cli.quiet import hide_progress
    from distilqa.distill.student import check_output_folder, init_student, save_student

    hide_progress()  # transformers' sub-second loading and shard-writing bars say nothing here

    layers = parse_layers(args.layers) if args.layers is not None else None
    if args.vocab_size is not None and args.vocab_size < 0:
        raise InputError(f"--vocab_size {args.vocab_size} is negative; give 0 or more")
    if args.vocab_size is not None and not args.vocab_from:
        raise InputError("--vocab_size needs --vocab_from TRAIN_FILE (the data that chooses the tokens)")
    # Checked before loading the teacher, which may take a while; save_student checks again.
    output = check_output_folder(args.output, args.force, teacher=args.teacher)
    tokenizer, counts = args.teacher, None
    if args.vocab_from:
        from distilqa.distill.vocab import backend_json, count_tokens, read_texts
        from distilqa.infra.models import load_tokenizer

        read_texts(args.vocab_from)  # bad files are refused before anything slow
        tokenizer = load_tokenizer(args.teacher, trust_remote_code=args.trust_remote_code)
        backend_json(tokenizer)  # WordPiece only
        counts = count_tokens(tokenizer, args.vocab_from)
    student, info = init_student(
        args.teacher, layers=layers, num_layers=args.num_layers, trust_remote_code=args.trust_remote_code
    )
    vocab = None
    if args.vocab_from:
        from distilqa.distill.vocab import trim_student

        tokenizer, vocab = trim_student(student, tokenizer, args.vocab_from, counts, args.vocab_size)
        info.update(vocab)
        info["student_parameters"] = vocab["parameters_after"]
        info["ratio"] = round(vocab["parameters_after"] / info["teacher_parameters"], 4)
    save_student(
        student,
        output,
        info,
        tokenizer=tokenizer,
        force=args.force,
        trust_remote_code=args.trust_remote_code,
    )
    kept = ",".join(map(str, info["layers"]))
    print(f"kept teacher layers {kept} ({len(info['layers'])} of {info['teacher_layers']})")
    print(
        f"parameters: teacher {info['teacher_parameters']:,} -> student {info['student_parameters']:,} "
        f"({info['ratio']:.1%} of the teacher)"
    )
    if vocab is not None:
        print(
            f"vocabulary: kept {vocab['vocab_size']:,} of {vocab['teacher_vocab_size']:,} tokens "
            f"(those of {', '.join(args.vocab_from)}, special tokens and single characters)"
        )
        print(
            f"student parameters: {vocab['parameters_before']:,} -> {vocab['parameters_after']:,} with the trimmed "
            f"vocabulary; embedding parameters: {vocab['embedding_parameters_before']:,} -> "
            f"{vocab['embedding_parameters_after']:,}"
        )
    head = (
        "newly initialised (the teacher has no QA head)"
        if info["qa_head"] == "new"
        else "copied from the teacher"
    )
    print(f"QA head (qa_outputs): {head}")
    print(
        f"saved to {output} (with README.md and distilqa_student.json); next: distilqa distill --student {output} ..."
    )
    return 0
