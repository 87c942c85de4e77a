"""Run one ffmpeg process: progress from ``-progress pipe:1``, a hard deadline, errors with stderr.

Lambda kills an invocation at its timeout without running any cleanup, so the job row would
stay PROCESSING; stopping ffmpeg at our own deadline, a little earlier, leaves time to mark
the job FAILED. Both pipes are drained by threads (a full stderr pipe would block ffmpeg
forever) and the callback runs on the caller's thread.

An ffmpeg that dies of a signal (the out-of-memory killer sends SIGKILL) raises a transient
error: a fresh invocation has all its memory again, and the last attempt's message says what
to change.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from processor.errors import DeadlineExceededError, FFmpegError, FFmpegKilledError
from processor.limits import memory_limit_mb

PROGRESS_INTERVAL_SECONDS = 0.25  # at most four progress calls a second
STDERR_TAIL_LINES = 20
_POLL_SECONDS = 0.1
_END = object()


def out_time(line: str) -> float | None:
    """The output clock, in seconds, that one ``-progress`` line reports, or None.

    ``out_time_us`` is in microseconds (``N/A`` before the first packet).
    """
    key, _, value = line.strip().partition("=")
    if key != "out_time_us":
        return None
    try:
        return int(value) / 1e6
    except ValueError:
        return None


def progress_fraction(line: str, duration: float) -> float | None:
    """The fraction done that one ``-progress`` line reports, or None if it reports none.

    ``progress=end`` is ffmpeg's own statement that it finished.
    """
    if line.strip() == "progress=end":
        return 1.0
    seconds = out_time(line)
    if seconds is None or duration <= 0:
        return None
    return min(1.0, max(0.0, seconds / duration))


def _pump(stream: IO[str], sink: Callable[[Any], None], end: object | None = None) -> None:
    for line in stream:
        sink(line)
    if end is not None:
        sink(end)


def run_ffmpeg(command: Sequence[str], *, duration: float,
               on_progress: Callable[[float], None] | None = None,
               deadline: float | None = None, environment: Mapping[str, str] | None = None) -> float:
    """Run ``command`` (an ffmpeg argv with ``-progress pipe:1``) to completion and return the
    output clock it reached, in seconds: short of ``duration`` when the input ended early.

    ``duration`` is the output length that counts as 1.0; ``deadline`` a ``time.monotonic()``
    value after which ffmpeg is killed and DeadlineExceededError raised; ``environment``
    variables added to this process's for ffmpeg.
    """
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceededError("the deadline passed before ffmpeg started")
    started = time.monotonic()
    process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, errors="replace",
                               env={**os.environ, **environment} if environment else None)
    assert process.stdout is not None and process.stderr is not None
    lines: queue.Queue[object] = queue.Queue()
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, lines.put, _END), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, tail.append), daemon=True),
    ]
    for reader in readers:
        reader.start()
    reported, last_report, pending, reached = 0.0, float("-inf"), None, 0.0
    try:
        while True:
            wait = _POLL_SECONDS if deadline is None else min(_POLL_SECONDS, deadline - time.monotonic())
            if wait <= 0:
                raise DeadlineExceededError(
                    f"ffmpeg stopped after {time.monotonic() - started:.1f}s: the deadline passed")
            try:
                item = lines.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is _END:
                break
            if isinstance(item, str):
                reached = max(reached, out_time(item) or 0.0)
            fraction = progress_fraction(item, duration) if isinstance(item, str) else None
            if fraction is not None and fraction > reported:
                pending = reported = fraction
            now = time.monotonic()
            due = pending is not None and (pending >= 1.0 or now - last_report >= PROGRESS_INTERVAL_SECONDS)
            if on_progress and due:
                on_progress(pending)
                pending, last_report = None, now
        code = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for reader in readers:
            reader.join(timeout=5)
        process.stdout.close()
        process.stderr.close()
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        raise FFmpegKilledError(name, memory_limit_mb())
    if code != 0:
        message = "".join(tail).strip() or "no error output"
        raise FFmpegError(f"ffmpeg exited with status {code}: {message}")
    if on_progress and reported < 1.0:
        on_progress(1.0)
    return reached
