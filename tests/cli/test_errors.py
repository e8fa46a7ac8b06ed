"""A malformed command line is one line on stderr, ``distilqa <command>: error: ...``, exit code 2, for every
command; other failures exit 1 (a bug) or 130 (Ctrl-C) with one line, and ``--debug`` re-raises."""

from __future__ import annotations

import argparse

import pytest

from distilqa.cli import main
from distilqa.errors import InputError

from .commands import NAMES, argv, build_parser


def run(capsys, *words: str) -> tuple[int, str, str]:
    code = main(list(words))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(name: str, code: int, out: str, err: str) -> str:
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"distilqa {name}: error: "), lines[0]
    return lines[0]


def visible_options(name: str) -> list[argparse.Action]:
    return [
        action
        for action in build_parser(name)._actions
        if action.option_strings and action.help is not argparse.SUPPRESS and action.dest != "help"
    ]


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option(name, capsys):
    line = one_error_line(name, *run(capsys, *argv(name), "--bogus"))
    assert "unrecognized arguments: --bogus" in line and f"see 'distilqa {name} --help'" in line


@pytest.mark.parametrize("name", NAMES)
def test_near_miss_names_the_option(name, capsys):
    option = max(
        (o for a in visible_options(name) for o in a.option_strings if "_" in o), key=len, default=None
    )
    option = option or visible_options(name)[0].option_strings[0]
    typo = option[:-2] + option[-1]  # one letter dropped
    line = one_error_line(name, *run(capsys, *argv(name), typo, "1"))
    assert f"unrecognized arguments: {typo}" in line and f"did you mean {option}?" in line
    # the kebab-case spelling of the typo finds the same option
    line = one_error_line(name, *run(capsys, *argv(name), typo.replace("_", "-"), "1"))
    assert f"did you mean {option}?" in line


@pytest.mark.parametrize("name", NAMES)
def test_bad_number(name, capsys):
    action = next(a for a in visible_options(name) if a.type in (int, float))
    line = one_error_line(name, *run(capsys, *argv(name), action.option_strings[0], "many"))
    assert f"argument {action.option_strings[0]}: invalid {action.type.__name__} value: 'many'" in line


@pytest.mark.parametrize("name", NAMES)
def test_missing_value(name, capsys):
    action = next(a for a in visible_options(name) if a.nargs is None and a.type is str)
    line = one_error_line(name, *run(capsys, *argv(name), action.option_strings[0]))
    assert f"argument {action.option_strings[0]}: expected one argument" in line


CHOICES = {
    "train": ["--lr_scheduler_type", "steep"],
    "distill": ["--eval_strategy", "sometimes"],
    "cache-teacher": ["--save_strategy", "sometimes"],
    "export": ["--quantize", "int4"],
    "benchmark inference": ["--backends", "torch", "tensorrt"],
    "benchmark training": ["--teacher_dtype", "float8"],
}


@pytest.mark.parametrize("name", list(CHOICES))
def test_bad_choice(name, capsys):
    line = one_error_line(name, *run(capsys, *argv(name), *CHOICES[name]))
    assert f"argument {CHOICES[name][0]}: invalid choice: '{CHOICES[name][-1]}'" in line


def test_bad_boolean(capsys):
    line = one_error_line(
        "export", *run(capsys, "export", "--model", "m", "--output", "o", "--force", "maybe")
    )
    assert "argument --force: Truthy value expected: got maybe" in line


def test_missing_required(capsys):
    line = one_error_line("evaluate", *run(capsys, "evaluate", "--data", "d.json"))
    assert "the following arguments are required: --model" in line
    line = one_error_line("score", *run(capsys, "score", "d.json"))
    assert "the following arguments are required: predictions" in line


def test_an_unknown_option_is_named_before_a_missing_one(capsys):
    line = one_error_line("evaluate", *run(capsys, "evaluate", "--modle", "m", "--data", "d.json"))
    assert "did you mean --model?" in line


def test_unknown_command_and_benchmark(capsys):
    code, _, err = run(capsys, "evalute")
    assert code == 2 and err == "distilqa: error: unknown command 'evalute'; did you mean evaluate?\n"
    line = one_error_line("benchmark", *run(capsys, "benchmark", "latency"))
    assert "unknown benchmark 'latency'; choose inference, training or serve" in line


def test_a_config_file_is_named_in_usage_errors(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("num_train_epochs: many\n")
    line = one_error_line("train", *run(capsys, "train", str(config)))
    assert f"invalid float value: 'many' (in {config} or the command line)" in line


# -- exit codes of the dispatcher -----------------------------------------------------------------------------


def raising(monkeypatch, command: str, error: BaseException) -> None:
    import importlib

    from distilqa.cli import COMMANDS

    def fail(argv):
        raise error

    monkeypatch.setattr(importlib.import_module(f"distilqa.cli.{COMMANDS[command][0]}"), "main", fail)


def test_an_internal_error_exits_1_with_the_debug_hint(monkeypatch, capsys):
    raising(monkeypatch, "score", RuntimeError("index out of range"))
    code, out, err = run(capsys, "score", "a", "b")
    assert code == 1 and out == ""
    assert err == (
        "distilqa: error: RuntimeError: index out of range (an internal error; run with --debug for the traceback)\n"
    )
    with pytest.raises(RuntimeError):
        main(["--debug", "score", "a", "b"])


@pytest.mark.parametrize(
    "error, words",
    [
        (InputError("data.json: not valid JSON"), "data.json: not valid JSON"),
        (FileNotFoundError(2, "No such file or directory", "x.json"), "file not found: x.json"),
        (PermissionError(13, "Permission denied", "/out"), "permission denied: /out"),
    ],
)
def test_bad_input_exits_2(monkeypatch, capsys, error, words):
    raising(monkeypatch, "evaluate", error)
    code, _, err = run(capsys, "evaluate")
    assert code == 2 and err.startswith("distilqa: error: ") and words in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["train", "distill"])
def test_ctrl_c_in_training_exits_130_and_says_how_to_resume(command, monkeypatch, capsys):
    raising(monkeypatch, command, KeyboardInterrupt())
    code, out, err = run(capsys, command, "--output_dir", "runs/x")
    assert code == 130 and out == "" and err.count("\n") == 1
    assert (
        err.startswith(f"distilqa {command}: interrupted; ") and "run the same command with --resume" in err
    )


def test_ctrl_c_elsewhere_exits_130_in_one_line(monkeypatch, capsys):
    raising(monkeypatch, "evaluate", KeyboardInterrupt())
    assert run(capsys, "evaluate") == (130, "", "distilqa evaluate: interrupted\n")
    with pytest.raises(KeyboardInterrupt):
        main(["evaluate", "--debug"])
