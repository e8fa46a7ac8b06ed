"""The runs behind ``distilqa train`` and ``distilqa distill``: data -> features -> Trainer -> saved model + card.

Output folder layout::

    OUTPUT_DIR/
      .distilqa              distilqa's ownership marker (kind ``run``, see :mod:`distilqa.infra.ownership`)
      .distilqa.lock         held by the process writing the folder while it runs (:mod:`distilqa.infra.locks`)
      distilqa_run.json      the run's settings, checked by ``--resume`` (:mod:`distilqa.infra.run_settings`)
      checkpoint-N/          Trainer checkpoints (a ``distilqa_complete.json`` marks each finished one, see
                             :mod:`distilqa.infra.checkpoints`; ``--resume`` starts from the newest complete one;
                             ``save_total_limit``, default 2, are kept)
      model/                 the final model + tokenizer + README.md model card (written atomically, marked);
                             with SQuAD 2.0 eval data also distilqa_threshold.json, the F1-best no-answer threshold
      metrics.json           final metrics, hyperparameters, timings
      eval_predictions.json  the final model's answers on the eval set {question id: answer} (with --eval_file)

What a run does on the way is logged (``logging``; the CLI prints it, :mod:`distilqa.infra.console`); its results
(the summary table, the teacher's score) are printed, as the commands' own output that ``--quiet`` keeps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from distilqa.errors import InputError
from distilqa.infra.checkpoints import checkpoint_disk, foreign_checkpoints, last_complete_checkpoint
from distilqa.infra.files import atomic_directory, atomic_write_json, clean_leftovers
from distilqa.infra.ownership import CACHE, MODEL, RUN, check_output, claim_folder
from distilqa.qa.features import trim_padding_collator

logger = logging.getLogger(__name__)

FINAL_DIR = "model"


def load_split(data_args, tokenizer, config, which: str):
    """Examples and features for ``which`` in {"train", "eval"}, or (None, None) when no file is given."""
    from distilqa.qa.data import load_examples
    from distilqa.qa.features import build_eval_features, build_train_features

    source = data_args.train_file if which == "train" else data_args.eval_file
    if not source:
        return None, None
    split = data_args.train_split if which == "train" else data_args.eval_split
    limit = data_args.max_train_samples if which == "train" else data_args.max_eval_samples
    examples = load_examples(
        source, split=split, check_offsets="error" if which == "train" else "ignore", limit=limit
    )
    if which == "eval":
        return examples, build_eval_features(examples, tokenizer, config.feature_params)
    # the SQuAD 2.0 null-margin term reads each window's context tokens; otherwise the features are as ever
    context_mask = getattr(config, "alpha_null", 0.0) > 0
    answer_outside = getattr(config, "null_window_weight", 1.0) != 1.0
    return examples, build_train_features(
        examples,
        tokenizer,
        config.feature_params,
        context_mask=context_mask,
        answer_outside=answer_outside,
    )


def _check_eval(config, data_args) -> None:
    if not data_args.eval_file and (
        str(config.eval_strategy) not in ("no", "IntervalStrategy.NO") or config.load_best_model_at_end
    ):
        raise InputError("eval_strategy / load_best_model_at_end need evaluation data: pass --eval_file FILE")


def _check_positions(model, config) -> None:
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and config.max_seq_length > limit:
        raise InputError(
            f"max_seq_length {config.max_seq_length} exceeds the model's max_position_embeddings {limit}; lower it"
        )


def _resume_arg(config, resume: bool):
    if not resume:
        return None
    checkpoint = last_complete_checkpoint(config.output_dir)
    if checkpoint is None:
        logger.warning("--resume: no complete checkpoint in %s, starting from scratch", config.output_dir)
        return None
    if config.process_index == 0:
        logger.info("Resuming from %s", checkpoint)
    return str(checkpoint)


def _check_before_loading(config, data_args, model_args, command: str, resume: bool) -> dict[str, Any]:
    """Fail before anything is loaded on options that cannot work and outputs that cannot be created.

    Nothing is created here: a run that fails on its input leaves no folder behind. The outputs
    (``output_dir``, its ``model/`` and ``checkpoint-N`` folders, the teacher cache) must be new, empty or
    distilqa's own of the same kind, and apart from every input (:mod:`distilqa.infra.ownership`). With
    ``resume``, the checkpoint to continue must have been made with the same settings.

    Returns:
        The run's settings (:func:`distilqa.infra.run_settings.run_settings`).
    """
    from distilqa.infra.run_settings import check_resume, run_settings

    _check_eval(config, data_args)
    inputs = {
        label: getattr(model_args, name, None)
        for name, label in (("model_name_or_path", "model"), ("teacher", "teacher"), ("student", "student"))
    }
    inputs.update({"train_file": data_args.train_file, "eval_file": data_args.eval_file})
    out = Path(config.output_dir)
    check_output(out, RUN, "output_dir", inputs)
    check_output(out / FINAL_DIR, MODEL, "output_dir", inputs)
    foreign = foreign_checkpoints(out)
    if foreign:
        raise InputError(
            f"output_dir {out} holds {foreign[0].name}, which distilqa did not write (or which holds files it did "
            "not write); move it out of the folder or choose another output_dir"
        )
    cache = getattr(config, "teacher_cache", None)
    if cache:
        check_output(cache, CACHE, "teacher_cache", inputs, planned={"output_dir": out / FINAL_DIR})
    settings = run_settings(command, model_args, data_args, config)
    checkpoint = last_complete_checkpoint(out) if resume else None
    if checkpoint is not None:
        check_resume(checkpoint, settings)
    return settings


class _OutputDir:
    """The run's hold on ``output_dir`` (first process per file system): the lock, as soon as the folder exists
    (:func:`distilqa.infra.locks.folder_lock`), and the claim right before training writes."""

    def __init__(self, config, settings: dict[str, Any]):
        self.config, self.settings = config, settings
        self.stack = contextlib.ExitStack()
        self.locked = False

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc):
        self.stack.close()

    def lock(self) -> None:
        from distilqa.infra.locks import folder_lock

        out = Path(self.config.output_dir)
        if self.config.should_save and out.is_dir() and not self.locked:
            self.stack.enter_context(folder_lock(out, "output_dir"))
            self.locked = True

    def claim(self) -> None:
        """Create the folder with its marker, lock it, remove what a killed run left, record the settings."""
        from distilqa.infra.run_settings import write_run_settings

        if not self.config.should_save:
            return
        out = claim_folder(self.config.output_dir, RUN, "output_dir")
        self.lock()
        for name in (FINAL_DIR, "metrics.json", "eval_predictions.json"):
            clean_leftovers(out / name)
        write_run_settings(out, self.settings)


def _headline(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    em = metrics.get(f"{prefix}_exact_match", metrics.get(f"{prefix}_exact"))
    if em is None:
        return {}
    return {"exact_match": round(float(em), 2), "f1": round(float(metrics[f"{prefix}_f1"]), 2)}


def _hyperparameters(config) -> dict[str, Any]:
    keys = [
        "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
        "warmup_steps", "weight_decay", "lr_scheduler_type", "seed", "max_seq_length", "doc_stride", "max_query_length",
        "temperature", "alpha_ce", "alpha_squad", "alpha_hidden", "alpha_attention", "attention_relation_heads", "teacher_dtype",
        "alpha_null", "null_window_weight",
    ]  # fmt: skip
    values = asdict(config)
    if not values.get("alpha_null"):
        keys.remove("alpha_null")  # off: the model card lists what it always did
    if values.get("null_window_weight", 1.0) == 1.0:
        keys.remove("null_window_weight")
    if not values.get("alpha_attention"):
        keys.remove("attention_relation_heads")  # a setting of a term that is off says nothing
    return {k: values[k] for k in keys if k in values}


def finish(
    trainer,
    tokenizer,
    config,
    eval_examples,
    title: str,
    base_models: dict[str, str],
    data_args,
    extra: dict | None = None,
) -> dict[str, Any]:
    """Final evaluation, the model folder (atomic) with its card, metrics.json, and a printed summary table."""
    from distilqa.infra.cards import public_value, write_model_card
    from distilqa.infra.hardware import hardware_description
    from distilqa.infra.models import count_parameters, folder_size_mb

    metrics: dict[str, Any] = dict(extra or {})
    speed = None
    if eval_examples is not None:
        began = time.perf_counter()
        final = trainer.evaluate()
        seconds = time.perf_counter() - began
        metrics.update(final)
        speed = {"questions_per_second": round(len(eval_examples) / seconds, 2), "device": str(config.device)}
    out = Path(config.output_dir) / FINAL_DIR
    if trainer.is_world_process_zero():
        with atomic_directory(out, kind=MODEL, what="output_dir") as tmp:
            trainer.model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            threshold = _save_threshold(tmp, trainer, eval_examples, data_args)
            if threshold is not None:
                metrics["null_threshold"] = threshold
            params = count_parameters(trainer.model)
            if speed is not None:
                speed.update({"parameters": params, "disk_mb": folder_size_mb(tmp, "*.safetensors")})
            write_model_card(
                tmp,
                title=title,
                base_models=base_models,
                data={"train": data_args.train_file, "eval": data_args.eval_file},
                hyperparameters=_hyperparameters(config),
                metrics=_headline(metrics, "eval") or None,
                speed=speed,
                hardware=hardware_description(),
                notes=None,
                location=out,
            )
        if eval_examples is not None and trainer.last_predictions is not None:
            atomic_write_json(
                Path(config.output_dir) / "eval_predictions.json", trainer.last_predictions.predictions
            )
        summary = {"model": str(out), "parameters": params, **_headline(metrics, "eval"), "metrics": metrics}
        summary["checkpoints"] = {
            **checkpoint_disk(config.output_dir),
            "save_total_limit": config.save_total_limit,
        }
        # A report to share, like the card: no home paths, no secrets.
        atomic_write_json(Path(config.output_dir) / "metrics.json", public_value(summary))
        print_summary(title, summary)
        return summary
    return {}


def _save_threshold(folder: Path, trainer, eval_examples, data_args) -> dict[str, Any] | None:
    """SQuAD 2.0 eval data: write the F1-best no-answer threshold of the final evaluation into the model folder
    (:mod:`distilqa.qa.threshold`); other data: nothing."""
    from distilqa.qa.threshold import choose_threshold, write_threshold

    result = getattr(trainer, "last_predictions", None)
    if eval_examples is None or not getattr(eval_examples, "version_2", False) or result is None:
        return None
    chosen = choose_threshold(eval_examples, result)
    record = write_threshold(folder, data=data_args.eval_file, questions=len(eval_examples), **chosen)
    logger.info("saved no-answer threshold %.4g (best F1 %.2f on %s)", record["null_threshold"], chosen["best_f1"], data_args.eval_file)  # fmt: skip
    return record


def print_summary(title: str, summary: dict[str, Any]) -> None:
    rows = [("model", summary["model"]), ("parameters", f"{summary['parameters']:,}")]
    if "f1" in summary:
        rows += [("EM", f"{summary['exact_match']:.2f}"), ("F1", f"{summary['f1']:.2f}")]
    if "null_threshold" in summary["metrics"]:
        saved = summary["metrics"]["null_threshold"]
        rows.append(("no-answer threshold", f"{saved['null_threshold']:.4g} (best F1 {saved['best_f1']:.2f}, saved with the model)"))  # fmt: skip
    for key in ("teacher_exact_match", "teacher_f1"):
        if key in summary["metrics"]:
            rows.append((key.replace("_", " "), f"{summary['metrics'][key]:.2f}"))
    if "train_runtime" in summary["metrics"]:
        rows.append(("train time", f"{summary['metrics']['train_runtime']:.0f} s"))
    if "checkpoints" in summary:
        disk = summary["checkpoints"]
        limit = disk["save_total_limit"] or "none"
        rows.append(
            ("checkpoints", f"{disk['count']}, {disk['disk_mb']:.1f} MB on disk (save_total_limit {limit})")
        )
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in rows))


def run_train(model_args, data_args, config, resume: bool = False) -> dict[str, Any]:
    """Fine-tune any ``AutoModelForQuestionAnswering`` (a teacher, or a student alone as the baseline)."""
    settings = _check_before_loading(config, data_args, model_args, "train", resume)
    with _OutputDir(config, settings) as output_dir:
        return _train(model_args, data_args, config, resume, output_dir)


def _train(model_args, data_args, config, resume: bool, output_dir: _OutputDir) -> dict[str, Any]:
    from transformers import set_seed

    from distilqa.infra.models import load_qa_model, load_tokenizer
    from distilqa.qa.trainer import QuestionAnsweringTrainer

    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    # Data and windowing are checked before the weights are loaded: bad input fails fast and quietly.
    _, train_features = load_split(data_args, tokenizer, config, "train")
    eval_examples, eval_features = load_split(data_args, tokenizer, config, "eval")
    set_seed(config.seed)  # right before loading: a new QA head is initialised from this seed
    model = load_qa_model(
        model_args.model_name_or_path, require_qa_head=False, trust_remote_code=model_args.trust_remote_code
    )
    _check_positions(model, config)
    trainer = QuestionAnsweringTrainer(
        model=model,
        args=config,
        train_dataset=train_features.remove_columns(["example_index"]),
        eval_dataset=eval_features,
        eval_examples=eval_examples,
        processing_class=tokenizer,
        data_collator=trim_padding_collator,
    )
    output_dir.claim()
    trainer.run_settings = output_dir.settings
    result = trainer.train(resume_from_checkpoint=_resume_arg(config, resume))
    return finish(
        trainer,
        tokenizer,
        config,
        eval_examples,
        "distilqa: fine-tuned QA model",
        {"init": model_args.model_name_or_path},
        data_args,
        result.metrics,
    )


def run_distill(model_args, data_args, config, resume: bool = False) -> dict[str, Any]:
    """Distill ``model_args.teacher`` into ``model_args.student`` with DistilBERT's SQuAD loss."""
    settings = _check_before_loading(config, data_args, model_args, "distill", resume)
    with _OutputDir(config, settings) as output_dir:
        return _distill(model_args, data_args, config, resume, output_dir)


