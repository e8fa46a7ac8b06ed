"""``distilqa serve --workers N``: N server processes answering on one port.

The parent binds and listens on the port, then starts N workers (``distilqa serve`` again, with the same options)
that inherit the listening socket (:data:`SOCKET_ENV` names its file descriptor); each loads the model and runs
its own uvicorn server on that socket, and the kernel hands each new connection to one of them. The parent loads
no model and serves nothing; it waits. On SIGTERM or SIGINT it sends SIGTERM to every worker (each drains its
in-flight requests) and waits at most ``drain_s`` before killing the rest; it exits 0 when every worker exited 0.
A worker that exits by itself (a bad model folder, a crash) makes the parent stop the others and exit with that
worker's code (1 when it died of a signal), so a supervisor or container platform restarts the whole.

Each worker gets ``OMP_NUM_THREADS`` = CPUs // N (unless set), so N workers do not oversubscribe the cores.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time

logger = logging.getLogger(__name__)

SOCKET_ENV = "DISTILQA_SERVE_SOCKET_FD"
POLL_S = 0.1


def inherited_socket() -> socket.socket | None:
    """The listening socket a ``--workers`` parent passed to this worker, or `None` when started directly."""
    fd = os.environ.pop(SOCKET_ENV, None)
    if fd is None:
        return None
    return socket.socket(fileno=int(fd))


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` that child processes can inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def run_workers(argv: list[str], host: str, port: int, workers: int, drain_s: float) -> int:
    """Start ``workers`` copies of ``distilqa serve ARGV`` on one listening socket and supervise them.

    Returns:
        `int`: the exit code for the parent: 0 after a signal when all workers exited 0, else non-zero.
    """
    sock = listen(host, port)
    env = {**os.environ, SOCKET_ENV: str(sock.fileno())}
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    command = [sys.executable, "-m", "distilqa.cli", "serve", *argv]
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda s, f: received.append(s)) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    children: list[subprocess.Popen] = []
    try:
        for _ in range(workers):
            children.append(
                subprocess.Popen(command, env=env, pass_fds=(sock.fileno(),), stdin=subprocess.DEVNULL)
            )
        logger.info("%d workers on %s:%d: %s", workers, host, port, " ".join(str(c.pid) for c in children))
        exited = None
        while not received and exited is None:
            exited = next((c for c in children if c.poll() is not None), None)
            time.sleep(POLL_S)
    finally:
        sock.close()  # the workers hold their own copies
        codes = _stop(children, drain_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if exited is not None and not received:
        code = exited.returncode
        logger.error("worker %d exited with %s; stopped the others", exited.pid, code)
        return code if code and code > 0 else 1
    return 0 if all(code == 0 for code in codes) else 1


def _stop(children: list[subprocess.Popen], drain_s: float) -> list[int]:
    """SIGTERM to every live worker, a wait of at most ``drain_s`` for all of them, then SIGKILL to the rest."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + drain_s
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("worker %d did not stop within %g s of SIGTERM; killing it", child.pid, drain_s)
            child.kill()
            child.wait()
    return [child.returncode for child in children]
