"""Run a Table 2 study: each of its rows trained and measured once, over distilqa's public API.

    python -m experiments.table2.run staged --output ~/t2 --plan       # the rows and their hashes, nothing run
    python -m experiments.table2.run staged --output ~/t2              # train and measure them
    python -m experiments.table2.run staged --output ~/t2 --where seed=1 --set limit_train=24 --set limit_dev=16
    python -m experiments.table2.run hidden --output OUT --set device=cuda --jobs 10 --deadline-s 270

A study is a file of ``studies/`` (or any path); its rows and settings: :mod:`experiments.table2.settings`. Rows
are appended to ``OUTPUT/results.jsonl`` as they finish, each with its settings and their hash; a row whose hash
is there is not run again, whatever study asks for it. All a row makes lives in folders named by hashes too:
``runs/HASH`` (the Trainer's output_dir, the model in ``model/``; a first stage is a run of its own, shared by
the rows that start from it), ``students/HASH`` (initial students), ``variants/HASH.json`` (teacher-labelled
training files) and ``caches/HASH`` (teacher logits). A row cut off half-way resumes from its newest complete
checkpoint (one every ``--checkpoint-steps``): its folder is named by its settings, so a checkpoint there is its
own. ``--jobs N`` runs N worker processes; what rows share is made once, under a lock. At the end: the pooled
table of the study's rows (``OUTPUT/summary.md``); ``experiments.table2.report`` makes tables and the figure from
any results files.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import subprocess
import sys
import time
from pathlib import Path

from experiments.table2.results import read_jsonl
from experiments.table2.settings import (
    COMMON,
    REPO,
    StudyError,
    load_study,
    matches,
    parse_assignments,
    plan,
    settings_hash,
)

STUDIES = Path(__file__).resolve().parent / "studies"


def recorded_rows(path: Path) -> dict[str, dict]:
    """The rows of this runner's ``results.jsonl`` by hash; a file of another tool (rows without a hash, e.g.
    the earlier scripts') is refused, so that no row is appended to it."""
    rows = read_jsonl(path) if path.exists() else []
    for n, row in enumerate(rows, 1):
        if "hash" not in row:
            raise StudyError(
                f"{path}: row {n} has no hash: not a results file of this runner; choose a new --output folder"
            )
    return {row["hash"]: row for row in rows}


