"""Post-processing speed on one core: vectorised ``postprocess_predictions`` against the plain-loop oracle.

Builds synthetic eval features shaped like SQuAD dev with a trained model's logits (fixed seed): ~1.3 windows
per question, 384 tokens, a 14-token question, contexts of 100-600 words, logits ~N(-5, 1.5) with a few peaks
around +5 in the context. Both implementations run on the same inputs with BLAS / OpenMP pinned to one thread;
the best of ``--repeats`` runs counts, and the answers must be identical.

    python benchmarks/postprocess_speed.py            # markdown table
    python benchmarks/postprocess_speed.py --json     # one JSON object
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


def synthetic_inputs(n_features: int, length: int = 384, seed: int = 0, question_len: int = 14, stride: int = 128):
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


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import numpy as np
    from postprocess_oracle import reference_postprocess

    from distilqa.postprocess import postprocess_predictions

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass

    inputs = synthetic_inputs(args.features, args.max_seq_length, args.seed)
    options = dict(n_best=args.n_best, max_answer_length=args.max_answer_length, version_2=args.version_2)
    fast_s, fast = best_time(lambda: postprocess_predictions(*inputs, **options), args.repeats)
    loop_s, loop = best_time(lambda: reference_postprocess(*inputs, **options), args.repeats)
    identical = fast.predictions == loop.predictions and all(
        [e["text"] for e in fast.nbest[q]] == [e["text"] for e in loop.nbest[q]] for q in loop.nbest
    )
    result = {
        "features": args.features,
        "examples": len(inputs[0]),
        "max_seq_length": args.max_seq_length,
        "n_best": args.n_best,
        "max_answer_length": args.max_answer_length,
        "version_2": args.version_2,
        "vectorised_features_per_s": round(args.features / fast_s),
        "loop_features_per_s": round(args.features / loop_s),
        "speedup": round(loop_s / fast_s, 1),
        "identical": identical,
        "cpu": cpu_model(),
        "threads": 1,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "repeats": args.repeats,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['features']} features / {result['examples']} questions, L={args.max_seq_length}, "
            f"n_best={args.n_best}, max_answer_length={args.max_answer_length}, version_2={args.version_2}, "
            f"1 thread, best of {args.repeats}; CPU: {result['cpu']}; Python {result['python']}, numpy {np.__version__}\n"
        )
        print("| implementation | features/s | time (s) |\n|---|---:|---:|")
        print(f"| vectorised (distilqa.postprocess) | {result['vectorised_features_per_s']:,} | {fast_s:.3f} |")
        print(f"| loop oracle (transformers-example style) | {result['loop_features_per_s']:,} | {loop_s:.3f} |")
        print(f"\nspeed-up: {result['speedup']}x; identical answers: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
