"""``distilqa predict``: answer questions about given contexts; prints JSON (one object, or a list for --input)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from distilqa.cli.runtime import describe_precision, load_predictor, predict_options
from distilqa.errors import InputError


@dataclass
class PredictInput:
    """The model, and the questions with their contexts."""

    model: str = field(metadata={"help": "model folder (PyTorch or ONNX export) or hub name"})
    question: str | None = field(default=None, metadata={"help": "the question"})
    context: str | None = field(default=None, metadata={"help": "the context text", "exclusive": "context"})
    context_file: str | None = field(
        default=None, metadata={"help": "a UTF-8 text file holding the context", "exclusive": "context"}
    )
    input: str | None = field(
        default=None, metadata={"help": "a JSONL file of {question, context} objects (instead of --question)"}
    )
    output: str | None = field(default=None, metadata={"help": "write the JSON here instead of stdout"})
    allow_null: bool = field(
        default=False, metadata={"help": "SQuAD 2.0 models: allow the empty (no) answer"}
    )


def build_parser():
    from distilqa.cli.parser import CommandParser, Section
    from distilqa.cli.runtime import RuntimeOptions
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import PredictOptions

    return CommandParser(
        "distilqa predict",
        PredictInput,
        Section(FeatureParams, "windowing"),
        Section(PredictOptions, "post-processing"),
        Section(RuntimeOptions, "runtime"),
        description=__doc__,
    )


def _read_jsonl(path: str) -> tuple[list[str], list[str]]:
    questions, contexts = [], []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text; re-save it as UTF-8") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{path}:{number}: not valid JSON ({err.msg}); one {{question, context}} object per line"
            ) from None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("question"), str)
            or not isinstance(item.get("context"), str)
        ):
            raise InputError(f"{path}:{number}: needs string fields 'question' and 'context'")
        questions.append(item["question"])
        contexts.append(item["context"])
    if not questions:
        raise InputError(f"{path} holds no questions; one {{question, context}} object per line")
    return questions, contexts


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.input:
        if args.question or args.context or args.context_file:
            raise InputError("--input replaces --question/--context; give one or the other")
        questions, contexts = _read_jsonl(args.input)
    else:
        if not args.question or not (args.context or args.context_file):
            raise InputError("give --question with --context or --context_file, or --input FILE.jsonl")
        if args.context_file:
            try:
                context = Path(args.context_file).read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{args.context_file} is not UTF-8 text; re-save it as UTF-8") from None
        else:
            context = args.context
        questions, contexts = [args.question], [context]
    options = predict_options(args)
    if args.output:
        from distilqa.infra.ownership import check_output

        check_output(args.output, None, "--output", {"--input file": args.input, "--context_file": args.context_file, "model": args.model})  # fmt: skip
    predictor = load_predictor(args, args.model)
    if predictor.precision.name != "fp32" or args.precision not in (None, "fp32"):
        print(f"precision: {describe_precision(predictor.precision)}", file=sys.stderr)
    answers = predictor.answer(
        questions, contexts, batch_size=args.batch_size, options=options, allow_null=args.allow_null
    )
    payload = answers if args.input else answers[0]
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    if args.output:
        from distilqa.infra.files import atomic_write_text

        atomic_write_text(args.output, text + "\n")
    else:
        print(text)
    return 0
