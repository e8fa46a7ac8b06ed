"""Safe by default: no network for local folders when offline, no pickle, remote code only on request, no home
paths or secrets in the cards and reports that distilqa writes."""

from __future__ import annotations

import ast
import json
import shutil
import socket
from pathlib import Path

import pytest

from distilqa.cli import main

SRC = Path(__file__).resolve().parents[2] / "src" / "distilqa"
TOKEN = "hf_" + "SecretTokenValue0123456789abcdef"
TRAIN = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16", "--max_steps", "1",
         "--save_strategy", "no", "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true"]  # fmt: skip
ROWS = [
    {
        "id": "a",
        "context": "Ada wrote it in 1843.",
        "question": "Who wrote it?",
        "answers": {"text": ["Ada"], "answer_start": [0]},
    },
    {
        "id": "b",
        "context": "Bob ran the mill.",
        "question": "Who ran the mill?",
        "answers": {"text": ["Bob"], "answer_start": [0]},
    },
]


@pytest.fixture
def no_network(monkeypatch):
    """HF_HUB_OFFLINE=1 (also in the already imported hub library), and any socket connection fails the test."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"network access attempted: connect({address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert not attempts, f"network access attempted: {attempts}"


def test_offline_evaluate_and_train_on_local_folders_never_connect(
    no_network, tiny_bert_path, tmp_path, capsys
):
    data = tmp_path / "data.json"
    data.write_text(json.dumps(ROWS))
    evaluate = ["evaluate", "--model", str(tiny_bert_path), "--data", str(data), "--max-seq-length", "64",
                "--doc-stride", "16", "--max-query-length", "16", "--output-dir", str(tmp_path / "eval"), "--no-progress"]  # fmt: skip
    assert main(evaluate) == 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_questions"] == 2
    train = ["train", "--model_name_or_path", str(tiny_bert_path), "--train_file", str(data), "--output_dir", str(tmp_path / "run"), *TRAIN]  # fmt: skip
    assert main(train) == 0
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            yield node, getattr(owner, "id", getattr(owner, "attr", "")), node.func.attr


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _sources():
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(SRC.rglob("*.py"))]


def test_weights_are_never_unpickled():
    """torch.load only with weights_only=True, np.load never with allow_pickle=True, no pickle module."""
    problems = []
    for path, tree in _sources():
        for call, owner, attr in _calls(tree):
            where = f"{path.relative_to(SRC)}:{call.lineno}"
            if (owner, attr) == ("torch", "load"):
                value = _keyword(call, "weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    problems.append(f"{where}: torch.load without weights_only=True")
            if (owner, attr) == ("np", "load"):
                value = _keyword(call, "allow_pickle")
                if isinstance(value, ast.Constant) and value.value is True:
                    problems.append(f"{where}: np.load(allow_pickle=True)")
            if owner in {"pickle", "dill", "joblib"} and attr in {"load", "loads"}:
                problems.append(f"{where}: {owner}.{attr}")
    assert not problems


# Calls that leave trust_remote_code at its safe default (False) without saying so, in modules owned elsewhere;
# to be made explicit there. Never a reason to accept trust_remote_code=True.
IMPLICIT_DEFAULT_ALLOWED: set[str] = set()


def test_remote_code_only_from_a_user_flag():
    """Every Auto*.from_pretrained passes trust_remote_code from a variable (a user flag), never a literal True."""
    problems = []
    for path, tree in _sources():
        for call, owner, attr in _calls(tree):
            if attr != "from_pretrained" or not owner.startswith("Auto"):
                continue
            where = f"{path.relative_to(SRC)}:{call.lineno}"
            value = _keyword(call, "trust_remote_code")
            if value is None and path.name not in IMPLICIT_DEFAULT_ALLOWED:
                problems.append(f"{where}: {owner}.from_pretrained without an explicit trust_remote_code")
            if isinstance(value, ast.Constant) and value.value is not False:
                problems.append(f"{where}: trust_remote_code={value.value!r}")
    assert not problems


def test_cards_and_reports_have_no_home_path_or_token(tiny_bert_path, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home" / "someone"
    model = Path(shutil.copytree(tiny_bert_path, home / "models" / "bert"))
    data = home / "data" / "squad.json"
    data.parent.mkdir(parents=True)
    data.write_text(json.dumps(ROWS))
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.chdir(elsewhere)  # paths are under HOME, not under the working folder
    run = home / "runs" / "teacher"
    assert main(["train", "--model_name_or_path", str(model), "--train_file", str(data), "--eval_file", str(data),
                 "--output_dir", str(run), "--hub_token", TOKEN, *TRAIN]) == 0  # fmt: skip
    assert (
        main(
            [
                "init-student",
                "--teacher",
                str(run),
                "--layers",
                "0",
                "--output",
                str(home / "runs" / "student"),
            ]
        )
        == 0
    )
    assert main(["evaluate", "--model", str(run), "--data", str(data), "--max-seq-length", "64", "--doc-stride", "16",
                 "--max-query-length", "16", "--output-dir", str(home / "runs" / "eval"), "--no-progress"]) == 0  # fmt: skip
    written = [
        run / "model" / "README.md",
        run / "metrics.json",
        home / "runs" / "student" / "README.md",
        home / "runs" / "student" / "distilqa_student.json",
        home / "runs" / "eval" / "metrics.json",
    ]
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert str(home) not in text, f"{path.name} holds the home path"
        assert TOKEN not in text, f"{path.name} holds the hub token"
    assert "~/models/bert" in (run / "model" / "README.md").read_text()  # the path is kept, made public
