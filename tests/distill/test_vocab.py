from __future__ import annotations

import copy
import json

import pytest
import torch
from transformers import AutoTokenizer

from conftest import squad_file
from distilqa.distill.student import init_student
from distilqa.distill.vocab import (
    backend_json,
    choose_vocab,
    count_tokens,
    read_texts,
    single_character_ids,
    special_ids,
    trim_model,
    trim_student,
    trim_tokenizer,
)
from distilqa.errors import InputError
from distilqa.infra.models import load_qa_model


@pytest.fixture(scope="module")
def teacher_tokenizer(tiny_bert_path):
    return AutoTokenizer.from_pretrained(tiny_bert_path)


@pytest.fixture(scope="module")
def train_counts(teacher_tokenizer):
    return count_tokens(teacher_tokenizer, [squad_file("train.json")])


@pytest.fixture(scope="module")
def trimmed(tiny_bert_path, teacher_tokenizer, tmp_path_factory):
    """``(untrimmed student, trimmed student, trimmed tokenizer, info)`` from the demo training file."""
    student, _ = init_student(tiny_bert_path, layers=[1, 0])
    reference = copy.deepcopy(student)
    tokenizer, info = trim_student(student, teacher_tokenizer, [str(squad_file("train.json"))])
    folder = tmp_path_factory.mktemp("trimmed")
    student.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return reference, student, tokenizer, info, folder


def _texts(path) -> list[str]:
    return list(read_texts([path]))


# ----- choosing the vocabulary -------------------------------------------------------------------------------


def test_counts_cover_questions_and_contexts(teacher_tokenizer, tiny_squad):
    counts = count_tokens(teacher_tokenizer, [tiny_squad])
    vocab = teacher_tokenizer.get_vocab()
    assert counts[vocab["lighthouse"]] == 3  # twice in q1's and q2's copy of the context, once in q1
    assert counts[vocab["oak"]] == 41  # 40 times in the long context, once in q3
    assert vocab["[CLS]"] not in counts  # no special tokens added


def test_choose_vocab_keeps_specials_first_single_characters_and_used_tokens(teacher_tokenizer, train_counts):
    kept = choose_vocab(teacher_tokenizer, train_counts)
    vocab = teacher_tokenizer.get_vocab()
    specials = special_ids(teacher_tokenizer)
    assert kept[: len(specials)] == specials
    assert kept[0] == vocab["[PAD]"] == 0 and vocab["[UNK]"] in kept
    assert kept[len(specials) :] == sorted(kept[len(specials) :])
    assert set(single_character_ids(teacher_tokenizer)) <= set(kept)
    assert {vocab["x"], vocab["##x"], vocab["#"], vocab["##7"]} <= set(kept)
    assert set(train_counts) <= set(kept)
    assert len(kept) == len(set(kept)) < len(vocab)  # the tiny vocabulary has words the demo data lacks


def test_vocab_size_keeps_the_most_frequent(teacher_tokenizer, train_counts):
    always = set(special_ids(teacher_tokenizer)) | set(single_character_ids(teacher_tokenizer))
    kept = set(choose_vocab(teacher_tokenizer, train_counts, size=20))
    extra = kept - always
    dropped = set(train_counts) - kept
    assert len(extra) == 20 and always <= kept and dropped
    assert min(train_counts[i] for i in extra) >= max(train_counts[i] for i in dropped)
    assert teacher_tokenizer.get_vocab()["the"] in extra
    assert set(choose_vocab(teacher_tokenizer, train_counts, size=0)) == always


# ----- the trimmed model -------------------------------------------------------------------------------------


def test_every_kept_row_is_the_teachers_row(tiny_bert_path, teacher_tokenizer, trimmed):
    _, student, tokenizer, info, _ = trimmed
    teacher = load_qa_model(tiny_bert_path).get_input_embeddings().weight
    rows = student.get_input_embeddings().weight
    teacher_vocab = teacher_tokenizer.get_vocab()
    assert rows.shape[0] == len(tokenizer) == info["vocab_size"] == student.config.vocab_size
    for token, new_id in tokenizer.get_vocab().items():
        assert torch.equal(rows[new_id], teacher[teacher_vocab[token]]), token
    assert info["teacher_vocab_size"] == len(teacher_tokenizer)
    assert info["embedding_parameters_after"] == rows.numel() < info["embedding_parameters_before"]
    assert info["parameters_before"] - info["parameters_after"] == (
        info["embedding_parameters_before"] - info["embedding_parameters_after"]
    )


