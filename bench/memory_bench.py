"""Peak memory and CPU time of one encode by input size, at full size and with the long side capped.

    python -m bench.memory_bench [--no-readme]

Each case runs `processor.engine.cut` (one caption on every frame, veryfast/23) in a fresh
Python process and reads the peak resident size of its largest child (the encoding ffmpeg)
from ``getrusage(RUSAGE_CHILDREN)``, so no case inherits another's peak. The figures replace
the ``## Memory`` section of bench/README.md; `processor.limits` is calibrated from them, and
the last columns show what its estimate says for each case.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.engine_bench import WORK, _load, _machine, replace_section
from processor import limits
from processor.command import MAX_LONG_SIDE
from processor.probe import probe
from sandbox.media import make_video

# (label, width, height, seconds): seconds kept short, since peak memory does not grow with
# the duration and CPU time is reported per second of video.
INPUTS = (("1080p", 1920, 1080, 10.0), ("4K", 3840, 2160, 4.0), ("8K", 7680, 4320, 2.0))
FULL_SIZE = 7680

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from processor.engine import EncodeSettings, cut
from processor.plan import Segment
source, out, long_side, duration = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
segments = [Segment(0, 0.0, duration / 2, "Part 1: the caption"), Segment(1, duration / 2, duration, "Part 2")]
started = time.monotonic()
cut(source, segments, out, EncodeSettings(max_long_side=long_side))
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": time.monotonic() - started, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024}))
"""


def _input(label: str, width: int, height: int, seconds: float) -> Path:
    path = WORK / f"memory-{label}.mp4"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        make_video(path, duration=seconds, width=width, height=height)
    return path


def measure() -> list[dict]:
    rows = []
    for label, width, height, seconds in INPUTS:
        source = _input(label, width, height, seconds)
        media = probe(source)
        for long_side in (FULL_SIZE, MAX_LONG_SIDE):
            out = WORK / f"memory-out-{label}-{long_side}"
            result = subprocess.run([sys.executable, "-c", _CHILD, str(source), str(out), str(long_side),
                                     str(media.duration)], capture_output=True, text=True, check=True)
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            estimate = limits.estimate(media, media.duration, long_side)
            rows.append({"input": label, "long_side": long_side, "seconds": media.duration, "load": _load(), **figures,
                         "estimated_mb": estimate.peak_mb, "estimated_cpu": estimate.cpu_seconds})
            print(rows[-1], flush=True)
    return rows


def report(rows: list[dict]) -> str:
    lines = ["| input | output long side | peak RSS | CPU s per s of video | wall s per s | load average | estimate: peak | estimate: CPU s per s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        size = "full" if row["long_side"] == FULL_SIZE else str(row["long_side"])
        lines.append(f"| {row['input']} | {size} | {row['peak_mb']:,.0f} MB | {row['cpu'] / row['seconds']:.2f} "
                     f"| {row['wall'] / row['seconds']:.2f} | {row['load']:.1f} | {row['estimated_mb']:,.0f} MB "
                     f"| {row['estimated_cpu'] / row['seconds']:.2f} |")
    return "\n".join(lines)


def write_readme(table: str, machine: str) -> None:
    section = "\n".join([
        "## Memory",
        "",
        "`python -m bench.memory_bench`. One encode (`processor.engine.cut`, veryfast/23, a caption",
        "on every frame) of a generated 30 fps input with audio, in a fresh process per case; peak",
        "RSS is the encoding ffmpeg's. \"full\" keeps the input's size; 1920 is the default cap",
        "(`VIDEO_MAX_LONG_SIDE`). The estimate columns are `processor.limits.estimate` for the",
        "same case: the job is refused before encoding when it exceeds the function's memory or",
        "time left. Peak RSS and CPU time hardly move with other load on the machine; wall time does.",
        "Peak RSS varies by about 25 MB between runs of the same case (312 MB at 1080p in an",
        "earlier run); `processor.limits` keeps its constants below the lowest seen.",
        "",
        f"Machine: {machine}.",
        "",
        table,
        "",
    ])
    replace_section("Memory", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-readme", action="store_true", help="print only, leave bench/README.md alone")
    args = parser.parse_args()
    machine = _machine()
    table = report(measure())
    print(f"\n{machine}\n\n{table}")
    if not args.no_readme:
        write_readme(table, machine)


if __name__ == "__main__":
    main()
