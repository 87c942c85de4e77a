"""A real Celery worker process running the processor's task, as the Railway worker runs it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Mapping

from sandbox.servers import ServerUnavailable, stop_process


@contextlib.contextmanager
def celery_worker(env: Mapping[str, str], log_path: Path, queue: str | None = None, timeout: float = 60.0,
                  app: str = "processor.celery_app", cwd: Path | None = None,
                  python: str = sys.executable) -> Iterator[subprocess.Popen]:
    """``celery -A processor.celery_app worker`` (solo pool) until the block ends.

    ``queue`` gives the worker a queue of its own, so tests sharing one Redis never take each
    other's tasks. ``app`` and ``cwd`` run another app (the backend's worker, in its folder),
    ``python`` another installation (a virtualenv with the built wheel).
    """
    command = [python, "-m", "celery", "-A", app, "worker", "--pool=solo",
               "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"]
    if queue:
        command += ["-Q", queue]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=dict(env), stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while "ready" not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise ServerUnavailable(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        stop_process(process, timeout=20)
