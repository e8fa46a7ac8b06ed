"""Teacher-logit cache: distillation from it equals the online teacher; stale and torn caches are never used.

Tolerances: the cache stores float16, which rounds each logit to within |x| * 2**-11. Per-step losses must agree
with the online teacher's within 1e-3 relative (they agree to ~1e-7) and the final student weights within 1e-4
absolute. The weights' bound holds for a fine-tuning learning rate (5e-5): the QA head's bias gets an exactly
zero gradient (a softmax over positions ignores a constant shift), AdamW turns its float noise into steps of
+-lr whatever the teacher, so the two runs may differ there by up to 2 * lr per step (SGD agrees to 1e-8).
The student keeps its dropout (0.1); both runs share one seed, so the masks agree: the online teacher runs in
eval mode and draws no random numbers.
"""

from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import build_bert, squad_file
from distilqa.cli import main as cli_main
from distilqa.distill.cache.fingerprint import compute_fingerprint
from distilqa.distill.cache.store import LOGITS_FILE, MANIFEST_FILE, CacheInvalidError, TeacherCache
from distilqa.distill.config import DistillationConfig
from distilqa.distill.trainer import CACHE_INDEX, DistillationTrainer
from distilqa.errors import InputError
from distilqa.infra.models import load_qa_model, load_tokenizer
from distilqa.qa.data import load_examples
from distilqa.qa.features import FeatureParams, build_train_features

PARAMS = dict(max_seq_length=64, doc_stride=24, max_query_length=20)
QUESTIONS = 16  # about 70 windows of the demo data: 6+ optimizer steps even at batch 8 x 2 accumulation
LOSS_RTOL = 1e-3
# Adam moves a weight by about lr (5e-5) per step whatever the gradient's size, so float16-rounded teacher
# logits can flip the update of a near-zero gradient element on a step or two: up to ~2-4 lr apart. The losses
# (LOSS_RTOL) are the tight check; this one catches weights that drift apart over every step.
WEIGHT_ATOL = 2e-4


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models run faster on one thread, and a busy machine's OpenMP spin-waits stay out of the timings.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_bert_path, tiny_tokenizer):
    """Teacher (2-layer BERT), student (1-layer BERT), train features and a cache built for them."""
    root = tmp_path_factory.mktemp("teacher_cache")
    student = build_bert(root / "student", tiny_tokenizer, layers=1, seed=1)
    tokenizer = load_tokenizer(student)
    examples = load_examples(squad_file("train.json"), limit=QUESTIONS)
    features = build_train_features(examples, tokenizer, FeatureParams(**PARAMS)).remove_columns(
        ["example_index"]
    )
    cache = TeacherCache.load_or_build(
        root / "cache", tiny_bert_path, tokenizer, features, make_config(root / "out")
    )
    return {
        "root": root,
        "teacher": tiny_bert_path,
        "student": student,
        "tokenizer": tokenizer,
        "features": features,
        "cache": cache,
    }


def make_config(output_dir, **overrides) -> DistillationConfig:
    values = dict(
        output_dir=str(output_dir),
        **PARAMS,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        max_steps=6,
        learning_rate=5e-5,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_pin_memory=False,
        seed=0,
    )
    values.update(overrides)
    return DistillationConfig(**values)


