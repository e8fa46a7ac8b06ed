"""Tiny models and tokenizers built inside the tests (no hub), and paths to the shared SQuAD subset.

The tokenizer is a real WordPiece tokenizer with a small vocabulary built from the test text; the models are
randomly initialised BERT and DistilBERT question-answering models with a few thousand parameters per layer.
They are built once per test session and saved to folders; a test that changes a model copies the folder.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import string
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = REPO.parent / "shared" / "data" / "squad-v1.1-subset"
DEMO_DATA = REPO / "src" / "distilqa" / "demo" / "data"


def shared_file(name: str) -> Path:
    """A file of the shared SQuAD subset (../shared/data/squad-v1.1-subset), for the few tests about that data.

    A user's fresh clone has no ../shared: the test is skipped there. CI has it: there a missing file fails the
    test loudly instead of skipping it."""
    path = SHARED / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared SQuAD subset at {path}; it is missing")
        pytest.skip(f"shared SQuAD subset not found at {path}")
    return path


def squad_file(name: str) -> Path:
    """``train.json`` (319 questions) or ``dev.json`` (91) of the package's own demo data: real SQuAD v1.1-shaped
    original text that every clone has, for tests that need more than a hand-written fixture."""
    return DEMO_DATA / name


def v2_squad_file(folder: Path, questions: int = 18) -> Path:
    """The first ``questions`` of the demo dev set as official SQuAD 2.0 JSON, every third one unanswerable."""
    document = json.loads(squad_file("dev.json").read_text(encoding="utf-8"))
    count = 0
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            kept = []
            for qa in paragraph["qas"]:
                if count >= questions:
                    break
                if count % 3 == 2:
                    qa = {**qa, "answers": [], "plausible_answers": [], "is_impossible": True}
                else:
                    qa = {**qa, "is_impossible": False}
                kept.append(qa)
                count += 1
            paragraph["qas"] = kept
    document["version"] = "v2.0"
    path = folder / "dev-v2.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _corpus_words(limit: int = 2500) -> list[str]:
    """The tiny tokenizer's words: the most common in the package's own demo data, so the vocabulary is the same
    on every machine, with or without ../shared."""
    counts: collections.Counter[str] = collections.Counter()
    for path in [DEMO_DATA / "train.json", DEMO_DATA / "dev.json"]:
        counts.update(re.findall(r"[a-z]+|[0-9]+", path.read_text(encoding="utf-8").lower()))
    return [w for w, _ in counts.most_common(limit)]


def build_tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *[f"##{c}" for c in chars]]
    vocab += [w for w in _corpus_words() if w not in set(vocab)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(
        vocab=str(folder / "vocab.txt"), do_lower_case=True, model_max_length=512
    ).save_pretrained(folder)
    return BertTokenizerFast.from_pretrained(folder)


def build_bert(folder: Path, tokenizer, layers: int = 2, seed: int = 0):
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    model = BertForQuestionAnswering(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_distilbert(folder: Path, tokenizer, layers: int = 2, seed: int = 0):
    import torch
    from transformers import DistilBertConfig, DistilBertForQuestionAnswering

    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=32,
        n_layers=layers,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=512,
    )
    model = DistilBertForQuestionAnswering(config)
    model.save_pretrained(folder)
    # DistilBERT's own tokenizer class over the same vocabulary: no token_type_ids.
    from transformers import DistilBertTokenizerFast

    vocab = Path(tokenizer.name_or_path) / "vocab.txt"
    DistilBertTokenizerFast(vocab=str(vocab), do_lower_case=True, model_max_length=512).save_pretrained(
        folder
    )
    return folder


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_dir):
    return build_tokenizer(tiny_dir / "tokenizer")


@pytest.fixture(scope="session")
def tiny_bert_path(tiny_dir, tiny_tokenizer) -> Path:
    return build_bert(tiny_dir / "bert", tiny_tokenizer)


@pytest.fixture(scope="session")
def tiny_distilbert_path(tiny_dir, tiny_tokenizer) -> Path:
    return build_distilbert(tiny_dir / "distilbert", tiny_tokenizer)


@pytest.fixture
def tiny_bert_copy(tiny_bert_path, tmp_path) -> Path:
    """A private copy of the tiny BERT folder that a test may change."""
    return Path(shutil.copytree(tiny_bert_path, tmp_path / "bert"))


@pytest.fixture
def tiny_squad(tmp_path) -> Path:
    """A small SQuAD v1.1 file (original text) with a long context that needs several windows."""
    long_context = " ".join(
        f"In year {1900 + i} the village of Marrow Hill planted {i + 3} new oak trees near the old mill."
        for i in range(40)
    )
    data = {
        "version": "1.1",
        "data": [
            {
                "title": "Marrow Hill",
                "paragraphs": [
                    {
                        "context": "The lighthouse at Cape Verlin was built in 1871 by the engineer Tomas Érdi. It stands 42 metres tall.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Who built the lighthouse?",
                                "answers": [{"text": "Tomas Érdi", "answer_start": 64}],
                            },
                            {
                                "id": "q2",
                                "question": "How tall is it?",
                                "answers": [
                                    {"text": "42 metres", "answer_start": 86},
                                    {"text": "42 metres tall", "answer_start": 86},
                                ],
                            },
                        ],
                    },
                    {
                        "context": long_context,
                        "qas": [
                            {
                                "id": "q3",
                                "question": "How many oak trees were planted in year 1935?",
                                "answers": [
                                    {
                                        "text": "38",
                                        "answer_start": long_context.index(
                                            "1935 the village of Marrow Hill planted "
                                        )
                                        + len("1935 the village of Marrow Hill planted "),
                                    }
                                ],
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "tiny_squad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
