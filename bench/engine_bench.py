"""Benchmark the engine against the running backend's method and against a bare transcode.

    python -m bench.engine_bench [--repeat N]

One run, one machine, the same encoder settings everywhere (libx264 veryfast CRF 23, AAC
128k). Working files go to bench/.work/ (git-ignored); the figures replace the ``## Engine``
section of bench/README.md. The running backend runs ffmpeg once per segment with ``-ss``
after ``-i``, so each run decodes the input from its start: that is the cost the single-pass
engine removes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import ffmpeg
from ffmpeg.nodes import OutputStream

from processor import command
from processor.binaries import tool
from processor.engine import EncodeSettings, caption_pictures, cut
from processor.plan import Segment
from processor.probe import MediaInfo, probe
from sandbox.media import make_video

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".work"
README = ROOT / "README.md"
SETTINGS = EncodeSettings()
DURATION = 60.0
SEGMENT_COUNTS = (6, 20)


# Captions in three scripts, in turn: Latin, Chinese (another face, no spaces to wrap at) and
# Arabic (shaped and right to left).
CAPTIONS = ("Part {n} of {count}: the caption of this segment 🎉", "第{n}部分，共{count}部分：这一段的字幕",
            "الجزء {n} من {count}: تعليق هذا المقطع")


def _segments(count: int, *, with_text: bool) -> list[Segment]:
    step = DURATION / count
    return [Segment(i, round(i * step, 3), round((i + 1) * step, 3),
                    CAPTIONS[i % len(CAPTIONS)].format(n=i + 1, count=count) if with_text else None)
            for i in range(count)]


def _ffmpeg(output: OutputStream) -> None:
    argv = output.global_args("-hide_banner", "-nostdin", "-loglevel", "error").compile(
        cmd=tool("ffmpeg"), overwrite_output=True)
    subprocess.run(argv, check=True)


def _encoder() -> dict[str, object]:
    return {"c:v": "libx264", "preset": SETTINGS.preset, "crf": SETTINGS.crf, "c:a": "aac",
            "b:a": command.AUDIO_BITRATE}


def run_engine(source: Path, media: MediaInfo, segments: list[Segment], out: Path, settings: EncodeSettings) -> None:
    files = cut(source, segments, out, settings, media=media)
    assert len(files) == len(segments) or settings.stream_copy, "the engine lost a segment"


def run_per_segment(source: Path, media: MediaInfo, segments: list[Segment], out: Path) -> None:
    """The running backend's method: one ffmpeg per segment, ``-ss`` after ``-i`` (an output
    option), the engine's filters with the segment's text on every frame."""
    out.mkdir(parents=True, exist_ok=True)
    for segment in segments:
        work = out / f"captions_{segment.index:03d}"
        work.mkdir()
        pictures = caption_pictures(media, [Segment(0, 0.0, media.duration, segment.text)], work)
        upload = command.source(source)
        video = command.video_chain(upload["v:0"], media, pictures)
        _ffmpeg(ffmpeg.output(video, upload["a:0"], str(out / command.segment_name(segment.index)),
                              ss=f"{segment.start:.3f}", t=f"{segment.duration:.3f}", movflags="+faststart",
                              **_encoder()))


def run_bare(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    upload = command.source(source)
    _ffmpeg(ffmpeg.output(upload["v:0"], upload["a:0"], str(out / "whole.mp4"), **_encoder()))


def run_file_copy(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "copy.mp4")


def _cpu_seconds() -> float:
    """CPU time of this process and every finished child (ffmpeg, ffprobe)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(action: Callable[[], None], out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds. CPU time barely moves when other work shares the machine; wall
    time is what a job waits."""
    shutil.rmtree(out, ignore_errors=True)
    started, cpu = time.monotonic(), _cpu_seconds()
    action()
    return time.monotonic() - started, _cpu_seconds() - cpu


def _phone_like_input() -> Path:
    """A stream shaped like a phone's: H.264 High with CABAC at 16 Mb/s, a keyframe a second.

    Decoding it costs what decoding an upload costs, which is what the per-segment method
    repeats; the tiny ``ultrafast`` test videos would flatter it.
    """
    source = WORK / "input-1080p30-60s.mp4"
    if not source.exists():
        raw = make_video(WORK / "testsrc-1080p30-60s.mp4", duration=DURATION, width=1920, height=1080, fps=30)
        _ffmpeg(ffmpeg.input(str(raw)).output(
            str(source), **{"c:v": "libx264", "preset": "veryfast", "profile:v": "high", "b:v": "16M",
                            "maxrate": "16M", "bufsize": "32M", "g": 30, "bf": 0, "c:a": "copy"}))
        raw.unlink()
    return source


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    version = subprocess.run([tool("ffmpeg"), "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; {version}"


def _load() -> float:
    """One-minute load average: how much else wanted the CPUs while a case ran."""
    return os.getloadavg()[0]


def measure(repeat: int) -> tuple[dict[str, list[tuple[float, float]]], float]:
    """(wall, CPU) seconds of every run of every case, and the median load average at the
    runs' ends. The cases run interleaved, round after round, so a burst of load elsewhere
    spreads over all of them."""
    WORK.mkdir(exist_ok=True)
    source = _phone_like_input()
    media = probe(source)
    cases: dict[str, Callable[[Path], None]] = {"bare transcode (floor)": lambda out: run_bare(source, out)}
    for count in SEGMENT_COUNTS:
        texts = _segments(count, with_text=True)
        plain = _segments(count, with_text=False)
        cases[f"engine, {count} segments, text"] = \
            lambda out, s=texts: run_engine(source, media, s, out, SETTINGS)
        cases[f"engine, {count} segments, no text"] = \
            lambda out, s=plain: run_engine(source, media, s, out, SETTINGS)
        cases[f"per-segment -ss after -i, {count} segments, text"] = \
            lambda out, s=texts: run_per_segment(source, media, s, out)
        cases[f"engine stream copy, {count} segments"] = \
            lambda out, s=plain: run_engine(source, media, s, out, EncodeSettings(stream_copy=True))
    cases["plain file copy of the input"] = lambda out: run_file_copy(source, out)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    loads = []
    for round_number in range(repeat):
        for i, (name, action) in enumerate(cases.items()):
            wall, cpu = _timed(lambda: action(WORK / f"out-{i}"), WORK / f"out-{i}")
            samples[name].append((wall, cpu))
            loads.append(_load())
            print(f"round {round_number + 1}/{repeat}  wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
                  f"load {loads[-1]:5.2f}  {name}", flush=True)
    return samples, statistics.median(loads)


def _spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def report(samples: dict[str, list[tuple[float, float]]], load: float) -> str:
    medians = {name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
               for name, runs in samples.items()}
    encodes = [runs for name, runs in samples.items() if "copy" not in name]
    floor_wall, floor_cpu = medians["bare transcode (floor)"]
    lines = ["| case | wall s | CPU s | wall vs bare | CPU vs bare | engine faster by (wall / CPU) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, (wall, cpu) in medians.items():
        speedup = ""
        match = re.match(r"per-segment -ss after -i, (\d+) segments", name)
        if match:
            engine_wall, engine_cpu = medians[f"engine, {match.group(1)} segments, text"]
            speedup = f"{wall / engine_wall:.2f}x / {cpu / engine_cpu:.2f}x"
        lines.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {wall / floor_wall:.3f}x | {cpu / floor_cpu:.3f}x "
                     f"| {speedup} |")
    lines += ["", "Targets (wall / CPU):"]
    for count in SEGMENT_COUNTS:
        engine = medians[f"engine, {count} segments, text"]
        lines.append(f"- engine at {count} segments within 1.10x of the bare transcode: "
                     + " / ".join(f"{e / f:.2f}x {'met' if e / f <= 1.10 else 'NOT met'}"
                                  for e, f in zip(engine, (floor_wall, floor_cpu))))
    for count in SEGMENT_COUNTS:
        text, plain = medians[f"engine, {count} segments, text"], medians[f"engine, {count} segments, no text"]
        lines.append(f"- what the captions cost at {count} segments (text / no text): "
                     + " / ".join(f"{t / p:.3f}x" for t, p in zip(text, plain)))
    for count, target in zip(SEGMENT_COUNTS, (1.4, 2.5)):
        engine, per_segment = medians[f"engine, {count} segments, text"], \
            medians[f"per-segment -ss after -i, {count} segments, text"]
        lines.append(f"- at least {target}x faster than per-segment at {count} segments: "
                     + " / ".join(f"{p / e:.2f}x {'met' if p / e >= target else 'NOT met'}"
                                  for p, e in zip(per_segment, engine)))
    copy_wall = medians["plain file copy of the input"][0]
    lines += ["", "Stream copy (wall) against a plain copy of the input "
              f"({copy_wall:.3f} s): " + ", ".join(
                  f"{medians[f'engine stream copy, {n} segments'][0]:.2f} s at {n} segments"
                  for n in SEGMENT_COUNTS) + "."]
    repeat = len(next(iter(samples.values())))
    lines += ["", f"Medians of {repeat} interleaved run(s) per case. Other work shared the machine (median "
              f"one-minute load average {load:.1f} on {os.cpu_count()} CPUs): between runs of one encoding "
              f"case, wall time varied by up to {max(_spread([w for w, _ in r]) for r in encodes):.0%} of "
              f"its median, CPU time by up to {max(_spread([c for _, c in r]) for r in encodes):.0%}."]
    return "\n".join(lines)


def write_readme(table: str, machine: str) -> None:
    section = "\n".join([
        "## Engine",
        "",
        "`python -m bench.engine_bench` (not part of the test suite). Input: a generated 1080p,",
        "30 fps, 60 s video with AAC audio (testsrc2 and a sine tone) encoded like a phone's",
        "upload: H.264 High, CABAC, 16 Mb/s, one keyframe a second. Every method uses libx264",
        "`veryfast` CRF 23 and AAC 128k; the text cases draw one caption per segment, in three",
        "scripts in turn (Latin with an emoji, Chinese, Arabic), and the per-segment method (the",
        "running backend's: one ffmpeg per segment, `-ss` after `-i`) draws it the same way",
        "(drawn once by libass, laid over its frames with `overlay`). Engine times include",
        "checking every output with ffprobe. Wall time is what a job waits; CPU time (all",
        "processes) is the steadier figure on a shared machine.",
        "",
        f"Machine: {machine}.",
        "",
        table,
        "",
    ])
    replace_section("Engine", section)


def replace_section(title: str, section: str) -> None:
    """Put ``section`` in bench/README.md in place of its ``## {title}`` section (or last)."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    README.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--no-readme", action="store_true", help="print only, leave bench/README.md alone")
    args = parser.parse_args()
    machine = _machine()
    table = report(*measure(args.repeat))
    print(f"\n{machine}\n\n{table}")
    if not args.no_readme:
        write_readme(table, machine)
        print(f"\nwritten to {README}")


if __name__ == "__main__":
    main()
