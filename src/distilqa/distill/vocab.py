"""Trim a student's vocabulary to the tokens its training data uses (the embedding matrix is most of a small model).

The kept tokens are every token the teacher's tokenizer produces on the questions and contexts of the training
file(s), every special token and every single-character piece of the vocabulary (``"x"`` and ``"##x"`` for
WordPiece), so that a word the data never showed still tokenizes, character by character. Optionally only the
``size`` most frequent of the other tokens are kept.

Because WordPiece matches the longest piece first, a tokenizer holding every piece the teacher used on a text
tokenizes that text into exactly the same pieces; other text may split differently (never into ``[UNK]`` where
the teacher had a piece, since every single character is kept).

Example::

    >>> from distilqa.distill.vocab import choose_vocab, count_tokens, trim_model, trim_tokenizer
    >>> counts = count_tokens(tokenizer, ["train.json"])
    >>> kept = choose_vocab(tokenizer, counts, size=8000)
    >>> trim_model(student, kept)
    >>> tokenizer = trim_tokenizer(tokenizer, kept, "runs/student-tokenizer")
"""

from __future__ import annotations

import collections
import json
import logging
import os
from pathlib import Path
from typing import Any

from distilqa.errors import InputError
from distilqa.infra.files import file_sha256

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
# Config fields holding token ids that must follow the new numbering.
TOKEN_ID_FIELDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id")


def backend_json(tokenizer) -> dict[str, Any]:
    """The fast tokenizer's full definition (``tokenizer.json``) as a dict.

    Raises:
        InputError: the tokenizer is not a WordPiece fast tokenizer (BPE, Unigram, a Python-only tokenizer).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise InputError(
            f"--vocab_from supports WordPiece tokenizers; this teacher's is {type(tokenizer).__name__} "
            "(not a fast tokenizer)"
        )
    definition = json.loads(backend.to_str())
    kind = definition.get("model", {}).get("type")
    if kind != "WordPiece":
        raise InputError(f"--vocab_from supports WordPiece tokenizers; this teacher's is {kind}")
    return definition


def read_texts(files: list[str | os.PathLike]) -> collections.Counter[str]:
    """How often each question and context occurs in the SQuAD file(s) (a context once per question on it).

    Raises:
        InputError: no file, a missing file, or a file that is not SQuAD data (one line naming it).
    """
    from distilqa.qa.data import load_examples

    if not files:
        raise InputError("--vocab_from needs at least one training file")
    texts: collections.Counter[str] = collections.Counter()
    for path in files:
        if not Path(path).is_file():
            what = "is a folder" if Path(path).is_dir() else "does not exist"
            raise InputError(f"--vocab_from {path} {what}; give the SQuAD .json/.jsonl training file")
        examples = load_examples(path, check_offsets="ignore")
        for row in examples:
            texts[row["question"]] += 1
            texts[row["context"]] += 1
    return texts


def count_tokens(tokenizer, files: list[str | os.PathLike]) -> collections.Counter[int]:
    """Token ids (no special tokens added) over the questions and contexts of SQuAD file(s), with their counts.

    A context is counted once per question asked on it, as training sees it.

    Raises:
        InputError: see :func:`read_texts`.
    """
    texts = read_texts(files)
    unique = list(texts)
    counts: collections.Counter[int] = collections.Counter()
    batch = 256
    for start in range(0, len(unique), batch):
        chunk = unique[start : start + batch]
        encoded = tokenizer(chunk, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        for text, ids in zip(chunk, encoded, strict=True):
            weight = texts[text]
            for token_id in ids:
                counts[token_id] += weight
    return counts


def special_ids(tokenizer) -> list[int]:
    """The ids of every special token (``[PAD]``, ``[UNK]``, ``[CLS]``, ... and added special tokens), sorted."""
    ids = set(tokenizer.all_special_ids)
    for token_id, added in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(added, "special", False):
            ids.add(int(token_id))
    return sorted(i for i in ids if i is not None)


def single_character_ids(tokenizer, prefix: str | None = None) -> list[int]:
    """The ids of the vocabulary's one-character pieces: ``"x"`` and (WordPiece) ``"##x"``, sorted."""
    if prefix is None:
        prefix = backend_json(tokenizer)["model"].get("continuing_subword_prefix") or "##"
    vocab = tokenizer.get_vocab()
    return sorted(
        i
        for token, i in vocab.items()
        if len(token) == 1 or (token.startswith(prefix) and len(token) == len(prefix) + 1)
    )