def test_same_logits_as_the_untrimmed_student_on_kept_tokens(teacher_tokenizer, trimmed):
    reference, _, tokenizer, _, folder = trimmed
    student = load_qa_model(folder)  # what was saved reloads with the smaller matrix
    texts = _texts(squad_file("train.json"))
    questions, contexts = texts[:4:2], texts[1:4:2]
    old = teacher_tokenizer(
        questions, contexts, padding=True, truncation=True, max_length=96, return_tensors="pt"
    )
    new = tokenizer(questions, contexts, padding=True, truncation=True, max_length=96, return_tensors="pt")
    kept = torch.tensor(
        [
            teacher_tokenizer.get_vocab()[t]
            for t in sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
        ]
    )
    assert torch.equal(kept[new["input_ids"]], old["input_ids"])
    assert torch.equal(new["attention_mask"], old["attention_mask"])
    assert torch.equal(new["token_type_ids"], old["token_type_ids"])
    with torch.no_grad():
        expected, got = reference(**old), student(**new)
    assert torch.allclose(got.start_logits, expected.start_logits, atol=1e-6)
    assert torch.allclose(got.end_logits, expected.end_logits, atol=1e-6)


def test_tied_output_embeddings_follow(teacher_tokenizer, train_counts):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(teacher_tokenizer), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64)  # fmt: skip
    model = BertForMaskedLM(config).eval()
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    reference = copy.deepcopy(model)
    kept = choose_vocab(teacher_tokenizer, train_counts, size=30)
    trim_model(model, kept)
    output = model.get_output_embeddings()
    assert output.weight is model.get_input_embeddings().weight
    assert output.weight.shape[0] == output.bias.shape[0] == len(kept) == model.config.vocab_size
    new_ids = torch.tensor([[2, 7, 40, len(kept) - 1, 3]])
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(kept)[new_ids]).logits[..., kept]
        got = model(input_ids=new_ids).logits
    assert torch.allclose(got, expected, atol=1e-5)


def test_an_id_outside_the_matrix_is_refused(tiny_bert_path):
    model = load_qa_model(tiny_bert_path)
    rows = model.get_input_embeddings().weight.shape[0]
    with pytest.raises(InputError, match=f"token id {rows} is not a row"):
        trim_model(model, [0, 1, rows])


# ----- the trimmed tokenizer ---------------------------------------------------------------------------------


def test_trimmed_tokenizer_reloads_with_auto_tokenizer(teacher_tokenizer, trimmed):
    _, _, tokenizer, _, folder = trimmed
    reloaded = AutoTokenizer.from_pretrained(folder)
    assert reloaded.is_fast and type(reloaded) is type(teacher_tokenizer)
    assert reloaded.get_vocab() == tokenizer.get_vocab() and len(reloaded) < len(teacher_tokenizer)
    assert reloaded.model_max_length == teacher_tokenizer.model_max_length
    assert reloaded.all_special_tokens == teacher_tokenizer.all_special_tokens
    assert reloaded.pad_token_id == 0
    encoded = reloaded("who built it?", "the mill")
    tokens = reloaded.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens == teacher_tokenizer.convert_ids_to_tokens(
        teacher_tokenizer("who built it?", "the mill")["input_ids"]
    )
    assert encoded["token_type_ids"] == teacher_tokenizer("who built it?", "the mill")["token_type_ids"]


