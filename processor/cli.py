"""``python -m processor run``: the engine on a local file, exactly as Lambda and Celery run it;
``python -m processor failures``: the events Lambda gave up on (`processor.failures`).

Exit status: 0 done, 1 processing failed, 2 bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import NoReturn, TextIO

from processor.contract import TEXT_STRATEGIES, make_job
from processor.engine import EncodeSettings, cut
from processor.errors import ConfigurationError, InvalidJobError, NotAVideoError, ProcessorError
from processor.plan import plan
from processor.probe import probe

# Errors the user can fix by changing the command line or the input file.
USER_ERRORS = (InvalidJobError, NotAVideoError, ConfigurationError)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse_cut(value: str) -> dict:
    kind, _, rest = value.partition(":")
    try:
        numbers = [float(part) for part in rest.split(":")] if rest else []
    except ValueError:
        numbers = None
    if kind == "fixed" and numbers and len(numbers) == 1:
        return {"type": "fixed", "duration_seconds": numbers[0]}
    if kind == "random" and numbers and len(numbers) == 2:
        return {"type": "random", "min_duration": numbers[0], "max_duration": numbers[1]}
    raise UsageError(f"--cut {value!r}: expected fixed:SECONDS or random:MIN:MAX")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m processor", description="Cut a video into segments, optionally with text.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="process a local video file")
    run.add_argument("input", type=Path, help="the video file")
    run.add_argument("--output-dir", type=Path, required=True, help="where segment_000.mp4... are written")
    run.add_argument("--cut", default="fixed:30", help="fixed:SECONDS or random:MIN:MAX (default: %(default)s)")
    run.add_argument("--strategy", choices=TEXT_STRATEGIES,
                     help="text strategy (default: one_for_all for one --text, unique_for_all for several)")
    run.add_argument("--text", action="append", default=[], help="text to burn in; repeat for one per segment")
    run.add_argument("--job-id", default="local", help="seeds random cuts, as the job id does (default: %(default)s)")
    run.add_argument("--preset", help="libx264 preset (default: veryfast)")
    run.add_argument("--crf", type=int, help="libx264 CRF (default: 23)")
    run.add_argument("--stream-copy", action="store_true", help="no re-encoding: cut at keyframes (no text)")
    run.add_argument("--json", action="store_true", help="print the segments as JSON on stdout")
    failures = commands.add_parser("failures", help="list (or settle) the events Lambda gave up on")
    failures.add_argument("--queue-url", required=True, help="the failure queue (`pulumi stack output failureQueueUrl`)")
    failures.add_argument("--table", default=os.environ.get("DYNAMODB_TABLE_NAME"),
                          help="the job table (default: $DYNAMODB_TABLE_NAME)")
    failures.add_argument("--mark-failed", action="store_true",
                          help="mark each unfinished job FAILED and remove its record")
    failures.add_argument("--limit", type=int, default=100, help="records to read at most (default: %(default)s)")
    return parser


def _text_input(strategy: str | None, texts: list[str]) -> tuple[str | None, dict | None]:
    if not texts:
        return strategy, None
    strategy = strategy or ("one_for_all" if len(texts) == 1 else "unique_for_all")
    return strategy, {"strategy": strategy, "base_text": texts[0], "unique_texts": texts}


class _ProgressBar:
    """A one-line bar on a terminal; silent when stderr is a pipe or a log file."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()

    def __call__(self, fraction: float) -> None:
        if self.enabled:
            filled = int(fraction * 30)
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}%")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def _require_utf8(name: str, path: Path) -> None:
    """ffmpeg-python, which builds the ffmpeg command, hashes every part of it as UTF-8: a
    file name with other bytes (which Python carries as surrogates) cannot go through it."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{name} {os.fsencode(path)!r}: the path is not valid UTF-8, which ffmpeg-python "
                         "needs; rename it") from None


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not args.input.is_file():
        raise UsageError(f"{args.input}: no such file")
    _require_utf8("INPUT", args.input.absolute())
    _require_utf8("--output-dir", args.output_dir.absolute())
    overrides = {k: v for k, v in (("preset", args.preset), ("crf", args.crf)) if v is not None}
    if args.stream_copy:
        overrides["stream_copy"] = True
    settings = dataclasses.replace(EncodeSettings.from_env(), **overrides)
    strategy, text_input = _text_input(args.strategy, args.text)
    if settings.stream_copy and text_input:
        raise UsageError("--stream-copy cannot burn in --text (text needs re-encoding)")
    job = make_job(job_id=args.job_id, s3_key=args.input.name, cutting_options=parse_cut(args.cut),
                   text_strategy=strategy, text_input=text_input)
    media = probe(args.input)
    segments = plan(job, media.duration)
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--output-dir {args.output_dir}: {error.strerror}") from None
    bar = _ProgressBar(err)
    try:
        files = cut(args.input, segments, args.output_dir, settings, media=media, on_progress=bar)
    finally:
        bar.close()
    if args.json:
        json.dump({"segments": [{"path": str(f.path), "start": f.start, "end": f.end, "duration": f.duration,
                                 "text": f.text} for f in files]}, out, indent=2)
        out.write("\n")
    else:
        for f in files:
            label = f" {f.text!r}" if f.text else ""
            out.write(f"{f.path}  {f.start:8.3f}s -> {f.end:8.3f}s  ({f.duration:.3f}s){label}\n")
    return 0


def settle_failures(args: argparse.Namespace, out: TextIO) -> int:
    from processor.failures import settle
    from processor.jobs import JobStore

    if not args.table:
        raise UsageError("--table is required when DYNAMODB_TABLE_NAME is not set")
    results = settle(args.queue_url, JobStore(args.table), mark_failed=args.mark_failed, limit=args.limit)
    for delivery, action in results:
        out.write(f"{delivery.job_id or '-':36}  {delivery.condition:16} {delivery.attempts:>2} attempts  {action}\n")
    out.write(f"{len(results)} record(s)\n")
    return 0


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        args = build_parser().parse_args(argv)
        return settle_failures(args, out) if args.command == "failures" else run(args, out, err)
    except UsageError as error:
        err.write(f"python -m processor: error: {error}\n")
        return 2
    except InvalidJobError as error:
        field = "--cut" if error.field.startswith("cutting_options") else error.field
        err.write(f"python -m processor: error: {field}: {error.problem}\n")
        return 2
    except USER_ERRORS as error:
        err.write(f"python -m processor: error: {error}\n")
        return 2
    except ProcessorError as error:
        err.write(f"python -m processor: failed: {error}\n")
        return 1
