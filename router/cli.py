"""``python -m router``: see the flags, change them safely, ask what they would do, see how the
backends compare (``report``) and let the guard judge (``guard``).

Exit status: 0 done (a change that changes nothing writes nothing); 1 the flag parameter or the
job table could not be read or written, or another operator changed the flags meanwhile; 2 bad
input, reported as one line on stderr. A parameter holding something unreadable (a hand edit gone wrong) is repaired
with ``flags reset`` or ``flags set --force``.

The flags shown are this shell's: ``ROUTER_*`` variables set here count, those set on the
backend's service do not (they override the parameter there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from datetime import datetime, timezone
from typing import Any, Sequence

from processor.sweep import SweepError, parse_duration

from router.errors import FlagError, FlagSourceError, RecordError, UnreadableFlagsError, VersionConflictError
from router.explain import explain
from router.flags import (FLAG_HELP, FLAG_NAMES, PHASE_HELP, PHASES, RouterFlags, env_name, plain_values,
                          validate_values)
from router.guard import compare_report
from router.guard_run import DEFAULT_WINDOW_SECONDS, guard, last_verdict, report_since, verdict_parameter
from router.record import JobTable
from router.report import Prices, table
from router.settings import FLAGS_PARAMETER, TABLE_NAME, Settings
from router.simulate import csv_jobs, synthetic_jobs, tally
from router.sizes import format_size, parse_size
from router.sources import EnvironmentSource, FlagSource, SSMParameterSource, StaticSource
from router.sources.ssm import OPERATOR_SSM_CONFIG

PROG = "python -m router"
MAX_SIMULATED_JOBS = 10_000_000
_REPAIR = f"`{PROG} flags reset` (every flag back to its default) or `{PROG} flags set --force KEY=VALUE...`"


class UsageError(Exception):
    """Bad input that argparse cannot see (a missing parameter name, an unreadable file)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, no usage dump: the message names what is wrong.
        self.exit(2, f"{self.prog}: error: {message}\n")


def _pair(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return name.strip(), value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_SIMULATED_JOBS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_SIMULATED_JOBS}, got {text!r}")
    return int(text)


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except SweepError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a price in USD from 0 to 1, got {text!r}")
    return value


def _show_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, frozenset):
        return ",".join(sorted(value)) or "(none)"
    return str(value)


def _sources(args: argparse.Namespace, proposed: Sequence[tuple[str, str]] = ()) -> list[FlagSource]:
    sources: list[FlagSource] = ([SSMParameterSource(args.parameter, config=OPERATOR_SSM_CONFIG)]
                                 if args.parameter else [])
    sources.append(EnvironmentSource())
    if proposed:
        sources.append(StaticSource(dict(proposed), label="proposed"))
    return sources


def _load(sources: list[FlagSource]) -> tuple[RouterFlags, dict[str, str]]:
    """Read every source now: unlike a request, a command waits for SSM and reports its failure."""
    snapshots = []
    for source in sources:
        try:
            snapshot = source.fetch()
        except FlagError as error:
            raise UsageError(f"{source.label} holds a bad value: {error}") from None
        if snapshot is not None:
            snapshots.append(snapshot)
    return RouterFlags.layered(snapshots)


def _parameter(args: argparse.Namespace) -> str:
    if not args.parameter:
        raise UsageError(f"no flags parameter: set {FLAGS_PARAMETER} or pass --parameter")
    return args.parameter