def choose_vocab(tokenizer, counts: collections.Counter[int], size: int | None = None) -> list[int]:
    """The old ids to keep, in the new order: the special tokens first (in their old order), then the rest by old id.

    Kept: every special token, every single-character piece, and every token of ``counts`` (the ``size`` most
    frequent of those that are neither special nor one character when ``size`` is given; ties go to the lower
    id). With BERT's vocabulary (``[PAD]`` 0, ``[UNK]`` 100, ...) ``[PAD]`` stays 0.

    Raises:
        InputError: ``size`` below 0.
    """
    if size is not None and size < 0:
        raise InputError(f"--vocab_size {size} is negative; give 0 or more")
    specials = special_ids(tokenizer)
    always = set(specials) | set(single_character_ids(tokenizer))
    known = set(tokenizer.get_vocab().values())
    used = [i for i, n in counts.items() if n > 0 and i not in always and i in known]
    if size is not None:
        used = sorted(used, key=lambda i: (-counts[i], i))[:size]
    rest = sorted((always - set(specials)) | set(used))
    return specials + rest


def trim_model(model, kept_ids: list[int]):
    """Keep only ``kept_ids`` rows of the input embeddings (new id ``i`` is old id ``kept_ids[i]``), in place.

    Tied output embeddings (a masked-LM head) follow; untied ones are sliced the same way. ``config.vocab_size``
    and the config's token ids (``pad_token_id``, ...) take the new numbering. Returns the model.

    Raises:
        InputError: an id is not a row of the embedding matrix.
    """
    import torch

    embeddings = model.get_input_embeddings()
    rows = embeddings.weight.shape[0]
    bad = [i for i in kept_ids if not 0 <= i < rows]
    if bad:
        raise InputError(
            f"token id {bad[0]} is not a row of the model's {rows}-row embedding matrix; the tokenizer and the "
            "model do not match"
        )
    new_id = {old: new for new, old in enumerate(kept_ids)}
    index = torch.tensor(kept_ids, dtype=torch.long, device=embeddings.weight.device)
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is embeddings.weight
    with torch.no_grad():
        embeddings.weight = torch.nn.Parameter(embeddings.weight.index_select(0, index).clone())
    embeddings.num_embeddings = len(kept_ids)
    if getattr(embeddings, "padding_idx", None) is not None:
        embeddings.padding_idx = new_id.get(embeddings.padding_idx)
    if output is not None:
        with torch.no_grad():
            if tied or getattr(model.config, "tie_word_embeddings", False):
                output.weight = embeddings.weight
            else:
                output.weight = torch.nn.Parameter(output.weight.index_select(0, index).clone())
            bias = getattr(output, "bias", None)
            if bias is not None and bias.shape[0] == rows:
                output.bias = torch.nn.Parameter(bias.index_select(0, index).clone())
        if hasattr(output, "out_features"):
            output.out_features = len(kept_ids)
    model.config.vocab_size = len(kept_ids)
    for name in TOKEN_ID_FIELDS:
        value = getattr(model.config, name, None)
        if isinstance(value, int):
            setattr(model.config, name, new_id.get(value))
    return model


def _remap_post_processor(processor: dict[str, Any] | None, new_id: dict[str, int]) -> None:
    """Give the post-processor's special tokens their new ids, in place (template, BERT-style, or a sequence)."""
    if not processor:
        return
    kind = processor.get("type")
    if kind == "TemplateProcessing":
        for special in processor.get("special_tokens", {}).values():
            special["ids"] = [new_id[token] for token in special["tokens"]]
    elif kind in {"BertProcessing", "RobertaProcessing"}:
        for key in ("sep", "cls"):
            token = processor[key][0]
            processor[key] = [token, new_id[token]]
    elif kind == "Sequence":
        for inner in processor.get("processors", []):
            _remap_post_processor(inner, new_id)


def trimmed_definition(tokenizer, kept_ids: list[int]) -> dict[str, Any]:
    """The teacher's ``tokenizer.json`` with only ``kept_ids`` in its vocabulary, renumbered 0..n-1.

    Normaliser, pre-tokenizer, decoder and WordPiece settings are the teacher's; added tokens, the
    post-processor's special tokens and the padding token take their new ids.
    """
    definition = backend_json(tokenizer)
    id_to_token = {i: t for t, i in tokenizer.get_vocab().items()}
    tokens = [id_to_token[i] for i in kept_ids]
    new_id = {token: i for i, token in enumerate(tokens)}
    definition["model"]["vocab"] = new_id
    added = []
    for entry in definition.get("added_tokens", []):
        if entry["content"] in new_id:
            added.append({**entry, "id": new_id[entry["content"]]})
    definition["added_tokens"] = added
    _remap_post_processor(definition.get("post_processor"), new_id)
    padding = definition.get("padding")
    if padding and padding.get("pad_token") in new_id:
        padding["pad_id"] = new_id[padding["pad_token"]]
    return definition


