"""Stuck jobs: rows that nothing will finish on its own, found and re-dispatched or failed.

Causes outside the processor can strand a row: a broker message lost, a Lambda event dropped
after its maximum age, the backend dying between writing the row and dispatching it. Such a
row says ``QUEUED``, or ``PROCESSING`` under a lease nobody renews, for ever. The sweep finds
the rows in one of those states whose ``updated_at`` is older than a threshold, and either
re-dispatches each (counted on the row in ``sweep_redispatches``, at most a set number of
times, then failed) or fails it with the reason.

Finding them: the table has no index on ``status`` and the program never changes the adopted
table, so the sweep pages through a Scan with a filter and a small projection. DynamoDB bills
a Scan by the size of the items it reads, not of what it returns (docs/deploying.md gives the
cost per 100,000 rows).

Re-dispatching needs the job's request (cut, texts), which the backend never writes on the row:
the router stores the Lambda event it sent in ``dispatch_event``. A row without one (dispatched
before the router stored it, or never dispatched at all) cannot be re-dispatched faithfully and
is failed instead. Where the event goes is the caller's choice (`Redispatch`): the router, on
the command line next to the backend; the function itself, from its scheduled sweep in Lambda,
where neither the router nor a broker exists.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from processor.aws_errors import aws_call
from processor.contract import parse_utc_timestamp
from processor.jobs import PROCESSING, QUEUED, UNHELD, JobStore
from processor.logs import log

ERROR_TYPE = "stuck"
MODES = ("report", "redispatch", "mark_failed")
DEFAULT_OLDER_THAN_SECONDS = 15 * 60
DEFAULT_MAX_REDISPATCHES = 2
# Only what deciding needs; the Scan is billed for whole items either way, but pages stay small.
_PROJECTION = "video_id, #status, updated_at, lease_expires_at"
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Sends one job's Lambda event (as the router stored it) to a backend again; raises when it could not.
Redispatch = Callable[[dict[str, Any]], None]


class SweepError(ValueError):
    """A sweep request that makes no sense (an unknown mode, a threshold that is not a duration)."""


def parse_duration(value: str) -> int:
    """``90s``, ``15m``, ``2h``, ``1d`` as seconds."""
    match = _DURATION.fullmatch(value.strip())
    if not match or int(match.group(1)) == 0:
        raise SweepError(f"{value!r} is not a duration such as 90s, 15m, 2h or 1d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _timestamp(moment: datetime) -> str:
    # The row's own format (processor.contract.utc_timestamp), so the comparison is a string one.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class StuckJob:
    job_id: str
    status: str
    updated_at: str

    def reason(self, now: datetime) -> str:
        then = parse_utc_timestamp(self.updated_at)
        idle = f"since {self.updated_at}" if then is None else f"{int((now - then).total_seconds() // 60)} min"
        if self.status == QUEUED:
            return f"stuck QUEUED for {idle}: no worker picked the job up"
        return f"stuck PROCESSING for {idle} under a lapsed lease: its worker stopped"


@dataclass(frozen=True)
class SweepResult:
    job: StuckJob
    action: str


def find_stuck(store: JobStore, older_than_seconds: int, *, now: datetime,
               page_size: int | None = None) -> Iterator[StuckJob]:
    """Rows QUEUED, or PROCESSING under a lapsed lease, not updated for ``older_than_seconds``."""
    scan: dict[str, Any] = {
        "ProjectionExpression": _PROJECTION,
        "FilterExpression": f"({UNHELD}) AND updated_at < :stale_before",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": {":queued": QUEUED, ":processing": PROCESSING,
                                      ":now_epoch": int(now.timestamp()),
                                      ":stale_before": _timestamp(now - timedelta(seconds=older_than_seconds))},
        "ConsistentRead": False,
    }
    if page_size:
        scan["Limit"] = page_size
    while True:
        with aws_call("DynamoDB Scan of the job table"):
            page = store.table.scan(**scan)
        for item in page.get("Items", []):
            yield StuckJob(item["video_id"], item["status"], item["updated_at"])
        if "LastEvaluatedKey" not in page:
            return
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _stored_event(row: dict[str, Any]) -> dict[str, Any] | None:
    try:
        event = json.loads(row.get("dispatch_event") or "null")
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("job_id") == row.get("video_id") else None


def sweep(store: JobStore, *, older_than_seconds: int = DEFAULT_OLDER_THAN_SECONDS, mode: str = "report",
          dry_run: bool = False, max_redispatches: int = DEFAULT_MAX_REDISPATCHES,
          redispatch: Redispatch | None = None, deadline: float | None = None,
          page_size: int | None = None) -> list[SweepResult]:
    """Each stuck job with what was done about it (or, with ``dry_run``, would be done)."""
    if mode not in MODES:
        raise SweepError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "redispatch" and redispatch is None:
        raise SweepError("re-dispatching needs somewhere to send the jobs")
    now = datetime.now(timezone.utc)
    stale_before = _timestamp(now - timedelta(seconds=older_than_seconds))
    results = []
    for job in find_stuck(store, older_than_seconds, now=now, page_size=page_size):
        if deadline is not None and time.monotonic() >= deadline:
            log("sweep_stopped", job_id=None, level=logging.WARNING, reason="deadline", handled=len(results))
            break
        action = _handle(store, job, job.reason(now), mode=mode, dry_run=dry_run, stale_before=stale_before,
                         max_redispatches=max_redispatches, redispatch=redispatch)
        log("swept", job_id=job.job_id, status=job.status, mode=mode, dry_run=dry_run, action=action)
        results.append(SweepResult(job, action))
    return results


def _fail(store: JobStore, job_id: str, message: str, dry_run: bool) -> str:
    if dry_run:
        return f"would be marked FAILED: {message}"
    if store.fail_unclaimed(job_id, message, ERROR_TYPE):
        return f"marked FAILED: {message}"
    return "changed meanwhile; left alone"


def _handle(store: JobStore, job: StuckJob, reason: str, *, mode: str, dry_run: bool, stale_before: str,
            max_redispatches: int, redispatch: Redispatch | None) -> str:
    if mode == "report":
        return reason
    if mode == "mark_failed":
        return _fail(store, job.job_id, reason, dry_run)
    row = store.get(job.job_id) or {}
    event = _stored_event(row)
    done = int(row.get("sweep_redispatches", 0))
    if event is None:
        return _fail(store, job.job_id, f"{reason}; the row holds no dispatched request to send again", dry_run)
    if done >= max_redispatches:
        return _fail(store, job.job_id, f"{reason}, after {done} re-dispatches", dry_run)
    if dry_run:
        return f"would be re-dispatched ({done + 1} of {max_redispatches})"
    if redispatch is None or not store.note_redispatch(job.job_id, stale_before, max_redispatches):
        return "changed meanwhile; left alone"
    try:
        redispatch(event)
    except Exception as error:  # noqa: BLE001 - one job's failed send must not end the sweep of the others
        log("redispatch_failed", job_id=job.job_id, level=logging.ERROR, error=f"{type(error).__name__}: {error}")
        return f"re-dispatch failed ({type(error).__name__}: {error}); counted; tried again by a later sweep"
    return f"re-dispatched ({done + 1} of {max_redispatches})"


def lambda_redispatch(function_name: str, client: Any = None) -> Redispatch:
    """Re-invoke ``function_name`` asynchronously with the job's event: what the router's Lambda path sends."""
    clients = [client] if client else []

    def send(event: dict[str, Any]) -> None:
        if not clients:
            import boto3  # only a sweep that re-dispatches something needs a Lambda client

            clients.append(boto3.client("lambda"))
        with aws_call(f"Lambda invoke of {function_name}"):
            response = clients[0].invoke(FunctionName=function_name, InvocationType="Event",
                                            Payload=json.dumps(event).encode())
        response["Payload"].close()
        if response["StatusCode"] != 202:
            raise RuntimeError(f"Lambda answered {response['StatusCode']}, not 202")

    return send


def is_sweep_event(event: Any) -> bool:
    """The scheduled sweep's event (`infra/sweep.py`), which no job event resembles."""
    return isinstance(event, dict) and event.get("action") == "sweep"


