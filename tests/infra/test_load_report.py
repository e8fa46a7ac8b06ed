"""A base encoder loaded as a QA model: one plain line about the new head, not transformers' colour-coded LOAD
REPORT table of MISSING / UNEXPECTED keys."""

from __future__ import annotations

import logging
import shutil


def test_base_encoder_as_qa_model_logs_one_plain_line(tiny_bert_path, tmp_path, capfd, caplog):
    from transformers import BertConfig, BertModel

    from distilqa.infra.models import load_qa_model

    base = tmp_path / "base"
    BertModel(BertConfig.from_pretrained(tiny_bert_path)).save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_bert_path / name, base / name)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    transformers_logger = logging.getLogger("transformers")  # it does not propagate to the root logger
    transformers_logger.addHandler(handler)
    capfd.readouterr()
    try:
        with caplog.at_level(logging.INFO, logger="distilqa"):
            model = load_qa_model(base, require_qa_head=False)
    finally:
        transformers_logger.removeHandler(handler)
    assert model.qa_outputs.weight.shape[0] == 2
    printed = "".join(capfd.readouterr()) + "".join(str(r.msg) for r in records)
    for word in ("LOAD REPORT", "MISSING", "UNEXPECTED", "\x1b["):
        assert word not in printed, printed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{base} has no question-answering head: qa_outputs is newly initialised "
                        "(expected for a base encoder; training learns it)"]  # fmt: skip
    assert any("not used by the QA model: pooler" in r.getMessage() for r in caplog.records)


def test_a_qa_model_loads_without_a_line(tiny_bert_path, caplog):
    from distilqa.infra.models import load_qa_model

    with caplog.at_level(logging.INFO, logger="distilqa"):
        load_qa_model(tiny_bert_path)
    assert [r for r in caplog.records if r.name.startswith("distilqa")] == []
