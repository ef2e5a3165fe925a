"""Runs one engine job in a worker process and streams its JSON progress lines.

Shared by the QgsTask (Register dialog) and the Processing algorithms. Cancel kills the process, so it
takes effect within one poll interval at any stage, even inside a long torch call.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

from .environment import worker_env


# The engine's errors.UncertainError: the tool worked, the evidence was too weak to write the result.
UNCERTAIN_KIND = "UncertainError"


@dataclass
class JobOutcome:
    result: Optional[dict] = None
    error: str = ""
    kind: str = ""
    cancelled: bool = False
    log: list[str] = field(default_factory=list)  # stderr lines and tracebacks, for the log panel

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.error and not self.cancelled


def run_job(python: str, job: dict, on_progress: Callable[[float, str], None], is_cancelled: Callable[[], bool],
            poll_s: float = 0.1) -> JobOutcome:
    """Never raises: every failure comes back in the outcome."""
    out = JobOutcome()
    try:
        proc = subprocess.Popen([python, "-m", "promptmid.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=worker_env(), bufsize=1)
    except OSError as exc:
        out.error, out.kind = f"Cannot start the engine ({python}): {exc}", "EnvironmentError"
        return out
    lines: list[str] = []
    done = threading.Event()

    def read_stdout() -> None:
        for line in proc.stdout:
            lines.append(line)
        done.set()

    def read_stderr() -> None:
        for line in proc.stderr:
            out.log.append(line.rstrip())

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        try:
            proc.stdin.write(json.dumps(job))
            proc.stdin.close()
        except OSError:  # the worker died at start-up (BrokenPipe): its stderr says why, reported below
            pass
        handled = 0
        while True:
            finished = done.wait(poll_s)
            while handled < len(lines):
                _handle(lines[handled], out, on_progress)
                handled += 1
            if finished and proc.poll() is not None:
                break
            if is_cancelled():
                proc.kill()
                out.cancelled, out.error, out.kind = True, "Cancelled by user.", "CancelledError"
                return out
    finally:
        # Reap the process and close every pipe here: left to the garbage collector they surface as
        # "ResourceWarning: unclosed file" in QGIS's Python warnings log after each run.
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
    if out.result is None and not out.error:
        out.error = f"The engine stopped unexpectedly (exit code {proc.returncode})" + (f": {out.log[-1]}" if out.log else ".")
        out.kind = "WorkerCrash"
    return out


def _handle(line: str, out: JobOutcome, on_progress: Callable[[float, str], None]) -> None:
    try:
        msg = json.loads(line)
    except ValueError:
        out.log.append(line.rstrip())  # stray prints from libraries
        return
    if "progress" in msg:
        on_progress(float(msg["progress"]), str(msg.get("message", "")))
    elif "result" in msg:
        out.result = msg["result"]
    elif "error" in msg:
        out.error, out.kind = str(msg["error"]), str(msg.get("kind", ""))
        if msg.get("traceback"):
            out.log.append(msg["traceback"])