class Output:
    """The output folder: ``results.jsonl`` and the hash-named things the rows make, each made once."""

    def __init__(self, root: Path, checkpoint_steps: int):
        self.root, self.checkpoint_steps, self.dev = Path(root), checkpoint_steps, {}
        (self.root / "locks").mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self, name: str):
        with open(self.root / "locks" / f"{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            yield

    def recorded(self) -> dict[str, dict]:
        return recorded_rows(self.root / "results.jsonl")

    def ensure(self, settings: dict, name: str) -> dict:
        """The recorded row of these settings, trained and measured first if there is none."""
        key = settings_hash(settings)
        with self.lock(key):
            if key not in self.recorded():
                row = {"hash": key, "name": name, "settings": settings, **make(self, settings)}
                from distilqa.infra.hardware import hardware_description

                row.update(recorded=time.strftime("%Y-%m-%d %H:%M:%S"), hardware=hardware_description())
                with self.lock("results"), (self.root / "results.jsonl").open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(
                    f"\n[table2] {name} {key}: EM {row['exact_match']:.2f} F1 {row['f1']:.2f} ({row['train_s']} s)",
                    flush=True,
                )
            return self.recorded()[key]

    def made(self, kind: str, key: dict, build, suffix: str = "") -> Path:
        """``kind/HASH{suffix}`` for the settings ``key``, made by ``build(path)`` unless it exists."""
        path = self.root / kind / f"{settings_hash(key)}{suffix}"
        with self.lock(path.stem):
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                build(path)
        return path

    def train(self, run, model_args, data_args, config) -> tuple[float, dict]:
        """``run(...)`` from the newest complete checkpoint of its folder, if any; its seconds and resume fields
        (a resumed run's training loop scaled to all its steps). No checkpoint is left."""
        from distilqa.infra.checkpoints import checkpoint_folders, last_complete_checkpoint, remove_checkpoint

        folder = Path(config.output_dir)
        resumed = last_complete_checkpoint(folder) if self.checkpoint_steps and folder.is_dir() else None
        state = json.loads((resumed / "trainer_state.json").read_text()) if resumed else {}
        began = time.perf_counter()
        summary = run(model_args, data_args, config, resume=resumed is not None)
        seconds = time.perf_counter() - began
        for checkpoint in checkpoint_folders(folder):
            remove_checkpoint(checkpoint)
        if resumed is None:
            return seconds, {}
        done, total, loop = state["global_step"], state["max_steps"], summary["metrics"].get("train_runtime")
        fields = {"resumed_from_step": done, "train_s_measured": round(seconds, 1)}
        return seconds + (loop * done / (total - done) if loop and done < total else 0), fields


def data_file(s: dict, name: str) -> str:
    return str(REPO / s["data"] / name)


def config(cls, s: dict, folder: Path, epochs: float, checkpoint_steps: int, **extra):
    """The Trainer config of a row: linear schedule with warm-up, no evaluation during training."""
    checkpoints = {"save_strategy": "no"}
    if checkpoint_steps:
        checkpoints = {"save_strategy": "steps", "save_steps": checkpoint_steps, "save_total_limit": 1}
    return cls(
        output_dir=str(folder), num_train_epochs=epochs, learning_rate=s["learning_rate"], seed=s["seed"],
        per_device_train_batch_size=s["batch_size"], per_device_eval_batch_size=32, warmup_steps=s["warmup"],
        weight_decay=s["weight_decay"], max_seq_length=s["max_seq_length"], doc_stride=s["doc_stride"],
        eval_strategy="no", logging_steps=10, report_to="none", use_cpu=s["device"] == "cpu", **checkpoints, **extra,
    )  # fmt: skip


def make(out: Output, s: dict) -> dict:
    """Train the row ``s`` (settings) and measure it: its fields for results.jsonl."""
    from distilqa.distill.config import DistillationConfig, DistillModelArguments
    from distilqa.infra.models import resolve_model
    from distilqa.qa.config import DataArguments, ModelArguments, QuestionAnsweringConfig
    from distilqa.runs import FINAL_DIR, run_distill, run_train

    folder, steps = out.root / "runs" / settings_hash(s), out.checkpoint_steps
    original = DataArguments(train_file=data_file(s, "train.json"), max_train_samples=s["limit_train"])
    if s["kind"] == "teacher":
        model = ModelArguments(model_name_or_path=resolve_model(s["model"]))
        seconds, fields = out.train(
            run_train, model, original, config(QuestionAnsweringConfig, s, folder, s["epochs"], steps)
        )
        return {**measure(out, s, folder / FINAL_DIR), "train_s": round(seconds, 1), **fields}
    init, epochs, stage1_s = student(out, s), s["epochs"], 0.0
    if s.get("stage1_epochs"):  # the second stage starts from the first and makes the rest of the steps
        init, stage1_s = first_stage(out, s, init)
        epochs -= s["stage1_epochs"]
    if s["kind"] == "alone":
        cfg = config(QuestionAnsweringConfig, s, folder, epochs, steps)
        seconds, fields = out.train(run_train, ModelArguments(model_name_or_path=str(init)), original, cfg)
    else:
        data, ratio = training_data(out, s, s["augment_copies"])
        online = s["alpha_hidden"] or s["alpha_attention"]  # hidden states, attention: not in the cache
        key = {"teacher": s["teacher"], "train": data.train_file}
        if "student_vocab" in s:  # a trimmed student's windows: the teacher's logits projected onto them
            key.update(student_vocab=s["student_vocab"], student_vocab_size=s["student_vocab_size"])
        cache = out.root / "caches" / settings_hash(key)
        cfg = config(
            DistillationConfig, s, folder, epochs / ratio, steps, temperature=s["temperature"], alpha_ce=s["alpha_ce"],
            alpha_squad=s["alpha_squad"], alpha_hidden=s["alpha_hidden"], alpha_attention=s["alpha_attention"],
            attention_relation_heads=s.get("attention_relation_heads", 12), teacher_cache=None if online else str(cache),
        )  # fmt: skip
        models = DistillModelArguments(teacher=str(teacher(out, s)), student=str(init))
        seconds, fields = out.train(run_distill, models, data, cfg)
        fields.update({"train_questions_ratio": round(ratio, 3)} if ratio != 1 else {})
    return {**measure(out, s, folder / FINAL_DIR), "train_s": round(seconds + stage1_s, 1), **fields}


def teacher(out: Output, s: dict) -> Path:
    """The fine-tuned teacher of the student row ``s`` (a row of its own, made if missing)."""
    from distilqa.runs import FINAL_DIR

    key = out.ensure(s["teacher"], "teacher")["hash"]
    model = out.root / "runs" / key / FINAL_DIR
    if not model.is_dir():
        raise StudyError(
            f"{model}: teacher {key} is in results.jsonl but its model is gone; remove its row or restore it"
        )
    return model


def student(out: Output, s: dict) -> Path:
    """The student before training: ``student_layers`` of the fine-tuned teacher or of its pretrained model,
    with the teacher's vocabulary or (``student_vocab: train``) one trimmed to the full training file's tokens."""
    from distilqa.distill.student import init_student, save_student
    from distilqa.distill.vocab import trim_student
    from distilqa.infra.models import load_tokenizer, resolve_model

    source = s["teacher"] if s["init"] == "teacher" else {"model": s["teacher"]["model"]}
    key = {"from": source, "layers": s["student_layers"]}
    if "student_vocab" in s:
        key.update(vocab=s["student_vocab"], vocab_size=s["student_vocab_size"], train=s["data"])

    def build(path: Path) -> None:
        folder = teacher(out, s) if s["init"] == "teacher" else resolve_model(s["teacher"]["model"])
        model, info = init_student(str(folder), layers=s["student_layers"])
        tokenizer = load_tokenizer(str(folder))
        if "student_vocab" in s:
            size = s["student_vocab_size"] or None
            tokenizer, vocab = trim_student(model, tokenizer, [data_file(s, "train.json")], size=size)
            info.update(vocab, student_parameters=vocab["parameters_after"])
        save_student(model, path, info, tokenizer=tokenizer)

    return out.made("students", key, build)


def first_stage(out: Output, s: dict, init: Path) -> tuple[Path, float]:
    """TinyBERT's first stage of the row ``s``: the teacher's hidden states only, for ``stage1_epochs``. A run of
    its own named by its settings, shared by the rows that start from it; its model and training seconds."""
    from distilqa.distill.config import DistillationConfig, DistillModelArguments
    from distilqa.infra.files import atomic_write_json
    from distilqa.runs import FINAL_DIR, run_distill

    stage = {key: s[key] for key in (*COMMON, "teacher", "init", "student_layers", "seed", "learning_rate")}
    stage.update(kind="stage1", epochs=s["stage1_epochs"], alpha_hidden=s["stage1_alpha_hidden"])
    stage.update(augment_copies=s["stage1_augment_copies"])
    if stage["augment_copies"]:
        stage["augment_min_probability"] = s["augment_min_probability"]
    folder = out.root / "runs" / settings_hash(stage)
    with out.lock(folder.name):
        if not (folder / "stage1.json").exists() or not (folder / FINAL_DIR).is_dir():
            data, ratio = training_data(out, s, s["stage1_augment_copies"])  # the same steps over the file
            cfg = config(DistillationConfig, s, folder, s["stage1_epochs"] / ratio, out.checkpoint_steps,
                         alpha_ce=0.0, alpha_squad=0.0, alpha_hidden=s["stage1_alpha_hidden"])  # fmt: skip
            models = DistillModelArguments(teacher=str(teacher(out, s)), student=str(init))
            seconds, _ = out.train(run_distill, models, data, cfg)
            atomic_write_json(folder / "stage1.json", {"settings": stage, "train_s": round(seconds, 1)})
    return folder / FINAL_DIR, json.loads((folder / "stage1.json").read_text())["train_s"]


def training_data(out: Output, s: dict, copies: int):
    """The training file of a stage with ``copies`` variants per question (0: the original questions), and its
    number of questions over the original's."""
    from distilqa.distill.augment import keep_confident
    from distilqa.infra.files import atomic_write_json
    from distilqa.qa.config import DataArguments
    from distilqa.qa.data import load_examples

    original = data_file(s, "train.json")
    if not copies:
        return DataArguments(train_file=original, max_train_samples=s["limit_train"]), 1.0
    key = {"teacher": s["teacher"], "copies": copies}
    path = out.made("variants", key, lambda path: augment(out, s, copies, path), ".json")
    if s.get("augment_min_probability"):  # the variants a --min-probability run of distilqa augment keeps
        minp = s["augment_min_probability"]
        keep = lambda p: atomic_write_json(p, keep_confident(json.loads(path.read_text()), minp), indent=None)  # noqa: E731
        path = out.made("variants", {**key, "min_probability": minp}, keep, ".json")
    ratio = len(load_examples(str(path))) / len(load_examples(original, limit=s["limit_train"]))
    return DataArguments(train_file=str(path)), ratio


def augment(out: Output, s: dict, copies: int, path: Path) -> None:
    """``distilqa augment`` with the row's teacher, questions and windowing: ``copies`` variants per question."""
    from distilqa.distill.augment import AugmentConfig, NeighbourTable, augment_examples, to_squad_json
    from distilqa.infra.files import atomic_write_json
    from distilqa.qa.data import load_examples
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import QAPredictor

    params = FeatureParams(s["max_seq_length"], s["doc_stride"], 64)
    predictor = QAPredictor.from_pretrained(teacher(out, s), params=params, device=s["device"])
    embeddings = predictor.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    settings = AugmentConfig(copies=copies)
    table = NeighbourTable(predictor.tokenizer, embeddings, k=settings.neighbours)
    examples = load_examples(data_file(s, "train.json"), limit=s["limit_train"])
    variants, summary = augment_examples(examples, predictor, table, settings, progress=False)
    atomic_write_json(path, to_squad_json(variants), indent=None)
    print(f"[table2] {path.name}: {summary}")


def measure(out: Output, s: dict, model: Path) -> dict:
    """EM and F1 on the dev questions, parameters, size on disk and questions/s (batch 32) on ``device``."""
    from distilqa.infra.models import count_parameters, folder_size_mb
    from distilqa.qa.data import load_examples
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.metrics import score_predictions
    from distilqa.qa.predictor import QAPredictor

    key = (s["data"], s["limit_dev"])
    if key not in out.dev:
        out.dev[key] = load_examples(data_file(s, "dev.json"), limit=s["limit_dev"])
    dev = out.dev[key]
    params = FeatureParams(s["max_seq_length"], s["doc_stride"], 64)
    predictor = QAPredictor.from_pretrained(model, params=params, device=s["device"])
    began = time.perf_counter()
    answers = predictor.predict_examples(dev, batch_size=32, progress=False).predictions
    seconds, scores = time.perf_counter() - began, score_predictions(dev, answers)
    return {
        "exact_match": round(scores["exact_match"], 2), "f1": round(scores["f1"], 2),
        "params": count_parameters(predictor.model), "disk_mb": folder_size_mb(model, "*.safetensors"),
        "questions_per_s": round(len(dev) / seconds, 1),
    }  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("study", help="a study file, or the name of one in experiments/table2/studies")
    parser.add_argument(
        "--output", required=True, help="folder for results.jsonl and the models (outside the repo)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for every row, e.g. device=cuda, limit_train=24, teacher.epochs=1")  # fmt: skip
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="run only the rows with these settings, e.g. seed=1, kind=alone")  # fmt: skip
    parser.add_argument("--plan", action="store_true", help="print the rows and their hashes; run nothing")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (made for a GPU)")
    parser.add_argument(
        "--deadline-s", type=float, default=float("inf"), help="start no row after this many seconds"
    )
    parser.add_argument(
        "--checkpoint-steps", type=int, default=250, help="a resumable checkpoint every N steps (0: none)"
    )
    parser.add_argument("--debug", action="store_true", help="tracebacks instead of one-line errors")
    parser.add_argument(
        "--worker", default="0/1", help=argparse.SUPPRESS
    )  # I/N: this process runs rows I, I+N, ...
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from distilqa.infra.console import console

    with console():  # the library's INFO messages (teacher cache, resume, ...) on stdout
        return _main(argv)