def test_special_tokens_that_move_get_their_new_ids(teacher_tokenizer, tiny_squad, tmp_path):
    """BERT's layout: ``[PAD]`` 0, unused tokens, then ``[UNK]`` ``[CLS]`` ``[SEP]`` ``[MASK]``; the unused go."""
    from transformers import BertTokenizerFast

    words = [t for t in sorted(teacher_tokenizer.get_vocab(), key=teacher_tokenizer.get_vocab().get)][5:]
    vocab = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    bert = BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"), do_lower_case=True, model_max_length=384)
    kept = choose_vocab(bert, count_tokens(bert, [tiny_squad]))
    assert kept[:5] == [0, 3, 4, 5, 6]
    reloaded = AutoTokenizer.from_pretrained(trim_tokenizer(bert, kept, tmp_path / "tok").name_or_path)
    assert (reloaded.pad_token_id, reloaded.unk_token_id, reloaded.cls_token_id, reloaded.sep_token_id) == (
        0,
        1,
        2,
        3,
    )
    assert reloaded.model_max_length == 384
    encoded = reloaded("who built it?", "the mill")
    assert encoded["input_ids"][0] == 2 and encoded["input_ids"][-1] == 3
    assert reloaded.convert_ids_to_tokens(encoded["input_ids"]) == bert.convert_ids_to_tokens(
        bert("who built it?", "the mill")["input_ids"]
    )
    padded = reloaded(["who", "who built it?"], padding=True)["input_ids"]
    assert padded[0][-1] == 0
    definition = json.loads((tmp_path / "tok" / "tokenizer.json").read_text(encoding="utf-8"))
    specials = definition["post_processor"]["special_tokens"]
    assert specials["[CLS]"]["ids"] == [2] and specials["[SEP]"]["ids"] == [3]
    assert {t["content"]: t["id"] for t in definition["added_tokens"]} == {
        "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4
    }  # fmt: skip


@pytest.mark.parametrize("name", ["train.json", "tiny"])
def test_training_texts_tokenize_to_the_teachers_pieces(teacher_tokenizer, tiny_squad, tmp_path, name):
    path = squad_file(name) if name != "tiny" else tiny_squad
    kept = choose_vocab(teacher_tokenizer, count_tokens(teacher_tokenizer, [path]))
    tokenizer = trim_tokenizer(teacher_tokenizer, kept, tmp_path / "tok")
    texts = _texts(path)
    assert texts
    for text in texts:
        assert tokenizer.tokenize(text) == teacher_tokenizer.tokenize(text), text[:80]


def test_a_word_outside_the_data_falls_back_to_characters(teacher_tokenizer, tiny_squad, tmp_path):
    kept = choose_vocab(teacher_tokenizer, count_tokens(teacher_tokenizer, [tiny_squad]))
    tokenizer = trim_tokenizer(teacher_tokenizer, kept, tmp_path / "tok")
    vocab = tokenizer.get_vocab()
    assert "government" in teacher_tokenizer.get_vocab() and "government" not in vocab
    for text in ["government", "the government's 1999 budget", "Érdi qzxv"]:
        pieces = tokenizer.tokenize(text)
        assert "[UNK]" not in pieces and "[UNK]" not in teacher_tokenizer.tokenize(text)
        assert "".join(p.removeprefix("##") for p in pieces) == "".join(
            teacher_tokenizer.tokenize(text)
        ).replace("##", "")
    assert tokenizer.tokenize("government") == ["g", *[f"##{c}" for c in "overnment"]]
    # where the teacher has no piece either, both give [UNK]
    assert tokenizer.tokenize("日本") == teacher_tokenizer.tokenize("日本") == ["[UNK]", "[UNK]"]


def test_other_tokenizer_types_are_refused(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(
        models.BPE(vocab={"a": 0, "b": 1, "ab": 2, "<unk>": 3}, merges=[("a", "b")], unk_token="<unk>")
    )
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    with pytest.raises(
        InputError, match="^--vocab_from supports WordPiece tokenizers; this teacher's is BPE$"
    ):
        backend_json(tokenizer)
    with pytest.raises(InputError, match="supports WordPiece"):
        trim_tokenizer(tokenizer, [0, 1, 3], tmp_path / "tok")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "does not exist"),
        ('{"foo": 1}', "unknown schema"),
        ("not json at all", "not valid JSON"),
    ],
)
def test_bad_training_files_are_refused(teacher_tokenizer, tmp_path, content, match):
    path = tmp_path / "train.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        count_tokens(teacher_tokenizer, [path])
