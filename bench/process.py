"""Running the benchmark's steps: bounded subprocesses and progress lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from servers import MemoryWatch

__all__ = ["HERE", "ROOT", "PYTHON", "log", "run_bounded", "last_json"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_bounded(command: list[str], timeout: float, *, cwd: Path = ROOT) -> tuple[float, int | None, int, str]:
    """Run ``command`` in its own process group; kill the group at ``timeout``.

    :returns: seconds, exit code (None when killed at the timeout), peak resident bytes
        of the process tree, and its stdout.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    with MemoryWatch(process.pid, interval=0.5) as watch:
        try:
            out, err = process.communicate(timeout=timeout)
            code: int | None = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            code = None
    seconds = time.perf_counter() - started
    if code not in (0, None):
        log(f"{' '.join(command[:4])}... exited {code}: {err.decode(errors='replace')[-1500:]}")
    return seconds, code, watch.peak_total, out.decode(errors="replace")


def last_json(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}