def trim_tokenizer(tokenizer, kept_ids: list[int], out_dir: str | os.PathLike):
    """Write a tokenizer with only ``kept_ids`` (renumbered in that order) to ``out_dir``; returns it reloaded.

    The folder holds what ``tokenizer.save_pretrained`` writes (same class, special tokens, ``model_max_length``)
    with the trimmed ``tokenizer.json`` (and ``vocab.txt`` when one is written); it reloads with
    ``AutoTokenizer.from_pretrained(out_dir)``.

    Raises:
        InputError: the tokenizer is not a WordPiece fast tokenizer.
    """
    from transformers import AutoTokenizer

    definition = trimmed_definition(tokenizer, kept_ids)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / TOKENIZER_FILE).write_text(json.dumps(definition, ensure_ascii=False), encoding="utf-8")
    tokens = sorted(definition["model"]["vocab"], key=definition["model"]["vocab"].get)
    if (out_dir / "vocab.txt").is_file():
        (out_dir / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    config_path = out_dir / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if isinstance(config.get("added_tokens_decoder"), dict):
            new_id = definition["model"]["vocab"]
            config["added_tokens_decoder"] = {
                str(new_id[entry["content"]]): entry
                for entry in config["added_tokens_decoder"].values()
                if entry.get("content") in new_id
            }
            config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    trimmed = AutoTokenizer.from_pretrained(str(out_dir), trust_remote_code=False)  # a WordPiece we wrote
    if trimmed.get_vocab() != definition["model"]["vocab"]:
        raise RuntimeError(f"the tokenizer written to {out_dir} does not reload with the trimmed vocabulary")
    return trimmed


def embedding_parameters(model) -> int:
    """Parameters of the input embeddings (plus untied output embeddings, if any)."""
    count = model.get_input_embeddings().weight.numel()
    output = model.get_output_embeddings()
    if output is not None and output.weight is not model.get_input_embeddings().weight:
        count += output.weight.numel()
    return count


def trim_student(student, tokenizer, files: list[str], counts=None, size: int | None = None):
    """Trim ``student`` (in place) and ``tokenizer`` to the vocabulary of ``files``; ``(tokenizer, info)``.

    Args:
        student: the model from :func:`distilqa.distill.student.init_student`.
        tokenizer: the teacher's (WordPiece fast) tokenizer.
        files: the SQuAD training file(s) whose questions and contexts choose the tokens.
        counts (`Counter`, *optional*): :func:`count_tokens` of ``files``, when already computed.
        size (`int`, *optional*): keep only this many of the most frequent tokens besides special tokens and
            single characters.

    Returns:
        The trimmed tokenizer and ``info``: ``vocab_from`` (each file and its sha256), ``vocab_size``,
        ``teacher_vocab_size``, ``vocab_size_limit``, ``embedding_parameters_before`` / ``_after`` and
        ``parameters_before`` / ``_after``.
    """
    import tempfile

    from distilqa.infra.models import count_parameters

    if counts is None:
        counts = count_tokens(tokenizer, files)
    before, embedding_before = count_parameters(student), embedding_parameters(student)
    teacher_vocab = student.get_input_embeddings().weight.shape[0]
    kept = choose_vocab(tokenizer, counts, size)
    trim_model(student, kept)
    with tempfile.TemporaryDirectory(prefix="distilqa-vocab-") as tmp:
        trimmed = trim_tokenizer(tokenizer, kept, tmp)
    info = {
        "vocab_from": [{"file": str(path), "sha256": file_sha256(path)} for path in files],
        "vocab_size": len(kept),
        "teacher_vocab_size": teacher_vocab,
        "vocab_size_limit": size,
        "parameters_before": before,
        "parameters_after": count_parameters(student),
        "embedding_parameters_before": embedding_before,
        "embedding_parameters_after": embedding_parameters(student),
    }
    logger.info("kept %d of %d tokens", len(kept), teacher_vocab)
    return trimmed, info
