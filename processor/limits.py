"""Will the encode fit? Peak memory and time estimated from the probe, before any encoding.

An input too large for the invocation fails either after Lambda's 15 minutes (the deadline)
or when the system kills ffmpeg for memory; both cost the whole run and say little. The
estimate refuses such a job at once, with the reason and what to change.

The model is linear in pixels, calibrated on the pinned ffmpeg with libx264 veryfast
(bench/memory_bench.py; figures in bench/README.md, "Memory"):

- peak memory: a fixed part, plus decoder frames in the input's pixels, plus x264's lookahead
  and reference frames in the output's pixels (this dominates: an 8K output peaked at 3.6 GB,
  an 8K input scaled to 1920 at 0.6 GB);
- CPU time: per frame, decoding in input pixels plus encoding in output pixels; wall time is
  at best that over the cores the process may use.

Every constant is at or below what was measured here, and wall time assumes perfect use of
every core: the estimate is meant as a lower bound, so that a refused job would not have fit. A job that passes
may still run out (the deadline stops it cleanly, an out-of-memory kill is retried and then
explained); the refusal is for the ones that cannot.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from processor.command import output_rate, output_size
from processor.errors import InvalidInputError
from processor.probe import MediaInfo

BASE_MB = 60.0
INPUT_MB_PER_MEGAPIXEL = 9.5
OUTPUT_MB_PER_MEGAPIXEL = 97.0
DECODE_CPU_SECONDS_PER_MEGAPIXEL_FRAME = 0.0015
ENCODE_CPU_SECONDS_PER_MEGAPIXEL_FRAME = 0.0100
# What the rest of the invocation holds beside ffmpeg, at least: Python with boto3.
RUNTIME_MB = 100
# The CPU constants are veryfast's; slower presets cost more, so they stay a lower bound there.
# x264's two fastest presets take a third to a half of veryfast's time: a quarter keeps the bound.
PRESET_CPU_FACTOR = {"ultrafast": 0.25, "superfast": 0.25}


class TooLargeError(InvalidInputError):
    """The input cannot be encoded within the invocation's memory or remaining time."""

    error_type = "input_too_large"


@dataclass(frozen=True)
class Estimate:
    peak_mb: float
    cpu_seconds: float
    output_size: tuple[int, int]

    def wall_seconds(self, cores: float) -> float:
        return self.cpu_seconds / max(1.0, cores)


def estimate(media: MediaInfo, seconds: float, max_long_side: int, preset: str = "veryfast") -> Estimate:
    """The encode of ``seconds`` of ``media`` at the output size ``max_long_side`` gives
    (fan-out estimates one item's seconds)."""
    width, height = output_size(media, max_long_side)
    input_mp = media.display_width * media.display_height / 1e6
    output_mp = width * height / 1e6
    cpu = seconds * (float(media.fps) * DECODE_CPU_SECONDS_PER_MEGAPIXEL_FRAME * input_mp
                     + float(output_rate(media)) * ENCODE_CPU_SECONDS_PER_MEGAPIXEL_FRAME * output_mp
                     * PRESET_CPU_FACTOR.get(preset, 1.0))
    peak = BASE_MB + INPUT_MB_PER_MEGAPIXEL * input_mp + OUTPUT_MB_PER_MEGAPIXEL * output_mp
    return Estimate(peak_mb=peak, cpu_seconds=cpu, output_size=(width, height))


def check(needed: Estimate, *, memory_mb: int | None, seconds_left: float | None, cores: float) -> None:
    """Raise TooLargeError when ``needed`` exceeds the memory (None: unknown, as in a Celery
    worker) or the seconds left before the deadline (None: no deadline). The message names
    the settings of where it runs: the stack's in Lambda (``memory_mb`` known), the worker's
    variable elsewhere."""
    width, height = needed.output_size
    size_setting = "function.maxOutputLongSide" if memory_mb is not None else "VIDEO_MAX_LONG_SIDE"
    if memory_mb is not None and needed.peak_mb + RUNTIME_MB > memory_mb:
        raise TooLargeError(
            f"encoding this video at {width}x{height} needs about {needed.peak_mb + RUNTIME_MB:,.0f} MB, "
            f"more than the {memory_mb} MB of this function; raise function.memoryMb or lower "
            f"{size_setting} (the output size)")
    wall = needed.wall_seconds(cores)
    if seconds_left is not None and wall > seconds_left:
        more_cores = "raise function.memoryMb (more cores)" if memory_mb is not None else "give the worker more cores"
        raise TooLargeError(
            f"encoding this video at {width}x{height} takes about {wall:,.0f} s on {cores:g} cores, more than "
            f"the {max(0.0, seconds_left):,.0f} s left; {more_cores}, lower {size_setting}, or upload shorter videos")


def check_fits(media: MediaInfo, seconds: float, max_long_side: int, preset: str, deadline: float, *,
               reserve_seconds: float = 0.0) -> None:
    """Refuse encoding ``seconds`` of ``media`` when it cannot fit this process (its memory and
    cores) before ``deadline`` (a ``time.monotonic()`` value), less ``reserve_seconds`` for what
    the invocation does besides: the single pass (the whole input) and a fan-out item alike."""
    check(estimate(media, seconds, max_long_side, preset), memory_mb=memory_limit_mb(),
          seconds_left=deadline - time.monotonic() - reserve_seconds, cores=cores())


def memory_limit_mb() -> int | None:
    """The function's configured memory in Lambda (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``: what
    it may use and is billed by); None elsewhere, where the host's memory is unknown."""
    value = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    return int(value) if value.isdigit() else None


def cores() -> float:
    """The CPUs ffmpeg may use: the cores this process may run on, bounded by its cgroup's CPU
    quota where one is set (Lambda shows every vCPU of the host slot but gives about one per
    1,769 MB of memory; a container may be capped the same way)."""
    try:
        available = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no affinity call
        available = float(os.cpu_count() or 1)
    quota = _cgroup_cpus()
    return max(1.0, min(available, quota)) if quota else available


def _cgroup_cpus() -> float | None:
    """cgroup v2's ``cpu.max`` ("QUOTA PERIOD", or "max PERIOD" without a quota) as CPUs."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None