def _event_int(event: dict[str, Any], name: str, default: int, low: int) -> int:
    value = event.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SweepError(f"{name} must be a whole number of at least {low}, got {value!r}")
    return value


def scheduled_sweep(event: dict[str, Any], store: JobStore, function_name: str, deadline: float) -> dict[str, Any]:
    """The sweep as the function runs it on its schedule: re-dispatching re-invokes the function
    itself, the only backend reachable from Lambda (its package holds neither router nor broker)."""
    try:
        mode = event.get("mode", "redispatch")
        older_than = _event_int(event, "older_than_minutes", DEFAULT_OLDER_THAN_SECONDS // 60, 1) * 60
        limit = _event_int(event, "max_redispatches", DEFAULT_MAX_REDISPATCHES, 0)
        results = sweep(store, older_than_seconds=older_than, mode=mode, dry_run=event.get("dry_run") is True,
                        max_redispatches=limit, redispatch=lambda_redispatch(function_name), deadline=deadline)
    except SweepError as error:
        log("sweep_refused", job_id=None, level=logging.ERROR, error=str(error), sweep_event=event)
        return {"action": "sweep", "error": str(error)}
    log("sweep_done", job_id=None, mode=mode, stuck=len(results))
    return {"action": "sweep", "mode": mode, "stuck": len(results),
            "jobs": [{"job_id": r.job.job_id, "status": r.job.status, "action": r.action} for r in results]}
