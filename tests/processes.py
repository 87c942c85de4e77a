"""Looking at real process trees (Linux /proc), for tests that kill or interrupt a process mid-work."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

import pytest

T = TypeVar("T")


def descendants(pid: int) -> list[int]:
    """Every process under ``pid``."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def running_ffmpeg(pid: int) -> int | None:
    """The ffmpeg process under ``pid``, if one is running."""
    # By the program's name: the layer's ffprobe lives under a folder called ffmpeg.
    return next((child for child in descendants(pid) if Path(command_of(child).split(" ", 1)[0]).name == "ffmpeg"),
                None)


def wait_until(condition: Callable[[], T], timeout: float, failure: Callable[[], str], interval: float = 0.1) -> T:
    """``condition()``'s first true value; fails the test with ``failure()`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(failure())


def kill_first_ffmpeg(pid: int, *, after: float = 0.3, timeout: float = 60.0) -> threading.Thread:
    """Start a thread that SIGKILLs the first ffmpeg under ``pid`` once it has run ``after``
    seconds, as the out-of-memory killer would; ``join`` it to know the kill happened."""
    def kill() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = running_ffmpeg(pid)
            if found:
                time.sleep(after)
                os.kill(found, signal.SIGKILL)
                return
            time.sleep(0.02)
    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread
