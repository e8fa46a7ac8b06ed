"""``--quiet``: no progress bars, library logs or Trainer log lines; the command's own result lines stay; and
everything it silenced is back once the command returns."""

from __future__ import annotations

import json
import logging

import pytest

from distilqa.cli import main, quiet


def evaluate(model, data, *extra):
    return ["evaluate", "--model", str(model), "--data", str(data), "--max_seq_length", "64", "--doc_stride", "16",
            "--max_query_length", "16", *extra]  # fmt: skip


def test_evaluate_quiet_keeps_only_its_result(tiny_bert_path, tiny_squad, capfd):
    assert main(evaluate(tiny_bert_path, tiny_squad)) == 0
    loud = capfd.readouterr().err
    assert "Loading weights" in loud and "Predicting" in loud  # what --quiet must silence is there without it

    assert main(evaluate(tiny_bert_path, tiny_squad, "--quiet")) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["num_questions"] == 3
    assert err.splitlines() == [line for line in err.splitlines() if line.startswith("3 questions  EM ")]
    assert len(err.splitlines()) == 1, err


def test_train_quiet_prints_the_summary_only(tiny_bert_path, tiny_squad, tmp_path, capfd):
    argv = ["train", "--model_name_or_path", str(tiny_bert_path), "--train_file", str(tiny_squad),
            "--output_dir", str(tmp_path / "run"), "--max_steps", "2", "--logging_steps", "1", "--save_strategy", "no",
            "--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16",
            "--report_to", "none", "--use_cpu", "true"]  # fmt: skip
    assert main([*argv, "--disable_tqdm", "true"]) == 0
    out, _ = capfd.readouterr()
    assert "'loss'" in out  # the Trainer prints its log lines without --quiet

    assert main([*argv, "--output_dir", str(tmp_path / "quiet"), "--quiet"]) == 0
    out, err = capfd.readouterr()
    assert "'loss'" not in out and "it/s" not in out + err and "\r" not in out + err
    assert "distilqa: fine-tuned QA model" in out and "train time" in out  # the summary
    assert err == ""


def test_quiet_is_undone_when_the_command_ends(monkeypatch):
    import tqdm
    from transformers.utils import logging as hf_logging

    seen = {}

    def fake_main(argv):
        from distilqa.cli.evaluate import build_parser

        args = build_parser().parse_args(argv)
        seen.update(no_progress=args.no_progress, silenced=quiet.is_silenced(),
                    bars=hf_logging.is_progress_bar_enabled(), tqdm=tqdm.tqdm(range(2)).disable,
                    level=logging.getLogger("distilqa").getEffectiveLevel())  # fmt: skip
        return 0

    import distilqa.cli.evaluate

    monkeypatch.setattr(distilqa.cli.evaluate, "main", fake_main)
    before = (
        hf_logging.is_progress_bar_enabled(),
        hf_logging.get_verbosity(),
        logging.getLogger("distilqa").level,
    )
    assert main(["evaluate", "--model", "m", "--data", "d", "--quiet"]) == 0
    assert seen == {
        "no_progress": True,
        "silenced": True,
        "bars": False,
        "tqdm": True,
        "level": logging.ERROR,
    }
    assert not quiet.is_silenced()
    assert (
        hf_logging.is_progress_bar_enabled(),
        hf_logging.get_verbosity(),
        logging.getLogger("distilqa").level,
    ) == before
    assert tqdm.tqdm(range(2), file=open("/dev/null", "w")).disable is False


@pytest.mark.parametrize("command", ["train", "distill", "cache-teacher", "augment", "evaluate", "export", "demo",
                                     "benchmark inference", "benchmark training"])  # fmt: skip
def test_the_long_commands_take_quiet(command):
    from .commands import build_parser

    assert "--quiet" in build_parser(command)._option_string_actions
