"""Post-processing speed on one core: vectorised ``postprocess_predictions`` against the plain-loop oracle.

Builds synthetic eval features shaped like SQuAD dev with a trained model's logits (fixed seed): ~1.3 windows
per question, 384 tokens, a 14-token question, contexts of 100-600 words, logits ~N(-5, 1.5) with a few peaks
around +5 in the context. Both implementations run on the same inputs with BLAS / OpenMP pinned to one thread;
the best of ``--repeats`` runs counts, and the answers must be identical.

    python experiments/perf/postprocess_speed.py            # markdown table
    python experiments/perf/postprocess_speed.py --json     # one JSON object

The oracle is the tests' (tests/postprocess_oracle.py), so this runs from a checkout, not an installed package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
VOCAB = "the of and a in to was is for on as by with from his that at which an he it were are first".split()
VOCAB += "university river century population government church school season album company war".split()


def synthetic_inputs(
    n_features: int, length: int = 384, seed: int = 0, question_len: int = 14, stride: int = 128
):
    """Examples, example ids, offsets (N, L, 2) and start / end logits (N, L) shaped like a trained model's."""
    import numpy as np

    rng = np.random.default_rng(seed)
    room = length - question_len - 3  # [CLS] question [SEP] context [SEP]
    examples, example_ids, offsets = [], [], np.full((n_features, length, 2), -1, dtype=np.int64)
    n = 0
    while n < n_features:
        windows = int(rng.choice([1, 2, 3], p=[0.75, 0.2, 0.05]))
        n_words = int(rng.integers(100, room)) if windows == 1 else room + (windows - 1) * stride - 40
        words = [VOCAB[i] for i in rng.integers(0, len(VOCAB), n_words)]
        context = " ".join(words)
        ends = np.cumsum([len(w) + 1 for w in words]) - 1
        spans = np.stack([ends - [len(w) for w in words], ends], axis=1)
        qid = f"q{len(examples)}"
        examples.append({"id": qid, "context": context})
        for w in range(min(windows, n_features - n)):
            chunk = spans[w * stride : w * stride + room]
            offsets[n, question_len + 2 : question_len + 2 + len(chunk)] = chunk
            example_ids.append(qid)
            n += 1
    logits = []
    for _ in range(2):
        x = rng.normal(-5.0, 1.5, (n_features, length)).astype(np.float32)
        x[:, 0] = rng.normal(0.0, 2.0, n_features)  # CLS
        n_ctx = (offsets[:, :, 0] >= 0).sum(1)
        for _peak in range(3):  # a few peaked positions in the context region
            pos = question_len + 2 + (rng.random(n_features) * n_ctx).astype(np.int64)
            x[np.arange(n_features), pos] = rng.normal(5.0, 1.5, n_features)
        logits.append(x)
    return examples, example_ids, offsets, logits[0], logits[1]


def best_time(fn, repeats: int) -> tuple[float, float, object]:
    """Best wall-clock and best CPU (process) time over ``repeats`` calls, and the last output."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu, out


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=20_000, help="number of eval windows")
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--n-best", type=int, default=20)
    parser.add_argument("--max-answer-length", type=int, default=30)
    parser.add_argument("--version-2", action="store_true", help="SQuAD 2.0 post-processing (null answers)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    for var in THREAD_VARS:  # before numpy is imported
        os.environ[var] = "1"
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # the oracle lives with the tests
    import numpy as np
    from postprocess_oracle import reference_postprocess

    from distilqa.infra.hardware import cpu_model
    from distilqa.qa.postprocess import postprocess_predictions

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass

    inputs = synthetic_inputs(args.features, args.max_seq_length, args.seed)
    options = dict(n_best=args.n_best, max_answer_length=args.max_answer_length, version_2=args.version_2)
    load_before = load_average()
    fast_wall, fast_cpu, fast = best_time(lambda: postprocess_predictions(*inputs, **options), args.repeats)
    loop_wall, loop_cpu, loop = best_time(lambda: reference_postprocess(*inputs, **options), args.repeats)
    identical = fast.predictions == loop.predictions and all(
        [e["text"] for e in fast.nbest[q]] == [e["text"] for e in loop.nbest[q]] for q in loop.nbest
    )
    n = args.features
    result = {
        "features": n,
        "examples": len(inputs[0]),
        "max_seq_length": args.max_seq_length,
        "n_best": args.n_best,
        "max_answer_length": args.max_answer_length,
        "version_2": args.version_2,
        "vectorised_features_per_s": round(n / fast_wall),
        "loop_features_per_s": round(n / loop_wall),
        "vectorised_features_per_cpu_s": round(n / fast_cpu),
        "loop_features_per_cpu_s": round(n / loop_cpu),
        "speedup": round(loop_wall / fast_wall, 1),
        "identical": identical,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": f"{load_before} -> {load_average()}",
        "threads": 1,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "repeats": args.repeats,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{n} features / {result['examples']} questions, L={args.max_seq_length}, n_best={args.n_best}, "
            f"max_answer_length={args.max_answer_length}, version_2={args.version_2}; 1 thread, best of "
            f"{args.repeats}; CPU: {result['cpu']} ({result['cores']} cores, load average "
            f"{result['load_average']}); Python {result['python']}, numpy {np.__version__}\n"
        )
        print("| implementation | features/s (wall) | features/s (CPU time) | best wall time (s) |")
        print("|---|---:|---:|---:|")
        for name, wall, cpu in (
            ("vectorised (`distilqa.qa.postprocess`)", fast_wall, fast_cpu),
            ("loop oracle (transformers-example style)", loop_wall, loop_cpu),
        ):
            print(f"| {name} | {n / wall:,.0f} | {n / cpu:,.0f} | {wall:.3f} |")
        print(f"\nspeed-up (wall): {result['speedup']}x; identical answers: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
