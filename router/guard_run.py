"""The guard as it runs: read the window's rows and the stored flags, judge, write, record the verdict.

The judgement is `router.guard`'s; this module is its I/O. It judges the flags as stored in the
SSM parameter (what every router reads), not a shell's ``ROUTER_*`` variables, and writes a
change with the parameter's version guard: a change an operator made meanwhile wins, and the
guard's next run judges again. The verdict, applied or not, is stored beside the flags in a
parameter of its own (`verdict_parameter`), so writing it never makes a new flags version that
every router would reload, and `flags show` displays it. ``dry_run`` reads and judges only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from router.errors import FlagError, UnreadableFlagsError, VersionConflictError
from router.flags import RouterFlags, plain_values, validate_values
from router.guard import BREACH, Verdict, judge
from router.history import rows_since
from router.log import log_event
from router.record import JobTable
from router.report import Prices, Report, build_report
from router.sources.ssm import SSMParameterSource

VERDICT_SUFFIX = "-guard"
DEFAULT_WINDOW_SECONDS = 3600


def verdict_parameter(flags_parameter: str) -> str:
    """Where the guard's last verdict is kept: next to the flags, named after them."""
    return flags_parameter + VERDICT_SUFFIX


def report_since(table: JobTable, window_seconds: int, now: datetime, prices: Prices = Prices(),
                 page_size: int | None = None) -> Report:
    since = now - timedelta(seconds=window_seconds)
    return build_report(rows_since(table, since, page_size=page_size), since=_stamp(since), until=_stamp(now),
                        prices=prices)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class GuardRun:
    verdict: Verdict
    report: Report
    flags_version: int | None
    applied: bool  # the change was written (False: none to make, a dry run, or a conflict)
    note: str  # what happened to the change, for operators

    def to_plain(self, at: str, window_seconds: int, dry_run: bool) -> dict[str, Any]:
        return {**self.verdict.to_plain(), "applied": self.applied, "note": self.note, "at": at,
                "window_seconds": window_seconds, "flags_version": self.flags_version, "dry_run": dry_run}


def stored_flags(source: SSMParameterSource) -> tuple[dict[str, Any], int | None, RouterFlags]:
    document, version = source.read_document() or ({}, None)
    try:
        return document, version, RouterFlags(**validate_values(document))
    except FlagError as error:
        raise UnreadableFlagsError(f"{source.label} version {version} holds a bad value: {error}") from None


def guard(flags_source: SSMParameterSource, verdicts: SSMParameterSource, table: JobTable, *,
          window_seconds: int = DEFAULT_WINDOW_SECONDS, dry_run: bool = False, now: datetime | None = None,
          page_size: int | None = None) -> GuardRun:
    """One run of the guard; raises `FlagSourceError` or `RecordError` when it cannot read."""
    now = now or datetime.now(timezone.utc)
    document, version, flags = stored_flags(flags_source)
    report = report_since(table, window_seconds, now, page_size=page_size)
    verdict = judge(report, flags)
    merged = plain_values(validate_values({**document, **verdict.changes}))
    applied = False
    if not verdict.changes or merged == document:
        note = "no change to make"
    elif dry_run:
        note = f"dry run: would store {plain_values(validate_values(verdict.changes))}"
    else:
        try:
            version = flags_source.write(merged, version)
            applied, note = True, f"stored as {flags_source.label} version {version}"
        except VersionConflictError as error:
            note = f"not stored: {error}"
    run = GuardRun(verdict, report, version, applied, note)
    level = logging.WARNING if verdict.verdict == BREACH else logging.INFO
    log_event(level, "guard", verdict=verdict.verdict, reason=verdict.reason, changes=verdict.changes,
              applied=applied, note=note, dry_run=dry_run)
    if not dry_run:
        _, verdict_version = verdicts.read_text() or (None, None)
        verdicts.write(run.to_plain(_stamp(now), window_seconds, dry_run), verdict_version)
    return run


def last_verdict(verdicts: SSMParameterSource) -> dict[str, Any] | None:
    """The stored verdict, or None when the guard has never run (or its record is unreadable)."""
    try:
        read = verdicts.read_document()
    except UnreadableFlagsError:
        return None
    # Created empty by the Pulumi program (infra/guard.py): no verdict until the guard first runs.
    return None if read is None or "verdict" not in read[0] else read[0]
