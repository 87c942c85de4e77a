"""``python -m processor run``: the engine on a local file, exactly as Lambda and Celery run it;
``python -m processor failures``: the events Lambda gave up on (`processor.failures`);
``python -m processor sweep``: jobs stuck QUEUED or PROCESSING (`processor.sweep`).

Exit status: 0 done, 1 processing failed, 2 bad input, 130 interrupted (Ctrl-C); each with one
line on stderr, never a traceback. Errors name the command's own flags (`--text #2`, `--crf`),
not the job contract's fields they feed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import NoReturn, TextIO

from processor.contract import TEXT_STRATEGIES, make_job
from processor.engine import EncodeSettings, cut, cut_in_items
from processor.errors import ConfigurationError, InvalidInputError, InvalidJobError, NotAVideoError, ProcessorError
from processor.plan import plan
from processor.probe import probe
from processor.text_model import TextModelSettings, generate_texts
from processor.variations import apply, wants_variations

# Errors the user can fix by changing the command line or the input file.
USER_ERRORS = (InvalidJobError, NotAVideoError, InvalidInputError, ConfigurationError)
# What a shell reports for a command ended by SIGINT (128 + 2).
INTERRUPTED_STATUS = 130
# The contract's fields as the command's flags: the user typed the flags, not the fields.
_FLAG_OF_FIELD = {"job_id": "--job-id", "text_strategy": "--strategy", "text_input.strategy": "--strategy",
                  "text_input": "--text",
                  "text_input.base_text": "--text #1", "text_input.unique_texts": "--text",
                  "text_input.context": "--context", "crf": "--crf", "preset": "--preset", "s3_key": "INPUT",
                  "max_long_side": "--max-long-side"}
_TEXT_FIELD = re.compile(r"text_input\.unique_texts\[(\d+)\]")


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
    run.add_argument("--context", help="base_vary: what the video is for (e.g. sales), for the model's variations")
    run.add_argument("--job-id", default="local", help="seeds random cuts, as the job id does (default: %(default)s)")
    run.add_argument("--preset", help="libx264 preset (default: veryfast)")
    run.add_argument("--crf", type=int, help="libx264 CRF (default: 23)")
    run.add_argument("--stream-copy", action="store_true",
                     help="no re-encoding: cut at keyframes (no text); re-encodes when keyframes are too sparse")
    run.add_argument("--max-long-side", type=int,
                     help="scale larger outputs down to this many pixels on their long side (default: 1920)")
    run.add_argument("--json", action="store_true", help="print the segments as JSON on stdout")
    run.add_argument("--jobs", type=int, metavar="N",
                     help="encode as a fan-out does: each item on its own, N at a time (default: one pass)")
    failures = commands.add_parser("failures", help="list (or settle) the events Lambda gave up on")
    failures.add_argument("--queue-url", required=True, help="the failure queue (`pulumi stack output failureQueueUrl`)")
    failures.add_argument("--table", default=os.environ.get("DYNAMODB_TABLE_NAME"),
                          help="the job table (default: $DYNAMODB_TABLE_NAME)")
    failures.add_argument("--mark-failed", action="store_true",
                          help="mark each unfinished job FAILED and remove its record")
    failures.add_argument("--limit", type=int, default=100, help="records to read at most (default: %(default)s)")
    sweep = commands.add_parser("sweep", help="find jobs stuck QUEUED or PROCESSING; re-dispatch or fail them")
    sweep.add_argument("--older-than", default="15m",
                       help="how long a job must have been stuck: 90s, 15m, 2h, 1d (default: %(default)s)")
    action = sweep.add_mutually_exclusive_group()
    action.add_argument("--redispatch", action="store_true",
                        help="send each stuck job again through the router (needs the router's configuration)")
    action.add_argument("--mark-failed", action="store_true", help="mark each stuck job FAILED with the reason")
    sweep.add_argument("--max-redispatches", type=int, default=2,
                       help="re-dispatches per job before it is failed instead (default: %(default)s)")
    sweep.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    sweep.add_argument("--table", default=os.environ.get("DYNAMODB_TABLE_NAME"),
                       help="the job table (default: $DYNAMODB_TABLE_NAME)")
    return parser


def flag_of(field: str) -> str:
    """The command-line flag behind a job-contract field (`InvalidJobError.field`)."""
    if field.startswith("cutting_options"):
        return "--cut"
    text = _TEXT_FIELD.fullmatch(field)
    if text:
        return f"--text #{int(text.group(1)) + 1}"
    return _FLAG_OF_FIELD.get(field, field)


def _text_input(strategy: str | None, texts: list[str], context: str | None) -> tuple[str | None, dict | None]:
    """The job's text fields; a strategy that would ignore some of the texts given is refused."""
    if not texts:
        if strategy == "base_vary":
            raise UsageError("--strategy base_vary needs one --text: the base text the variations are made from")
        if strategy is not None:
            raise UsageError(f"--strategy {strategy} needs --text (without it no text is burned in)")
        if context is not None:
            raise UsageError("--context needs --strategy base_vary and one --text to vary")
        return strategy, None
    if strategy == "one_for_all" and len(texts) > 1:
        raise UsageError(f"--strategy one_for_all puts one text on every segment, got {len(texts)} --text; "
                         "give one, or use --strategy unique_for_all for one per segment")
    if strategy == "base_vary" and len(texts) > 1:
        raise UsageError(f"--strategy base_vary takes exactly one --text (the base text), got {len(texts)}")
    strategy = strategy or ("one_for_all" if len(texts) == 1 else "unique_for_all")
    return strategy, {"strategy": strategy, "base_text": texts[0], "unique_texts": texts, "context": context}


