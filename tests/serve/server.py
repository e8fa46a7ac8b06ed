"""A real ``distilqa serve`` subprocess on 127.0.0.1 and a standard-library HTTP client for the tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WINDOWING = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16"]
STARTUP_S = 120  # a bound on waiting for /readyz, not a timing assertion


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python -m distilqa.cli serve MODEL --port FREE ...``, waited on until /readyz answers 200."""

    def __init__(self, model: Path, *options: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
        command = [sys.executable, "-m", "distilqa.cli", "serve", str(model), "--port", str(self.port)]
        self.process = subprocess.Popen(
            command + WINDOWING + ["--log_level", "warning", *options],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited {self.process.returncode}: {self.process.stdout.read()}"
                )
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not become ready")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """``(status, headers, decoded JSON or text)``; HTTP errors are returned, not raised."""
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                status, head, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            status, head, raw = err.code, err.headers, err.read()
        text = raw.decode("utf-8")
        is_json = head.get("content-type", "").startswith("application/json")
        return status, head, json.loads(text) if is_json else text

    def get(self, path: str):
        return self.request("GET", path)[::2]

    def post(self, payload, raw: bytes | None = None):
        body = raw if raw is not None else json.dumps(payload).encode("utf-8")
        status, _, data = self.request("POST", "/v1/answer", body, {"Content-Type": "application/json"})
        return status, data

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