def _main(argv=None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    try:
        path = Path(args.study) if Path(args.study).suffix else STUDIES / f"{args.study}.yaml"
        if not path.exists() and not Path(args.study).suffix:
            names = ", ".join(sorted(p.stem for p in STUDIES.glob("*.yaml")))
            raise StudyError(f"no study {args.study!r}: name a file or one of {names}")
        rows = plan(load_study(path), parse_assignments(args.set, "--set"), source=path.name)
        wanted = parse_assignments(args.where, "--where")
        rows = [row for row in rows if matches(row.settings, wanted)]
        if not args.plan:
            recorded_rows(Path(args.output).expanduser() / "results.jsonl")
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.plan:
        from experiments.table2.report import plan_table

        print(plan_table(rows))
        return 0
    out = Output(Path(args.output).expanduser(), args.checkpoint_steps)
    code = workers(args, path) if args.jobs > 1 else run_rows(args, out, rows, began)
    if args.worker == "0/1":  # not a worker: the study's table
        from experiments.table2.report import summarise

        recorded = out.recorded()
        table = summarise(
            [recorded[row.hash] for row in rows if row.hash in recorded], list(recorded.values())
        )
        (out.root / "summary.md").write_text(table + "\n")
        print(table)
    return code


def workers(args, path: Path) -> int:
    """This command once per worker, each running its share of the rows; the highest exit code."""
    common = [str(path.resolve()), "--output", str(Path(args.output).resolve()), "--jobs", "1"]
    common += [f"--{name}={value}" for name in ("set", "where") for value in getattr(args, name)]
    common += ["--deadline-s", str(args.deadline_s), "--checkpoint-steps", str(args.checkpoint_steps)]
    common += ["--debug"] if args.debug else []
    command = [sys.executable, "-m", "experiments.table2.run", *common]
    running = [
        subprocess.Popen([*command, "--worker", f"{i}/{args.jobs}"], cwd=REPO) for i in range(args.jobs)
    ]
    return max(worker.wait() for worker in running)


def run_rows(args, out: Output, rows: list, began: float) -> int:
    """The rows of this process (``--worker I/N``: rows I, I+N, ...) until the deadline; an exit code."""
    from distilqa.errors import InputError

    index, count = (int(v) for v in args.worker.split("/"))
    mine = rows[index::count]
    try:
        for n, row in enumerate(mine):
            if time.monotonic() - began > args.deadline_s:
                print(f"[table2] deadline: {len(mine) - n} rows not started")
                break
            out.ensure(row.settings, row.name)
    except (InputError, StudyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - one line, as the CLI does; --debug for the traceback
        if args.debug:
            raise
        print(
            f"error: {type(error).__name__}: {error} (rerun with --debug for the traceback)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
