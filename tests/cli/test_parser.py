"""The one parser: options from dataclasses, snake_case names with kebab-case accepted, config files, help."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from distilqa.cli.helptext import docstring_help
from distilqa.cli.parser import CommandParser, Section

from .commands import NAMES, build_parser

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_every_command_builds_a_parser_that_lists_snake_case_names_only():
    for name in NAMES:
        parser = build_parser(name)
        assert parser.prog == f"distilqa {name}"
        listed = [
            option
            for action in parser._actions
            if action.help is not argparse.SUPPRESS
            for option in action.option_strings
        ]
        assert "--help" in listed and len(listed) > 3, name
        assert [o for o in listed if "-" in o.lstrip("-")] == [], name


@pytest.mark.parametrize("name", ["evaluate", "export", "train"])
def test_help_shows_the_snake_case_names(name, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser(name).parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: distilqa {name} ")
    assert "--max_seq_length" in out and "--max-seq-length MAX" not in out


def test_kebab_case_spellings_parse_like_snake_case():
    parser = build_parser("evaluate")
    kebab = parser.parse_args(["--model", "m", "--data", "d", "--max-seq-length", "64", "--doc-stride=16",
                               "--output-dir", "o", "--no-progress", "--n-best", "5"])  # fmt: skip
    snake = parser.parse_args(["--model", "m", "--data", "d", "--max_seq_length", "64", "--doc_stride=16",
                               "--output_dir", "o", "--no_progress", "--n_best", "5"])  # fmt: skip
    assert kebab == snake
    assert (snake.max_seq_length, snake.doc_stride, snake.output_dir, snake.no_progress) == (
        64,
        16,
        "o",
        True,
    )


def test_values_after_a_double_dash_are_not_renamed():
    parser = build_parser("evaluate")
    assert parser.normalize(["--doc-stride", "1", "--", "--doc-stride"]) == [
        "--doc_stride",
        "1",
        "--",
        "--doc-stride",
    ]


def test_booleans():
    export = build_parser("export")
    base = ["--model", "m", "--output", "o"]
    assert export.parse_args(base).force is False
    assert export.parse_args([*base, "--force"]).force is True
    assert export.parse_args([*base, "--force", "false"]).force is False
    assert export.parse_args([*base, "--force=yes"]).force is True
    # a bool that defaults to true also has --no_<name>, and the old spellings stay
    assert export.parse_args(base).per_channel is True
    assert export.parse_args([*base, "--no-per-channel"]).per_channel is False
    assert export.parse_args([*base, "--quantize-qa-head"]).keep_qa_head is False
    augment = build_parser("augment")
    config = augment.instances(
        augment.parse_args(["--teacher", "t", "--data", "d", "--output", "o", "--no-original"])
    )[1]
    assert config.include_original is False and config.copies == 4


def test_export_builds_the_library_dataclasses():
    from distilqa.export.parity import ParityTolerance
    from distilqa.export.quantize import QuantizeOptions
    from distilqa.qa.features import FeatureParams

    parsed = build_parser("export").parse(["--model", "m", "--output", "o", "--min-span-agreement", "0.9",
                                           "--reduce_range", "--max_seq_length", "256"])  # fmt: skip
    assert ParityTolerance(min_span_agreement=0.9) in parsed
    assert QuantizeOptions(reduce_range=True) in parsed
    assert FeatureParams(max_seq_length=256) in parsed


def test_a_library_error_of_an_option_is_one_input_error():
    from distilqa.errors import InputError

    with pytest.raises(InputError, match="min_span_agreement must lie in"):
        build_parser("export").parse(["--model", "m", "--output", "o", "--min_span_agreement", "2"])


def test_a_transformers_value_error_is_a_usage_error():
    from distilqa.cli.parser import UsageError

    with pytest.raises(UsageError) as info:  # TrainingArguments refuses it with a ValueError
        build_parser("train").parse(["--model_name_or_path", "m", "--train_file", "t", "--output_dir", "o",
                                     "--load_best_model_at_end", "--eval_strategy", "steps", "--save_strategy", "epoch"])  # fmt: skip
    assert info.value.prog == "distilqa train" and "\n" not in str(info.value)


def test_help_from_docstrings():
    from distilqa.bench.training import TrainingBenchmarkSettings
    from distilqa.qa.features import FeatureParams

    assert (
        docstring_help(FeatureParams)["doc_stride"]
        == "tokens of overlap between consecutive windows of one context"
    )
    helps = docstring_help(TrainingBenchmarkSettings)
    assert helps["teacher"].startswith("the teacher's model folder") and "init-student" in helps["student"]
    assert (
        helps["alpha_attention"]
        == helps["attention_relation_heads"]
        == "the attention relation term of the attention mode"
    )


def test_positional_exclusive_and_hidden_fields(capsys):
    @dataclasses.dataclass
    class Options:
        """Options.

        Args:
            path: the file (50% of it).
        """

        path: str = dataclasses.field(metadata={"positional": True})
        left: int | None = dataclasses.field(default=None, metadata={"exclusive": "side"})
        right: int | None = dataclasses.field(default=None, metadata={"exclusive": "side"})
        secret: str = dataclasses.field(default="s", metadata={"hidden": True})

    parser = CommandParser("distilqa x", Section(Options, "things"))
    (options,) = parser.parse(["f.txt", "--left", "1", "--secret", "t"])
    assert options == Options("f.txt", 1, None, "t")
    assert parser.usage == "distilqa x path [options]"
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    out = capsys.readouterr().out
    assert "the file (50% of it)" in out and "--secret" not in out


def test_config_file_then_command_line(tmp_path):
    config = tmp_path / "distill.json"
    config.write_text(json.dumps({"teacher": "t", "student": "s", "temperature": 3.0, "alpha_ce": 0.7,
                                  "output_dir": str(tmp_path / "out"), "use_cpu": True, "report_to": ["none"]}))  # fmt: skip
    model, data, run, resume, quiet = build_parser("distill").parse(
        [str(config), "--train_file", "t.json", "--alpha-ce", "0.9", "--resume"]
    )
    assert (model.teacher, model.student, data.train_file) == ("t", "s", "t.json")
    assert (run.temperature, run.alpha_ce, run.report_to) == (3.0, 0.9, [])  # "none" means no integration
    assert resume.resume is True and quiet.quiet is False


@pytest.mark.parametrize(
    "content, words",
    [
        (
            "lerning_rate: 1\n",
            "unknown key(s) lerning_rate; keys are the option names of 'distilqa train --help'",
        ),
        ("- 1\n", "must hold a mapping of option names to values"),
        ("a: [1\n", "is not valid YAML"),
    ],
)
def test_config_file_errors_keep_their_messages(tmp_path, content, words):
    from distilqa.errors import InputError

    config = tmp_path / "run.yaml"
    config.write_text(content)
    with pytest.raises(InputError) as info:
        build_parser("train").parse([str(config)])
    assert str(info.value).startswith(f"config file {config}") and words in str(info.value)


def test_cache_teacher_needs_no_output_dir():
    cache, data, config, out, _ = build_parser("cache-teacher").parse(
        ["--teacher", "t", "--train_file", "f", "--output", "c", "--use_cpu", "true"]
    )
    assert (cache.teacher, data.train_file, out.output, out.force) == ("t", "f", "c", False)
    assert config.output_dir == "cache-teacher-output-dir-unused"


# -- the training commands parse exactly as transformers' HfArgumentParser did ------------------------------


def _hf_and_ours(name):
    from transformers import HfArgumentParser

    ours = build_parser(name)
    types = [section.type for section in ours.sections[:3]]
    return HfArgumentParser(types), ours


@pytest.mark.parametrize("name", ["train", "distill"])
def test_options_match_hf_argument_parser(name):
    from transformers.hf_argparser import string_to_bool

    theirs, ours = _hf_and_ours(name)
    mine = {(a.dest, a.option_strings[0]): a for a in ours._actions if a.dest not in ("resume", "quiet")}
    hf = {(a.dest, a.option_strings[0]): a for a in theirs._actions}
    assert mine.keys() == hf.keys()
    for key, action in hf.items():
        other = mine[key]
        for attribute in ("nargs", "const", "default", "choices", "required", "dest"):
            assert getattr(other, attribute) == getattr(action, attribute), (key, attribute)
        assert [o for o in action.option_strings if "-" not in o.lstrip("-")] == other.option_strings, key
        if action.type is string_to_bool:
            assert other.type("yes") is True and other.type("0") is False
        elif action.choices:
            assert [other.type(str(c)) for c in action.choices] == [
                action.type(str(c)) for c in action.choices
            ]
        else:
            assert other.type is action.type, key


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse_as_with_hf_argument_parser(path, monkeypatch):
    import distilqa.infra.precision as precision
    from distilqa.cli.parser import _to_argv, read_config_file

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # GPU recipes ask for bf16; any CPU

    name = "distill" if "teacher" in read_config_file(str(path)) else "train"
    theirs, ours = _hf_and_ours(name)
    extra = ["--train_file", "train.json", "--use_cpu", "true"]
    expected = theirs.parse_args_into_dataclasses(
        _to_argv(read_config_file(str(path))) + extra, look_for_args_file=False
    )
    assert ours.parse([str(path), *extra])[:3] == tuple(expected)
