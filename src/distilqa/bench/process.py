"""Process measurement for the benchmarks: peak memory, timers, and child processes that report one JSON line."""

from __future__ import annotations

import os
import resource
import sys
import time
from contextlib import contextmanager


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (10^6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6, 1)


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm", encoding="utf-8") as handle:
            pages = int(handle.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)
    except OSError:
        return peak_rss_mb()


class PeakRss:
    """Sample this process's RSS on a background thread; ``peak_mb`` is the peak seen while active.

    ``ru_maxrss`` only ever grows, so it cannot separate phases of one run; sampling can.
    """

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = None

    def __enter__(self):
        import threading

        self.peak_mb = current_rss_mb()
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(self.interval):
                self.peak_mb = max(self.peak_mb, current_rss_mb())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_mb())
        return False


@contextmanager
def timer():
    """``with timer() as t: ...`` then ``t()`` gives the elapsed seconds."""
    began = time.perf_counter()
    end = None

    def elapsed() -> float:
        return (end or time.perf_counter()) - began

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


INPUT_ERROR_PREFIX = "DISTILQA_INPUT_ERROR "


def child_main(work, result_prefix: str) -> int:
    """The entry point of a benchmark's child process: print ``work()``'s result as one JSON line after
    ``result_prefix`` (exit 0), or an :class:`~distilqa.errors.InputError` as one line for the parent (exit 2)."""
    import json

    from distilqa.errors import InputError

    try:
        result = work()
    except InputError as error:
        print(INPUT_ERROR_PREFIX + str(error), flush=True)
        return 2
    print(result_prefix + json.dumps(result), flush=True)
    return 0


def run_child(command: list[str], env: dict, result_prefix: str, what: str) -> dict:
    """Run a child started with :func:`child_main` and return its result. Its bad-input error is raised again
    here as the same one-line :class:`~distilqa.errors.InputError`; any other failure is a ``RuntimeError``
    naming ``what`` with the last lines of its output."""
    import json
    import subprocess

    from distilqa.errors import InputError

    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    errors = [line[len(INPUT_ERROR_PREFIX) :] for line in lines if line.startswith(INPUT_ERROR_PREFIX)]
    if errors:
        raise InputError(errors[-1])
    results = [line for line in lines if line.startswith(result_prefix)]
    if done.returncode != 0 or not results:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"{what} failed (exit code {done.returncode}): {tail}")
    return json.loads(results[-1][len(result_prefix) :])