def _flags_show(args: argparse.Namespace) -> None:
    # Without the parameter only this shell's variables and the defaults would show: not live flags.
    _parameter(args)
    environment = EnvironmentSource()
    flags, origins = _load(_sources(args))
    origins = {name: f"env {env_name(name)}" if origin == "env" else origin for name, origin in origins.items()}
    try:
        verdict: dict[str, Any] | None = last_verdict(
            SSMParameterSource(verdict_parameter(args.parameter), config=OPERATOR_SSM_CONFIG))
        unread = None
    except FlagSourceError as error:
        # The flags were read: a verdict this operator may not read must not hide them.
        verdict, unread = None, str(error)
    if args.json:
        print(json.dumps({"version": flags.version, "flags": flags.to_plain(), "sources": origins,
                          "guard": verdict}, indent=2))
    else:
        print(f"flags version {flags.version}")
        for name in FLAG_NAMES:
            print(f"  {name:<26}{_show_value(getattr(flags, name)):<24}{origins[name]}")
        if unread is not None:
            print(f"guard: the last verdict could not be read: {unread}")
        elif verdict is None:
            print("guard: no verdict yet (`python -m router guard` or its schedule writes one)")
        else:
            print(f"guard: {verdict.get('verdict')} at {verdict.get('at')}: {verdict.get('reason')} "
                  f"({verdict.get('note')})")
    for name in environment.unknown_variables():
        print(f"{PROG}: warning: {name} is not a flag variable and is ignored", file=sys.stderr)


def _parsed(text: str) -> dict[str, Any] | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _write(args: argparse.Namespace, updates: dict[str, Any], *, replace: bool = False) -> None:
    """Store ``updates`` over the stored flags; an empty value removes a flag (back to its default).

    ``replace``: store exactly ``updates``, whatever the parameter holds, even unreadable text.
    A write that would change nothing is not made (no new version, nothing for caches to reload).
    """
    source = SSMParameterSource(_parameter(args), config=OPERATOR_SSM_CONFIG)
    removed = {name for name, value in updates.items() if value == ""}
    changes = plain_values(validate_values({name: value for name, value in updates.items() if name not in removed}))
    document: dict[str, Any] | None
    if replace:
        current = source.read_text()
        version = None if current is None else current[1]
        document = {} if current is None else _parsed(current[0])
        merged = changes
    else:
        try:
            document, version = source.read_document() or ({}, None)
        except UnreadableFlagsError as error:
            raise UnreadableFlagsError(f"{error}; replace it with {_REPAIR}") from None
        try:
            merged = plain_values(validate_values(
                {**{name: value for name, value in document.items() if name not in removed}, **changes}))
        except FlagError as error:
            if error.flag in changes:
                raise
            raise UnreadableFlagsError(f"{source.label} version {version} holds a bad value: {error}; set that flag, "
                                       f"remove it with `{error.flag}=`, or replace everything with {_REPAIR}") from None
    # The operator's --expect-version is the version their decision was based on.
    expected = version if args.expect_version is None else args.expect_version
    if merged == document and expected == version:
        print(f"{source.label} version {version}: no change, nothing written")
        return
    new_version = source.write(merged, expected)
    print(f"{source.label} version {new_version}")
    if document is None:
        print(f"  the unreadable version {version} replaced by {json.dumps(merged, sort_keys=True)}")
        return
    for name in sorted(set(document) | set(merged)):
        before, after = document.get(name), merged.get(name)
        if before != after:
            print(f"  {name}: {'(default)' if before is None else json.dumps(before)} -> "
                  f"{'(default)' if after is None else json.dumps(after)}")


def _flags_set(args: argparse.Namespace) -> None:
    _write(args, dict(args.pairs), replace=args.force)


def _flags_reset(args: argparse.Namespace) -> None:
    _write(args, {}, replace=True)


def _phase(args: argparse.Namespace) -> None:
    updates: dict[str, Any] = {"phase": args.name}
    if args.percent is not None:
        if args.name != "canary":
            raise UsageError(f"--percent applies to the canary phase only, not {args.name}")
        updates["lambda_percent"] = args.percent
    _write(args, updates)


def _explain(args: argparse.Namespace) -> None:
    flags, _ = _load(_sources(args, args.set or ()))
    request = {"job_id": args.job_id, "user_id": args.user_id, "file_size": args.file_size}
    print("\n".join(explain(request, flags)))