class RecordingTrainer(DistillationTrainer):
    """Keeps every micro-batch loss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.losses: list[float] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self.losses.append(float((loss[0] if return_outputs else loss).detach()))
        return loss


def distill(setup, output_dir, cached: bool, resume: str | None = None, **overrides) -> RecordingTrainer:
    from transformers import set_seed

    config = make_config(output_dir, **overrides)
    set_seed(config.seed)
    features = setup["features"]
    if cached:
        features = features.add_column(CACHE_INDEX, list(range(len(features))))
    trainer = RecordingTrainer(
        model=load_qa_model(setup["student"]),
        teacher=None if cached else load_qa_model(setup["teacher"]),
        teacher_cache=setup["cache"] if cached else None,
        args=config,
        train_dataset=features,
        processing_class=setup["tokenizer"],
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def max_weight_difference(a, b) -> float:
    other = dict(b.model.named_parameters())
    return max(float((p.detach() - other[n].detach()).abs().max()) for n, p in a.model.named_parameters())


def test_lookup_returns_the_teachers_rows_in_any_order(setup):
    cache, features = setup["cache"], setup["features"]
    assert len(cache) == len(features) and cache.seq_len == PARAMS["max_seq_length"]
    index = torch.tensor([5, 0, 17, 5, len(features) - 1])
    start, end = cache.lookup(index)
    assert start.shape == end.shape == (5, PARAMS["max_seq_length"]) and start.dtype == torch.float16
    teacher = load_qa_model(setup["teacher"])
    batch = features.with_format("torch", columns=["input_ids", "token_type_ids", "attention_mask"])[
        index.tolist()
    ]
    with torch.inference_mode():
        live = teacher(**batch)
    scale = float(live.start_logits.abs().max())
    assert torch.allclose(start.float(), live.start_logits, atol=scale * 2**-10, rtol=0)
    assert torch.allclose(end.float(), live.end_logits, atol=scale * 2**-10, rtol=0)
    # Pickling (DataLoader workers, spawned processes) drops the memory map; the copy reopens it.
    clone = pickle.loads(pickle.dumps(cache))
    assert torch.equal(clone.lookup(index)[0], start)
    with pytest.raises(InputError, match="outside the teacher cache"):
        cache.lookup(torch.tensor([len(features)]))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "gradient_accumulation_steps": 2,
            "per_device_train_batch_size": 8,
            "num_train_epochs": 2,
            "max_steps": -1,
        },
    ],
    ids=["plain", "accumulation-2-epochs"],
)
def test_cached_distillation_equals_online(setup, tmp_path, overrides):
    online = distill(setup, tmp_path / "online", cached=False, **overrides)
    cached = distill(setup, tmp_path / "cached", cached=True, **overrides)
    assert online.state.global_step == cached.state.global_step >= 6
    assert len(online.losses) == len(cached.losses)
    np.testing.assert_allclose(cached.losses, online.losses, rtol=LOSS_RTOL)
    assert max_weight_difference(online, cached) < WEIGHT_ATOL


def test_resume_from_a_checkpoint_with_the_cache(setup, tmp_path):
    straight = distill(setup, tmp_path / "straight", cached=True, save_strategy="steps", save_steps=3)
    resumed = distill(
        setup, tmp_path / "resumed", cached=True, resume=str(tmp_path / "straight" / "checkpoint-3")
    )
    # Steps 4-6 only, on the same shuffled batches as the uninterrupted run.
    assert resumed.state.global_step == 6 and len(resumed.losses) == 3
    np.testing.assert_allclose(resumed.losses, straight.losses[3:], rtol=1e-6)
    assert max_weight_difference(straight, resumed) < 1e-6


def test_other_feature_params_are_rebuilt_or_refused(setup, tmp_path, caplog):
    path = Path(shutil.copytree(setup["cache"].path, tmp_path / "cache"))
    params = FeatureParams(72, 24, 20)
    examples = load_examples(squad_file("train.json"), limit=QUESTIONS)
    features = build_train_features(examples, setup["tokenizer"], params).remove_columns(["example_index"])
    fingerprint = compute_fingerprint(setup["teacher"], setup["tokenizer"], features, params, "float32")
    with pytest.raises(CacheInvalidError, match=r"features \(max_seq_length 64 -> 72\)"):
        TeacherCache.load(path, fingerprint)
    with pytest.raises(CacheInvalidError, match="built for other inputs"):
        TeacherCache.load(path, fingerprint.digest)
    config = make_config(tmp_path / "out", max_seq_length=72)
    with caplog.at_level(
        logging.INFO, logger="distilqa"
    ):  # the library logs; the CLI prints it (infra.console)
        cache = TeacherCache.load_or_build(path, setup["teacher"], setup["tokenizer"], features, config)
    assert "max_seq_length 64 -> 72" in caplog.text
    assert cache.built and cache.seq_len == 72 and cache.fingerprint == fingerprint.digest
    # The teacher dtype is part of the key too.
    with pytest.raises(CacheInvalidError, match="teacher_dtype"):
        TeacherCache.load(
            path, compute_fingerprint(setup["teacher"], setup["tokenizer"], features, params, "bfloat16")
        )


def test_torn_or_edited_cache_is_detected_and_rebuilt(setup, tmp_path, caplog):
    source = setup["cache"].path
    truncated = Path(shutil.copytree(source, tmp_path / "truncated"))
    with open(truncated / LOGITS_FILE, "r+b") as handle:
        handle.truncate((truncated / LOGITS_FILE).stat().st_size - 100)
    with pytest.raises(CacheInvalidError, match="torn"):
        TeacherCache.load(truncated)
    edited = Path(shutil.copytree(source, tmp_path / "edited"))
    data = bytearray((edited / LOGITS_FILE).read_bytes())
    data[-1] ^= 0xFF
    (edited / LOGITS_FILE).write_bytes(bytes(data))
    with pytest.raises(CacheInvalidError, match="sha256"):
        TeacherCache.load(edited)
    missing = Path(shutil.copytree(source, tmp_path / "missing"))
    (missing / MANIFEST_FILE).unlink()
    with pytest.raises(CacheInvalidError, match="no manifest.json"):
        TeacherCache.load(missing)
    with caplog.at_level(logging.INFO, logger="distilqa"):
        cache = TeacherCache.load_or_build(
            truncated, setup["teacher"], setup["tokenizer"], setup["features"], make_config(tmp_path / "o")
        )
    assert cache.built and "torn" in caplog.text
    TeacherCache.load(truncated, cache.fingerprint)


def test_spot_check_catches_logits_that_do_not_match_the_teacher(setup, tmp_path):
    import json

    from distilqa.distill.cache.fingerprint import file_sha256

    path = Path(shutil.copytree(setup["cache"].path, tmp_path / "cache"))
    array = np.load(path / LOGITS_FILE)
    np.save(path / LOGITS_FILE, (array + 1).astype(np.float16), allow_pickle=False)
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    # A consistent but wrong cache: only the spot check can tell.
    manifest["sha256"] = file_sha256(path / LOGITS_FILE)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))
    config = make_config(tmp_path / "o", cache_spot_check=2)
    with pytest.raises(InputError, match="does not match the live teacher"):
        TeacherCache.load_or_build(path, setup["teacher"], setup["tokenizer"], setup["features"], config)


def test_cache_teacher_cli_then_distill_finds_it_valid(setup, tmp_path, capsys):
    data = str(squad_file("train.json"))
    common = [
        "--train_file",
        data,
        "--max_train_samples",
        str(QUESTIONS),
        *[f"--{k}={v}" for k, v in PARAMS.items()],
    ]
    cache = tmp_path / "cache"
    assert (
        cli_main(
            [
                "cache-teacher",
                "--teacher",
                str(setup["teacher"]),
                "--student",
                str(setup["student"]),
                *common,
                "--output",
                str(cache),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "fingerprint" in out and f"{len(setup['features'])} windows" in out
    assert TeacherCache.load(cache, setup["cache"].fingerprint)  # the same key as the library built
    argv = ["distill", "--teacher", str(setup["teacher"]), "--student", str(setup["student"]), *common]
    argv += [
        "--teacher_cache",
        str(cache),
        "--output_dir",
        str(tmp_path / "run"),
        "--max_steps",
        "2",
        "--report_to",
        "none",
    ]
    argv += [
        "--use_cpu",
        "true",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        "--dataloader_pin_memory",
        "false",
    ]
    assert cli_main(argv) == 0
    assert "valid" in capsys.readouterr().out
    assert cli_main(["cache-teacher", "--teacher", str(setup["teacher"]), *common]) == 2
    assert "pass --output DIR" in capsys.readouterr().err