def _distill(model_args, data_args, config, resume: bool, output_dir: _OutputDir) -> dict[str, Any]:
    from transformers import set_seed

    from distilqa.distill.projection import SpanProjector, tokenizers_differ
    from distilqa.distill.trainer import CACHE_INDEX, DistillationTrainer, check_loss_terms
    from distilqa.infra.models import load_qa_config, load_qa_model, load_tokenizer

    trust = model_args.trust_remote_code
    tokenizer = load_tokenizer(model_args.student, trust_remote_code=trust)
    teacher_tokenizer = load_tokenizer(model_args.teacher, trust_remote_code=trust)
    cross = tokenizers_differ(teacher_tokenizer, tokenizer, model_args.teacher, model_args.student, config)
    # before any weights load
    teacher_config = load_qa_config(model_args.teacher, require_qa_head=True, trust_remote_code=trust)
    check_loss_terms(
        load_qa_config(model_args.student, require_qa_head=False, trust_remote_code=trust),
        teacher_config,
        config,
    )
    train_examples, train_features = load_split(data_args, tokenizer, config, "train")
    eval_examples, eval_features = load_split(data_args, tokenizer, config, "eval")
    set_seed(config.seed)  # right before loading: a new QA head is initialised from this seed
    student = load_qa_model(model_args.student, require_qa_head=False, trust_remote_code=trust)
    _check_positions(student, config)
    train_features = train_features.remove_columns(["example_index"])
    projector = None
    if cross:
        projector = SpanProjector(
            teacher_tokenizer,
            tokenizer,
            train_examples,
            train_features,
            config.feature_params,
            config.temperature,
        )
    teacher, cache = None, None
    if config.teacher_cache:
        from distilqa.distill.cache.store import TeacherCache

        cache = TeacherCache.load_or_build(
            config.teacher_cache,
            model_args.teacher,
            tokenizer,
            train_features,
            config,
            trust_remote_code=trust,
            projector=projector,
        )
    if cache is not None or projector is not None:
        train_features = train_features.add_column(CACHE_INDEX, list(range(len(train_features))))
    need_teacher_model = cache is None or eval_examples is not None
    if need_teacher_model:
        teacher = load_qa_model(model_args.teacher, require_qa_head=True, trust_remote_code=trust)
        _check_positions(teacher, config)
    trainer = DistillationTrainer(
        model=student,
        teacher=teacher if cache is None else None,
        teacher_cache=cache,
        projector=projector if cache is None else None,
        args=config,
        train_dataset=train_features,
        eval_dataset=eval_features,
        eval_examples=eval_examples,
        processing_class=tokenizer,
        data_collator=trim_padding_collator,
    )
    extra: dict[str, Any] = {}
    if teacher is not None and eval_examples is not None and not resume:
        if cross:  # the eval windows are the student's tokens: the teacher reads its own
            extra = evaluate_teacher_own_windows(teacher, teacher_tokenizer, eval_examples, config)
        else:
            extra = evaluate_teacher_once(trainer, teacher)
    if cache is not None:
        del teacher  # training reads the cache; the teacher does not stay on the device
    output_dir.claim()
    trainer.run_settings = output_dir.settings
    result = trainer.train(resume_from_checkpoint=_resume_arg(config, resume))
    extra.update(result.metrics)
    bases = {"teacher": model_args.teacher, "student init": model_args.student}
    return finish(
        trainer, tokenizer, config, eval_examples, "distilqa: distilled QA student", bases, data_args, extra
    )