def _check_input(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; give a video file")
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    try:
        path.open("rb").close()
    except OSError as error:
        raise UsageError(f"{path}: cannot read it ({error.strerror})") from None


def _check_output_dir(path: Path) -> None:
    """An existing --output-dir must be a folder this user can write, found before any encoding."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output-dir {path}: is not a directory")
    if path.is_dir():
        try:
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as error:
            raise UsageError(f"--output-dir {path}: cannot write there ({error.strerror})") from None


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
    _check_input(args.input)
    _check_output_dir(args.output_dir)
    _require_utf8("INPUT", args.input.absolute())
    _require_utf8("--output-dir", args.output_dir.absolute())
    overrides = {k: v for k, v in (("preset", args.preset), ("crf", args.crf), ("max_long_side", args.max_long_side))
                 if v is not None}
    if args.stream_copy:
        overrides["stream_copy"] = True
    settings = dataclasses.replace(EncodeSettings.from_env(), **overrides)
    strategy, text_input = _text_input(args.strategy, args.text, args.context)
    if settings.stream_copy and text_input:
        raise UsageError("--stream-copy cannot burn in --text (text needs re-encoding)")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.jobs is not None and settings.stream_copy:
        raise UsageError("--jobs cannot be used with --stream-copy (items are re-encoded)")
    job = make_job(job_id=args.job_id, s3_key=args.input.name, cutting_options=parse_cut(args.cut),
                   text_strategy=strategy, text_input=text_input)
    media = probe(args.input)
    segments = plan(job, media.duration)
    variations = None
    if wants_variations(job, len(segments)):
        # The same step as in Lambda and Celery, configured by the same variables; no row to store on.
        variations = generate_texts(job.text_input.base_text, len(segments), job.text_input.context,
                                    TextModelSettings.from_env())
        segments = apply(segments, variations)
        if variations.reason:
            err.write(f"python -m processor: text variations: {variations.source}: {variations.reason}\n")
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--output-dir {args.output_dir}: {error.strerror}") from None
    bar = _ProgressBar(err)
    try:
        if args.jobs is None:
            files = cut(args.input, segments, args.output_dir, settings, media=media, on_progress=bar,
                        on_notice=lambda notice: err.write(f"python -m processor: note: {notice}\n"))
        else:
            files = cut_in_items(args.input, segments, args.output_dir, settings, jobs=args.jobs, media=media,
                                 on_progress=bar)
    finally:
        bar.close()
    if args.json:
        report = {"segments": [{"path": str(f.path), "start": f.start, "end": f.end, "duration": f.duration,
                                "text": f.text} for f in files]}
        if variations is not None:
            report["text_variations"] = {"texts": list(variations.texts), "source": variations.source,
                                         "reason": variations.reason}
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        for f in files:
            label = f" {f.text!r}" if f.text else ""
            out.write(f"{f.path}  {f.start:8.3f}s -> {f.end:8.3f}s  ({f.duration:.3f}s){label}\n")
    return 0


def settle_failures(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from processor.failures import settle
    from processor.jobs import JobStore

    if not args.table:
        raise UsageError("--table is required when DYNAMODB_TABLE_NAME is not set")
    results = settle(args.queue_url, JobStore(args.table), mark_failed=args.mark_failed, limit=args.limit)
    for delivery, action in results:
        out.write(f"{delivery.job_id or '-':36}  {delivery.condition:16} {delivery.attempts:>2} attempts  {action}\n")
    out.write(f"{len(results)} record(s)\n")
    return 0


def _router_dispatch():
    try:
        import router
    except ImportError as error:
        raise UsageError(f"--redispatch sends jobs through the router, which cannot be imported here ({error}); "
                         "install it with pip install '.[router]'") from None
    return router.dispatch


def sweep_jobs(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from processor.jobs import JobStore
    from processor.sweep import SweepError, parse_duration, sweep

    if not args.table:
        raise UsageError("--table is required when DYNAMODB_TABLE_NAME is not set")
    if args.max_redispatches < 0:
        raise UsageError(f"--max-redispatches must be 0 or more, got {args.max_redispatches}")
    try:
        older_than = parse_duration(args.older_than)
    except SweepError as error:
        raise UsageError(f"--older-than: {error}") from None
    mode = "redispatch" if args.redispatch else "mark_failed" if args.mark_failed else "report"
    results = sweep(JobStore(args.table), older_than_seconds=older_than, mode=mode, dry_run=args.dry_run,
                    max_redispatches=args.max_redispatches,
                    redispatch=_router_dispatch() if args.redispatch else None)
    for result in results:
        out.write(f"{result.job.job_id:36}  {result.job.status:10}  {result.action}\n")
    out.write(f"{len(results)} stuck job(s) older than {args.older_than}\n")
    return 0


COMMANDS = {"run": run, "failures": settle_failures, "sweep": sweep_jobs}


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, out, err)
    except UsageError as error:
        err.write(f"python -m processor: error: {error}\n")
        return 2
    except InvalidJobError as error:
        err.write(f"python -m processor: error: {flag_of(error.field)}: {error.problem}\n")
        return 2
    except USER_ERRORS as error:
        err.write(f"python -m processor: error: {error}\n")
        return 2
    except ProcessorError as error:
        err.write(f"python -m processor: failed: {error}\n")
        return 1
    except OSError as error:
        # The disk filling up or a folder changing under the command: its own words, one line.
        where = f"{error.filename}: " if error.filename else ""
        err.write(f"python -m processor: failed: {where}{error.strerror or error}\n")
        return 1
    except KeyboardInterrupt:
        # The engine has already removed its partial segments on the way out.
        err.write("python -m processor: interrupted\n")
        return INTERRUPTED_STATUS