def _simulate(args: argparse.Namespace) -> None:
    if args.jobs:
        try:
            jobs = csv_jobs(args.jobs)
        except OSError as error:
            raise UsageError(f"cannot read {args.jobs}: {error.strerror}") from None
        except ValueError as error:
            raise UsageError(str(error)) from None
        described = f"{len(jobs)} jobs from {args.jobs}"
    else:
        jobs = synthetic_jobs(args.count, args.file_size, args.seed)
        described = f"{args.count} synthetic jobs (one per user, {format_size(args.file_size)} each)"
    flags, _ = _load(_sources(args, args.set or ()))
    print(f"{described}, flags version {flags.version}")
    print("\n".join(tally(jobs, flags).lines()))


def _table(args: argparse.Namespace) -> JobTable:
    settings = Settings.from_environment()
    return JobTable(name=args.table or settings.table_name, region=settings.region)


def _report(args: argparse.Namespace) -> None:
    # The comparison uses the thresholds the guard would use; without a parameter, the defaults.
    flags, _ = _load(_sources(args)) if args.parameter else (RouterFlags(), {})
    report = report_since(_table(args), args.since, datetime.now(timezone.utc),
                          Prices(gb_second=args.gb_second_price))
    comparison = compare_report(report, flags)
    if args.json:
        print(json.dumps({**report.to_plain(), "comparison": {
            "enough_jobs": comparison.enough_jobs, "breaches": list(comparison.breaches),
            "summary": comparison.summary}}, indent=2))
        return
    print("\n".join(table(report)))
    print(comparison.summary)


def _guard(args: argparse.Namespace) -> None:
    parameter = _parameter(args)
    run = guard(SSMParameterSource(parameter, config=OPERATOR_SSM_CONFIG),
                SSMParameterSource(verdict_parameter(parameter), config=OPERATOR_SSM_CONFIG), _table(args),
                window_seconds=args.window, dry_run=args.dry_run)
    print(f"guard: {run.verdict.verdict}: {run.verdict.reason}")
    print(f"  {run.note}" + ("" if args.dry_run else f"; verdict stored in {verdict_parameter(parameter)}"))


def _listing(title: str, meanings: dict[str, str]) -> str:
    width = max(map(len, meanings)) + 4
    return f"{title}:\n" + "\n".join(
        textwrap.fill(meaning, 100, initial_indent=f"  {name:<{width - 2}}", subsequent_indent=" " * width)
        for name, meaning in meanings.items())