def evaluate_teacher_own_windows(teacher, tokenizer, examples, config) -> dict[str, Any]:
    """The EM/F1 of a teacher that tokenizes differently, on its own windows of the eval set (printed)."""
    from distilqa.qa.evaluation import evaluate_model
    from distilqa.qa.predictor import PredictOptions, QAPredictor

    predictor = QAPredictor(teacher, tokenizer, config.feature_params, device=str(config.device))
    options = PredictOptions(config.n_best, config.max_answer_length, config.null_threshold)
    metrics = evaluate_model(
        predictor, examples, options=options, batch_size=config.per_device_eval_batch_size
    ).metrics
    extra = {f"teacher_{k}": v for k, v in metrics.items() if k in {"exact_match", "exact", "f1"}}
    if config.process_index == 0:
        print("Teacher on the eval set (its own windows):", json.dumps(_headline(extra, "teacher")))
    return extra


def evaluate_teacher_once(trainer, teacher) -> dict[str, Any]:
    """The teacher's EM/F1 on the eval set (logged as ``teacher_*``), before training starts."""
    from distilqa.distill.trainer import forward_inputs

    loaded = trainer.teacher
    trainer.teacher = teacher.to(trainer.args.device).eval()
    trainer._teacher_inputs = trainer._teacher_inputs or forward_inputs(teacher)
    try:
        metrics = trainer.evaluate_teacher()
    finally:
        trainer.teacher = loaded
    if trainer.is_world_process_zero():
        print("Teacher on the eval set:", json.dumps(_headline(metrics, "teacher")))
    return {k: v for k, v in metrics.items() if k in {"teacher_exact_match", "teacher_exact", "teacher_f1"}}
