"""Numbers that mean nothing (NaN, infinity, a negative temperature or loss weight) and a config key given twice
are refused in one line, exit 2, before any work: nothing is trained or written."""

from __future__ import annotations

import pytest

from conftest import squad_file
from distilqa.cli import main


def distill_argv(tiny_bert_path, out):
    return ["distill", "--teacher", str(tiny_bert_path), "--student", str(tiny_bert_path), "--output_dir", str(out),
            "--train_file", str(squad_file("train.json")), "--max_steps", "1", "--use_cpu", "true"]  # fmt: skip


@pytest.mark.parametrize(
    "option, value, says",
    [("--temperature", "nan", "not a finite number"), ("--alpha_ce", "nan", "not a finite number"),
     ("--learning_rate", "inf", "not a finite number"), ("--temperature", "-2", "negative"),
     ("--alpha_squad", "-0.5", "negative")],
)  # fmt: skip
def test_a_meaningless_number_is_one_line_exit_2(option, value, says, tiny_bert_path, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*distill_argv(tiny_bert_path, out), option, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and says in err, err
    assert not out.exists()


def test_nan_in_a_config_file_is_refused(tiny_bert_path, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("temperature: .nan\n")
    out = tmp_path / "run"
    argv = distill_argv(tiny_bert_path, out)
    assert main([argv[0], str(config), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert "--temperature nan is not a finite number" in err and str(config) in err
    assert not out.exists()


@pytest.mark.parametrize("suffix, text", [(".yaml", "temperature: 2.0\nalpha_ce: 0.5\ntemperature: 4.0\n"),
                                          (".json", '{"temperature": 2.0, "temperature": 4.0}')])  # fmt: skip
def test_a_key_given_twice_is_refused(suffix, text, tiny_bert_path, tmp_path, capsys):
    config = tmp_path / f"c{suffix}"
    config.write_text(text)
    argv = distill_argv(tiny_bert_path, tmp_path / "run")
    assert main([argv[0], str(config), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "'temperature' is given twice" in err and str(config) in err and len(err.splitlines()) == 1
    if suffix == ".yaml":
        assert "(line 3)" in err
