"""distilqa.infra.console: the library's INFO messages reach the console only inside ``console()``."""

from __future__ import annotations

import logging

from distilqa.infra.console import console

log = logging.getLogger("distilqa.some.module")


def test_info_on_stdout_warnings_on_stderr_only_inside_the_block(capsys, monkeypatch):
    root = logging.getLogger("distilqa")
    monkeypatch.setattr(root, "level", logging.NOTSET)  # as in a fresh process (other tests may have set it)
    handlers = list(root.handlers)
    log.info("before")
    with console():
        log.info("building the cache: %s", "no manifest")
        log.warning("careful")
        logging.getLogger("transformers").info("not ours")
    log.info("after")
    out, err = capsys.readouterr()
    assert out == "building the cache: no manifest\n"
    assert "careful" in err and "before" not in out + err and "after" not in out + err
    assert root.level == logging.NOTSET and root.handlers == handlers  # as it was before the block


def test_a_raised_level_hides_them_inside_the_block(capsys):
    # what --quiet does (distilqa.cli.quiet.silence sets the distilqa logger to ERROR)
    with console():
        logging.getLogger("distilqa").setLevel(logging.ERROR)
        log.info("hidden")
    assert capsys.readouterr().out == ""


def test_the_cli_prints_the_library_messages(tiny_bert_path, tmp_path, capsys):
    from conftest import squad_file
    from distilqa.cli import main

    argv = ["cache-teacher", "--teacher", str(tiny_bert_path), "--train_file", str(squad_file("train.json")),
            "--output", str(tmp_path / "cache"), "--max_train_samples", "4", "--max_seq_length", "64",
            "--doc_stride", "16", "--max_query_length", "16"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0  # the second time the cache is there and is reused
    assert f"Teacher cache {tmp_path / 'cache'}: valid (" in capsys.readouterr().out


def test_a_quiet_command_leaves_the_loggers_as_they_were(tiny_bert_path, tmp_path, capsys, monkeypatch):
    from conftest import squad_file
    from distilqa.cli import main

    root = logging.getLogger("distilqa")
    monkeypatch.setattr(root, "level", logging.NOTSET)
    argv = ["cache-teacher", "--teacher", str(tiny_bert_path), "--train_file", str(squad_file("train.json")),
            "--output", str(tmp_path / "cache"), "--max_train_samples", "4", "--max_seq_length", "64",
            "--doc_stride", "16", "--max_query_length", "16", "--quiet", "true"]  # fmt: skip
    assert main(argv) == 0
    assert "Building the teacher cache" not in capsys.readouterr().out  # --quiet hides the library's messages
    assert root.level == logging.NOTSET  # --quiet's ERROR and the console's INFO are both undone
