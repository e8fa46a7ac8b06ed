"""Recipe search for the CPU-scale Table 2 (``table2_cpu.py``), many runs at once: made for a lent GPU.

Every run is one ``table2_cpu.py`` process; this script only chooses the settings, runs ``--jobs`` of them in
parallel, and gathers their rows. Tuning uses the dev set only (there is no test set here).

1. teachers: the packaged MiniLM fine-tuned with each of ``TEACHERS`` (epochs, learning rate); the best on
   dev F1 is the teacher of every student below;
2. students (3 layers from that teacher), all at once: alone and distilled (T=2, alpha_ce=0.5,
   alpha_squad=0.5) for each of ``SCHEDULES`` (epochs, learning rate) and seeds 1, 2, 3 (alone and distilled
   share seed, data, schedule and number of steps); at the second schedule, the ``GRID`` of temperature and
   alpha_ce (seed 1) and the students initialised from the pretrained MiniLM instead (seeds 1, 2);
3. the same for the offline demo's built-in data (``--demo``): its teacher and student recipes.

``--study hidden`` runs the second search instead: two teachers (5 epochs, the best on dev F1, and 2 epochs,
less confident), and for each, students alone / distilled / distilled with TinyBERT's hidden-state term at
``HIDDEN_ALPHAS`` (seeds 1, 2), plus pretrained-init rows and a longer schedule (see :func:`hidden_study`).
``--study table`` runs ``table2_cpu.py``'s whole default experiment, one job per row (see :func:`table_study`).
``--study augment`` measures teacher-labelled question variants (``distilqa augment``) with and without the
hidden-state term, against the same rows without them (see :func:`augment_study`); ``--study attention`` adds
MiniLMv2's self-attention relation term to the best rows (see :func:`attention_study`); ``--study staged``
measures TinyBERT's two stages (hidden states first) at 5 and 10 epochs' steps, with and without the variants,
over 3 seeds (see :func:`staged_study`).

Rows land in ``OUTPUT/sweep.jsonl`` (each with its settings) as jobs finish; ``OUTPUT/sweep.md`` is the
summary. A job that already finished is not rerun; after ``--deadline-s`` no new job starts (jobs are
queued most important first), so a time-limited run still ends with what it finished.

    python benchmarks/table2_sweep.py --output /tmp/sweep --jobs 16 --measure-device cuda

Cost seen on an NVIDIA H200 with 16 CPU cores: one run alone trains about 38 steps/s; 32 runs at once about
150 steps/s in all (the Python side of each step, not the GPU, is the limit). The SQuAD part is about 86k steps:
some 10 minutes there, days on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[0].parent / "shared" / "data" / "squad-v1.1-subset"
DEMO_DATA = HERE.parents[0] / "src" / "distilqa" / "demo" / "data"

TEACHERS = [(2, 1e-4), (3, 1e-4), (5, 1e-4), (2, 2e-4), (3, 2e-4), (5, 2e-4)]
SCHEDULES = [(5, 1e-4), (10, 1e-4), (10, 2e-4), (20, 1e-4)]
# Around the paper's T=2 / 0.5: T=1 (no softening) and T=4 (softer), and alpha_ce 0.9 / 1.0 (the teacher's
# soft targets carry most of the signal when only 3k questions are labelled).
GRID = ["1:0.5", "4:0.5", "2:0.9", "4:0.9", "2:1.0"]
DEMO_TEACHERS = [(2, 2.5e-4), (3, 2.5e-4), (3, 4e-4), (4, 2.5e-4)]
DEMO_SCHEDULES = [(2, 2e-4), (3, 2e-4), (3, 4e-4)]
DEMO_GRID = ["2:0.5", "2:0.9", "4:0.9"]
# hidden-state MSE between a fine-tuned MiniLM and its 3-layer slice starts near 0.1, the logit KL near 1:
# weights 1 / 10 / 100 put the hidden term below, at and above the logit term.
HIDDEN_ALPHAS = [1.0, 10.0, 100.0]
HIDDEN_TEACHERS = [(5, 2e-4), (2, 2e-4)]
# teacher-labelled variants per question (TinyBERT makes 20 for small GLUE sets; 4 and 8 keep a GPU run short)
AUGMENT_COPIES = [4, 8]
# the relation KL (12 relation heads) between a fine-tuned MiniLM and its 3-layer slice starts near 2, about the
# logit term: weight 1 puts it level with the logits, 0.2 well below them (at 1 it lost to logits only on the
# CPU, RESULTS 6.6); the first weight is the one every row with the term uses
ATTENTION_ALPHAS = [1.0, 0.2]
# epochs of the hidden-state-only first stage (part of the row's epochs): 2 is what the CPU measured best at 5
# epochs' steps (RESULTS 6.8; 3 was no better); 4 asks whether a 10-epoch row wants a longer first stage
STAGE1_EPOCHS = [2, 4]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", required=True)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--measure-device", default="cpu", help="device for the questions/s measurement")
    parser.add_argument("--train", default=str(DATA / "train.json"))
    parser.add_argument("--dev", default=str(DATA / "dev.json"))
    parser.add_argument(
        "--demo", action="store_true", help="also search the demo's recipe on its built-in data"
    )
    parser.add_argument(
        "--deadline-s", type=float, default=float("inf"), help="start no job after this many seconds"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny data and 1 epoch everywhere: checks the plumbing"
    )
    parser.add_argument(
        "--only",
        help="run only the jobs whose name matches this regular expression (finishing a cut-off sweep)",
    )
    parser.add_argument(
        "--study",
        choices=["recipe", "hidden", "table", "augment", "attention", "staged"],
        default="recipe",
        help="which search (see above)",
    )
    return parser.parse_args(argv)


class Sweep:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.output).expanduser()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "logs").mkdir(exist_ok=True)
        self.pool = ThreadPoolExecutor(args.jobs)
        self.lock = threading.Lock()
        self.began = time.monotonic()

    def job(self, name: str, settings: dict, extra: list[str]) -> list[dict]:
        """Run one table2_cpu.py process (unless it already finished) and return its rows with ``settings``."""
        folder = self.out / "runs" / name
        done = folder / "DONE"
        if self.args.only and not re.search(self.args.only, name):
            return []
        if not done.exists():
            if time.monotonic() - self.began > self.args.deadline_s:
                print(f"[sweep] {name}: not started (deadline)", flush=True)
                return []
            smoke = ["--limit-train", "24", "--limit-dev", "16"] if self.args.smoke else []
            cmd = [
                sys.executable,
                str(HERE / "table2_cpu.py"),
                "--output",
                str(folder),
                "--device",
                self.args.measure_device,
                "--checkpoint-steps",
                "0",  # minutes-long jobs on a lease that ends: a checkpoint would never be resumed
                *smoke,
                *extra,
            ]
            env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
            began = time.perf_counter()
            with (self.out / "logs" / f"{name}.log").open("w") as log:
                code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            print(f"[sweep] {name}: exit {code} after {time.perf_counter() - began:.0f} s", flush=True)
            if code != 0:
                return []
            done.touch()
        rows = []
        for line in (folder / "results.jsonl").read_text().splitlines():
            row = json.loads(line)
            rows.append({**row, **settings, "job": name})
        with self.lock, (self.out / "sweep.jsonl").open("a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
        return rows

    def many(self, jobs: list[tuple[str, dict, list[str]]]) -> list[dict]:
        futures = [self.pool.submit(self.job, *job) for job in jobs]
        return [row for future in futures for row in future.result()]


def epochs(value, smoke):
    return "1" if smoke else str(value)


def teacher_jobs(prefix: str, data: list[str], teachers, smoke: bool) -> list[tuple[str, dict, list[str]]]:
    """One teacher-only ``table2_cpu.py`` job per (epochs, learning rate), named ``{prefix}teacher-e{E}-lr{LR}``."""
    return [
        (f"{prefix}teacher-e{e}-lr{lr:g}", {"phase": f"{prefix}teacher"}, [*data, "--rows", "teacher", "--teacher-epochs", epochs(e, smoke), "--teacher-lr", str(lr)])
        for e, lr in teachers
    ]  # fmt: skip


def longest_first(jobs: list[tuple[str, dict, list[str]]]) -> list[tuple[str, dict, list[str]]]:
    """Student jobs by decreasing ``--student-epochs``, so that the last jobs to finish are short ones."""
    return sorted(jobs, key=lambda job: -float(job[2][job[2].index("--student-epochs") + 1]))


def teachers_and_students(
    sweep: Sweep, prefix: str, train: str, dev: str, teachers, schedules, grid, extra_phase: bool
):
    args = sweep.args
    data = ["--train", train, "--dev", dev]
    rows = [r for r in sweep.many(teacher_jobs(prefix, data, teachers, args.smoke)) if r["row"] == "teacher"]
    if not rows:
        raise SystemExit(f"no {prefix}teacher finished: see {sweep.out / 'logs'}")
    best = max(rows, key=lambda r: r["f1"])
    teacher = str(sweep.out / "runs" / best["job"] / "teacher" / "model")
    print(f"[sweep] {prefix}teacher: {best['job']} (F1 {best['f1']})", flush=True)

    def student(name, phase, e, lr, seeds, rest):
        settings = {"phase": phase, "teacher_job": best["job"]}
        return (
            name,
            settings,
            [
                *data,
                "--teacher",
                teacher,
                "--student-epochs",
                epochs(e, args.smoke),
                "--student-lr",
                str(lr),
                "--seeds",
                *seeds,
                *rest,
            ],
        )

    main_schedule = schedules[
        min(1, len(schedules) - 1)
    ]  # grid and pretrained-init rows at one fixed schedule, beside the main rows
    e, lr = main_schedule
    jobs = [
        student(f"{prefix}{kind}-e{se}-lr{slr:g}-s{seed}", f"{prefix}main", se, slr, [str(seed)], ["--rows", "main", "--inits", "teacher", "--kinds", kind])
        for se, slr in schedules for seed in (1, 2, 3) for kind in ("alone", "distilled")
    ]  # fmt: skip
    jobs += [
        student(f"{prefix}grid-{pair.replace(':', '-')}-e{e:g}-lr{lr:g}-s{seed}", f"{prefix}grid", e, lr, [str(seed)], ["--rows", "grid", "--grid", pair])
        for pair in grid for seed in (1,)
    ]  # fmt: skip
    if extra_phase:
        jobs += [
            student(f"{prefix}{kind}-pretrained-e{e:g}-lr{lr:g}-s{seed}", f"{prefix}pretrained", e, lr, [str(seed)], ["--rows", "main", "--inits", "pretrained", "--kinds", kind])
            for seed in (1, 2) for kind in ("alone", "distilled")
        ]  # fmt: skip
    sweep.many(longest_first(jobs))


def hidden_study(sweep: Sweep) -> None:
    """Does TinyBERT's hidden-state term, or a less confident teacher, widen distillation's lead? (SQuAD subset)"""
    args = sweep.args
    data = ["--train", args.train, "--dev", args.dev]
    sweep.many(teacher_jobs("h-", data, HIDDEN_TEACHERS, args.smoke))
    jobs = []
    for e, lr in HIDDEN_TEACHERS:
        tname = f"h-teacher-e{e}-lr{lr:g}"
        teacher = str(sweep.out / "runs" / tname / "teacher" / "model")
        if not Path(teacher).exists():
            print(f"[sweep] {tname} did not finish: its students are skipped", flush=True)
            continue

        def student(name, se, seeds, rest, phase="h-main", e=e, tname=tname, teacher=teacher):
            cmd = [*data, "--teacher", teacher, "--student-epochs", epochs(se, args.smoke), "--student-lr", "1e-4", "--seeds", *seeds, *rest]  # fmt: skip
            return (f"h-t{e}-{name}-e{se}-s{seeds[0]}", {"phase": phase, "teacher_job": tname}, cmd)

        for seed in ("1", "2"):
            jobs.append(student("alone", 5, [seed], main_rows("teacher", "alone")))
            jobs.append(student("distilled", 5, [seed], main_rows("teacher", "distilled")))
            for ah in HIDDEN_ALPHAS:
                jobs.append(
                    student(
                        f"hidden{ah:g}", 5, [seed], main_rows("teacher", "hidden", "--alpha-hidden", str(ah))
                    )
                )
        if e != HIDDEN_TEACHERS[-1][0]:
            continue
        # the second teacher also gets: pretrained init, the longer schedule, the grid with the hidden term
        for seed in ("1", "2"):
            for kind in ("alone", "hidden"):
                rest = main_rows("pretrained", kind, "--alpha-hidden", "10")
                jobs.append(student(f"{kind}-pretrained", 5, [seed], rest, phase="h-pretrained"))
            for name, kind, ah in (
                ("alone-long", "alone", 10),
                ("hidden-long", "hidden", 10),
                ("hidden100-long", "hidden", 100),
            ):
                rest = main_rows("teacher", kind, "--alpha-hidden", str(ah))
                jobs.append(student(name, 10, [seed], rest, phase="h-long"))
        for pair in ("4:0.5", "2:0.9"):
            rest = ["--rows", "grid", "--grid", pair, "--grid-kind", "hidden", "--alpha-hidden", "10"]
            jobs.append(student(f"grid{pair.replace(':', '-')}", 5, ["1"], rest, phase="h-grid"))
    sweep.many(longest_first(jobs))


def main_rows(init: str, kind: str, *extra: str) -> list[str]:
    """``table2_cpu.py`` options for one kind of main row from one init."""
    return ["--rows", "main", "--inits", init, "--kinds", kind, *extra]


def variant_file(sweep: Sweep, teacher: Path, folder: Path, copies: int) -> Path:
    """``folder/train-aug{copies}.json`` from ``teacher`` (``distilqa augment``, the table's windowing), made once
    before the jobs that share it (made by each job instead, the same file would be written by several at once)."""
    args = sweep.args
    path = folder / f"train-aug{copies}.json"
    if not path.exists():
        cmd = [sys.executable, "-m", "distilqa.cli", "augment", "--teacher", str(teacher), "--data", args.train, "--output", str(path),
               "--copies", str(copies), "--max-seq-length", "256", "--doc-stride", "96", "--device", args.measure_device, "--no-progress",
               *(["--limit", "24"] if args.smoke else [])]  # fmt: skip
        began = time.perf_counter()
        subprocess.run(cmd, check=True)
        print(f"[sweep] {path.name}: made in {time.perf_counter() - began:.0f} s", flush=True)
    return path


def table_study(sweep: Sweep) -> None:
    """``table2_cpu.py``'s default rows (its defaults: teacher, 2 seeds x 2 inits x ``DEFAULT_KINDS``, the grid), one
    job per row around one shared teacher and one shared variant file, then its summary table over the merged rows
    (``OUTPUT/table2.md``)."""
    args = sweep.args
    data = ["--train", args.train, "--dev", args.dev]
    smoke = ["--teacher-epochs", "1", "--student-epochs", "1", "--stage1-epochs", "0.5"] if args.smoke else []
    teacher_rows = sweep.many([("table-teacher", {"phase": "table"}, [*data, *smoke, "--rows", "teacher"])])
    teacher = sweep.out / "runs" / "table-teacher" / "teacher" / "model"
    if not teacher.exists():
        raise SystemExit(f"the teacher did not finish: see {sweep.out / 'logs'}")
    sys.path.insert(0, str(HERE))
    from table2_cpu import DEFAULT_KINDS, GRID
    from table2_cpu import summarise as table

    shared = sweep.out / "augmented"
    if any(kind.startswith("augmented") for kind in DEFAULT_KINDS):
        variant_file(sweep, teacher, shared, 4)
    common = [*data, *smoke, "--teacher", str(teacher), "--augment-dir", str(shared)]
    jobs = [
        (f"table-{kind}-{init}-s{seed}", {"phase": "table"}, [*common, "--rows", "main", "--seeds", str(seed), "--inits", init, "--kinds", kind])
        for seed in (1, 2) for init in ("teacher", "pretrained") for kind in reversed(DEFAULT_KINDS)
    ]  # fmt: skip

    jobs += [
        (f"table-grid-{t:g}-{a:g}", {"phase": "table"}, [*common, "--rows", "grid", "--grid", f"{t:g}:{a:g}"])
        for t, a in GRID
    ]
    rows = {}
    for row in teacher_rows + sweep.many(jobs):
        if row["row"] != "teacher" or not row.get("reused"):
            rows[row["row"]] = row
    (sweep.out / "table2.md").write_text(table(rows) + "\n")


STUDY_TEACHER = "a-teacher-e2-lr0.0002"


def study_teacher(sweep: Sweep) -> Path:
    """The teacher of the augment and attention studies (2 epochs at 2e-4, the table's), trained once."""
    data = ["--train", sweep.args.train, "--dev", sweep.args.dev]
    sweep.many(teacher_jobs("a-", data, [(2, 2e-4)], sweep.args.smoke))
    teacher = sweep.out / "runs" / STUDY_TEACHER / "teacher" / "model"
    if not teacher.exists():
        raise SystemExit(f"the teacher did not finish: see {sweep.out / 'logs'}")
    return teacher


def study_student(sweep: Sweep, teacher: Path, name: str, phase: str, se: float, seed: int, rest: list[str]):
    """One ``table2_cpu.py`` student job from the study teacher: lr 1e-4, ``se`` epochs, one seed."""
    args = sweep.args
    cmd = [
        *["--train", args.train, "--dev", args.dev, "--teacher", str(teacher)],
        *["--student-epochs", epochs(se, args.smoke), "--student-lr", "1e-4", "--seeds", str(seed), *rest],
    ]
    return (name, {"phase": phase, "teacher_job": STUDY_TEACHER}, cmd)


def run_with_variants(sweep: Sweep, teacher: Path, shared: Path, jobs) -> None:
    """Run ``jobs`` (filtered by ``--only``): those without variants at once, the others once the variant files
    they train on (their ``--augment-copies``, in ``shared``) are made; so only the files needed are made."""
    if sweep.args.only:
        jobs = [job for job in jobs if re.search(sweep.args.only, job[0])]

    def option(job, name):
        return job[2][job[2].index(name) + 1]

    augmented = [job for job in jobs if "augmented" in option(job, "--kinds")]
    futures = [
        sweep.pool.submit(sweep.job, *job)
        for job in longest_first([job for job in jobs if job not in augmented])
    ]
    for copies in sorted({int(option(job, "--augment-copies")) for job in augmented}):
        variant_file(sweep, teacher, shared, copies)
    futures += [sweep.pool.submit(sweep.job, *job) for job in longest_first(augmented)]
    for future in futures:
        future.result()


def augment_study(sweep: Sweep) -> None:
    """Do teacher-labelled question variants close the gap to 95% of the teacher? (SQuAD subset, 2 seeds)

    One teacher (2 epochs at 2e-4, the table's); the variant files (``AUGMENT_COPIES``) are made once from it and
    shared. Per seed: alone (5 and 10 epochs), distilled and hidden (10 epochs), and the augmented rows at the
    same number of steps as 10 epochs; augmented + hidden and hidden alone also at 1.5x the steps; alone and
    hidden with the student made of teacher layers 1, 3, 5. With ``--only``, just the variant files the chosen
    jobs train on are made.
    """
    teacher = study_teacher(sweep)
    shared = sweep.out / "augmented"

    def student(name, kind, se, seed, copies=AUGMENT_COPIES[0], layers="0,2,4"):
        rest = main_rows("teacher", kind, "--alpha-hidden", "10", "--augment-copies", str(copies), "--augment-dir", str(shared), "--layers", layers)  # fmt: skip
        return study_student(sweep, teacher, f"a-{name}-e{se}-s{seed}", "a-main", se, seed, rest)

    jobs = []
    for seed in (1, 2):
        jobs += [student("alone", "alone", 5, seed), student("alone", "alone", 10, seed)]
        jobs += [student(kind, kind, 10, seed) for kind in ("distilled", "hidden")]
        for copies in AUGMENT_COPIES:
            jobs += [student(f"augmented{copies}", "augmented", 10, seed, copies), student(f"augmented-hidden{copies}", "augmented-hidden", 10, seed, copies)]  # fmt: skip
        # 1.5x the steps, with and without the variants: more passes is what TinyBERT's augmentation relies on
        jobs += [student(f"augmented-hidden{AUGMENT_COPIES[0]}", "augmented-hidden", 15, seed), student("hidden", "hidden", 15, seed)]  # fmt: skip
        # the teacher's top layer kept (its QA head was trained on it): 1,3,5 instead of the paper's 0,2,4
        jobs += [student(f"{kind}-L135", kind, 10, seed, layers="1,3,5") for kind in ("alone", "hidden")]
    run_with_variants(sweep, teacher, shared, jobs)


def attention_study(sweep: Sweep) -> None:
    """Does MiniLMv2's self-attention relation term add to the hidden-state term and the variants? (2 seeds)

    The teacher and variant file of ``augment_study``; per seed, all at 10 epochs' steps: hidden (the control),
    the relation term on top of the logits at ``ATTENTION_ALPHAS``, hidden + relations, and both with and
    without relations on the 4-variant file.
    """
    teacher = study_teacher(sweep)
    shared = sweep.out / "augmented"

    def student(name, kind, seed, alpha_attention=ATTENTION_ALPHAS[0]):
        rest = main_rows("teacher", kind, "--alpha-hidden", "10", "--alpha-attention", str(alpha_attention), "--augment-copies", "4", "--augment-dir", str(shared))  # fmt: skip
        return study_student(sweep, teacher, f"r-{name}-e10-s{seed}", "r-main", 10, seed, rest)

    jobs = []
    for seed in (1, 2):
        jobs += [student("hidden", "hidden", seed), student("augmented-hidden4", "augmented-hidden", seed)]
        jobs += [student(f"attention{a:g}", "attention", seed, a) for a in ATTENTION_ALPHAS]
        jobs += [student("hidden-attention", "hidden-attention", seed), student("augmented-hidden4-attention", "augmented-hidden-attention", seed)]  # fmt: skip
    run_with_variants(sweep, teacher, shared, jobs)


def staged_study(sweep: Sweep) -> None:
    """Do TinyBERT's two stages reach 95% of the teacher? (3 seeds; the CPU measured 94% at 5 epochs' steps)

    The teacher and variant file of ``augment_study``; per seed: alone and two stages (first stage 2 epochs) at
    5 epochs' steps (the GPU twins of RESULTS 6.8), and at 10 epochs' steps alone, one-stage hidden (the
    controls), two stages with each of ``STAGE1_EPOCHS``, two stages with logits only in the second, one-stage
    hidden on the 4-variant file and two stages with the variants in the second; at both lengths, two stages with
    the variants in the first (``--stage1-augmented``, TinyBERT augments both stages).
    """
    teacher = study_teacher(sweep)
    shared = sweep.out / "augmented"

    def student(name, kind, se, seed, stage1=STAGE1_EPOCHS[0], *extra):
        first = "0.5" if sweep.args.smoke else str(stage1)
        rest = main_rows("teacher", kind, "--alpha-hidden", "10", "--augment-copies", "4", "--augment-dir", str(shared), "--stage1-epochs", first, *extra)  # fmt: skip
        return study_student(sweep, teacher, f"s-{name}-e{se}-s{seed}", "s-main", se, seed, rest)

    jobs = []
    for seed in (1, 2, 3):
        jobs += [student("alone", "alone", 5, seed), student("staged-hidden-1st2", "staged-hidden", 5, seed)]
        jobs += [student(kind, kind, 10, seed) for kind in ("alone", "hidden", "augmented-hidden")]
        jobs += [student(f"staged-hidden-1st{e:g}", "staged-hidden", 10, seed, e) for e in STAGE1_EPOCHS]
        jobs += [student("staged-1st2", "staged", 10, seed)]
        jobs += [student("augmented-staged-hidden-1st2", "augmented-staged-hidden", 10, seed)]
        jobs += [
            student(
                "staged-hidden-1st2aug", "staged-hidden", se, seed, STAGE1_EPOCHS[0], "--stage1-augmented"
            )
            for se in (5, 10)
        ]
    run_with_variants(sweep, teacher, shared, jobs)


def summarise(path: Path) -> str:
    """One line per setting (seeds pooled): mean F1 ± spread, EM, and train seconds."""
    groups: dict[tuple, list[dict]] = {}
    unique = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        unique[(r["job"], r["row"])] = r  # a rerun appends the finished jobs' rows again
    for r in unique.values():
        if r["row"] == "teacher" and r.get("reused"):
            continue
        key = (
            r["phase"], r.get("teacher_job", ""), r["kind"], r.get("init", ""), r.get("epochs"), r.get("learning_rate"),
            r.get("temperature", ""), r.get("alpha_ce", ""), r.get("alpha_hidden", ""), r.get("alpha_attention", ""), r.get("augment_copies", ""),
            f"{r['stage1_epochs']:g}" + (f" (+{r['stage1_augment_copies']} variants)" if r.get("stage1_augment_copies") else "")
            if r.get("stage1_epochs") else "",
            ",".join(map(str, r.get("student_layers", []))) if r.get("student_layers") not in (None, [0, 2, 4]) else "",
        )  # fmt: skip
        groups.setdefault(key, []).append(r)
    lines = [
        "| phase | teacher | kind | init | epochs | lr | T | alpha_ce | alpha_hidden | alpha_attention | variants | stage 1 | layers | seeds | EM | F1 | train s |",
        "|" + "---|" * 17,
    ]
    for key, group in sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        f1 = [r["f1"] for r in group]
        em = [r["exact_match"] for r in group]
        spread = f" ± {statistics.stdev(f1):.1f}" if len(f1) > 1 else ""
        train = [r["train_s"] for r in group if r.get("train_s") is not None]
        cells = [str(v) for v in key] + [
            str(len(group)),
            f"{statistics.mean(em):.1f}",
            f"{statistics.mean(f1):.1f}{spread}",
            f"{statistics.mean(train):.0f}" if train else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    sweep = Sweep(args)
    global TEACHERS, SCHEDULES, GRID, DEMO_TEACHERS, DEMO_SCHEDULES, DEMO_GRID
    if args.smoke:  # one of each setting
        TEACHERS, SCHEDULES, GRID = TEACHERS[:1], SCHEDULES[:1], GRID[:1]
        DEMO_TEACHERS, DEMO_SCHEDULES, DEMO_GRID = DEMO_TEACHERS[:1], DEMO_SCHEDULES[:1], DEMO_GRID[:1]
    if args.study in ("hidden", "table", "augment", "attention", "staged"):
        {
            "hidden": hidden_study,
            "table": table_study,
            "augment": augment_study,
            "attention": attention_study,
            "staged": staged_study,
        }[args.study](sweep)
        table = summarise(sweep.out / "sweep.jsonl")
        (sweep.out / "sweep.md").write_text(table + "\n")
        print(table)
        return 0
    with ThreadPoolExecutor(2) as phases:
        squad = phases.submit(
            teachers_and_students, sweep, "", args.train, args.dev, TEACHERS, SCHEDULES, GRID, True
        )
        demo = None
        if args.demo:
            demo = phases.submit(
                teachers_and_students, sweep, "demo-", str(DEMO_DATA / "train.json"), str(DEMO_DATA / "dev.json"),
                DEMO_TEACHERS, DEMO_SCHEDULES, DEMO_GRID, False,
            )  # fmt: skip
        squad.result()
        if demo:
            demo.result()
    table = summarise(sweep.out / "sweep.jsonl")
    (sweep.out / "sweep.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