def _parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Show and change the migration router's flags.")
    parser.add_argument("--parameter", default=os.environ.get(FLAGS_PARAMETER),
                        help=f"the SSM parameter holding the flags (default: ${FLAGS_PARAMETER})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    flags = commands.add_parser("flags", help="show, set or reset flags")
    flag_commands = flags.add_subparsers(dest="flags_command", required=True, metavar="ACTION")
    show = flag_commands.add_parser("show", help="the effective flags and where each value came from")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=_flags_show)
    set_ = flag_commands.add_parser(
        "set", help="validate and store flags (all or nothing); KEY= removes one",
        description="Validate the change against the stored flags, then store it (all or nothing). "
                    "KEY= (empty) removes a flag, back to its default. A change that changes nothing "
                    "writes nothing.",
        epilog=_listing("flags", FLAG_HELP), formatter_class=argparse.RawDescriptionHelpFormatter)
    set_.add_argument("pairs", nargs="+", type=_pair, metavar="KEY=VALUE")
    set_.add_argument("--force", action="store_true",
                      help="store exactly these flags, replacing whatever the parameter holds (for a parameter "
                           "holding invalid JSON or a bad value)")
    reset = flag_commands.add_parser(
        "reset", help="replace the stored flags by none: every flag back to its default (everything on Celery)",
        description="Replace whatever the parameter holds, even unreadable text, by {}: every flag back to its "
                    "default, which sends every job to Celery.")

    phase = commands.add_parser(
        "phase", help="move to a phase (celery, canary, lambda, lambda_only)",
        description="Move to a phase: shorthand for `flags set phase=NAME [lambda_percent=P]`.",
        epilog=_listing("phases", PHASE_HELP), formatter_class=argparse.RawDescriptionHelpFormatter)
    phase.add_argument("name", choices=PHASES, metavar="NAME", help=f"one of {', '.join(PHASES)}")
    phase.add_argument("--percent", help="lambda_percent for the canary phase (0 to 100, steps of 0.01)")
    for writer, run in ((set_, _flags_set), (reset, _flags_reset), (phase, _phase)):
        writer.add_argument("--expect-version", type=int,
                            help="refuse to write unless the parameter is still at this version (from flags show)")
        writer.set_defaults(run=run)

    explain_ = commands.add_parser("explain", help="which backend a job goes to, and why")
    explain_.add_argument("--job-id", required=True)
    explain_.add_argument("--user-id")
    explain_.add_argument("--file-size", type=_size, help="bytes, or a size such as 120MB or 1.5GB")
    explain_.set_defaults(run=_explain)

    simulate = commands.add_parser("simulate", help="the share of jobs per backend")
    jobs = simulate.add_mutually_exclusive_group(required=True)
    jobs.add_argument("--count", type=_count, help="simulate this many new jobs, one per user")
    jobs.add_argument("--jobs", metavar="FILE.csv", help="jobs from a CSV: job_id, user_id, file_size")
    simulate.add_argument("--file-size", type=_size, default=parse_size("10MB"),
                          help="size of each simulated job (default 10MB)")
    simulate.add_argument("--seed", type=int, default=0, help="seed of the simulated ids")
    simulate.set_defaults(run=_simulate)

    report = commands.add_parser("report", help="how the backends compare: jobs, failures, timings, cost",
                                 description="Per backend, from the job rows of the window (a paged Scan of the "
                                             "whole table; see docs/router.md for its cost).")
    report.add_argument("--since", type=_duration, default=_duration("24h"), metavar="DURATION",
                        help="the window: rows created this long ago or later, such as 90m, 24h, 7d (default 24h)")
    report.add_argument("--json", action="store_true", help="print JSON")
    report.add_argument("--gb-second-price", type=_price, default=Prices().gb_second, metavar="USD",
                        help=f"Lambda's price per GB-second in your region (default {Prices().gb_second}, "
                             "us-east-1 x86_64)")
    report.set_defaults(run=_report)

    guard_ = commands.add_parser(
        "guard", help="judge Lambda against Celery and trip the kill switch on a regression",
        description="Compare the backends over the window with the thresholds in the flags (guard_*); on a "
                    "breach set kill_switch (or lower lambda_percent: guard_action), with auto_advance raise "
                    "lambda_percent one step after a healthy window. The verdict is stored beside the flags.")
    guard_.add_argument("--window", type=_duration, default=DEFAULT_WINDOW_SECONDS, metavar="DURATION",
                        help="the window judged, such as 30m or 2h (default 1h)")
    guard_.add_argument("--dry-run", action="store_true", help="judge and print only: write no flag and no verdict")
    guard_.set_defaults(run=_guard)
    for command in (report, guard_):
        command.add_argument("--table", help=f"the job table (default: ${TABLE_NAME}, else the backend's default)")

    for command in (explain_, simulate):
        command.add_argument("--set", action="append", type=_pair, metavar="KEY=VALUE",
                             help="a proposed flag value over the current ones (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse's own errors (already printed) and --help
        return int(exit_.code or 0)
    try:
        args.run(args)
    except (UsageError, FlagError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except RecordError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except VersionConflictError as error:
        print(f"{PROG}: conflict: {error}", file=sys.stderr)
        return 1
    except FlagSourceError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    return 0
