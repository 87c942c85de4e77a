"""The job row in DynamoDB: conditional status changes that make processing idempotent.

Lambda may deliver an async event more than once, Celery redelivers an unacknowledged task,
and the router may hand one job to both backends after a fallback. Every status change here is
a conditional UpdateItem, so exactly one attempt holds a job at a time:

- ``claim``: QUEUED (or PROCESSING whose lease has expired) -> PROCESSING under a fresh attempt
  id with a short lease, like Powertools' in-progress expiry. Never a job without a row: the
  backend writes the row, and a claim that created one would let any job id cut any upload, and
  be overwritten by the backend's own PutItem when it lands late (its legacy order sends the task
  first); the runner waits a moment for a missing row instead (`processor.pipeline`).
- ``progress`` renews the lease: it is a heartbeat. An attempt that is killed (out of memory,
  a redeployed worker) stops renewing, and within one lease period the retry takes over.
- ``progress``, ``complete``, ``fail``, ``release``: only for the attempt that holds the claim.

Only UpdateItem: a PutItem would drop the attributes the backend wrote on the row.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

import boto3
from botocore.exceptions import ClientError

from processor.aws_errors import aws_call
from processor.contract import utc_timestamp
from processor.errors import ProcessorError
from processor.progress_update import COMPLETED as COMPLETED_STAGE
from processor.progress_update import FAILED as FAILED_STAGE
# processing_stage of a job claimed (or handed back for a retry) and not started: today's first stage.
from processor.progress_update import QUEUED as QUEUED_STAGE
from processor.progress_update import PROCESSING as PROCESSING_STAGE
from processor.progress_update import percentage
from processor.variations import TextVariations

QUEUED, PROCESSING, COMPLETED, FAILED = "QUEUED", "PROCESSING", "COMPLETED", "FAILED"
MAX_ERROR_MESSAGE = 1000
# Short enough that a retry of a killed attempt (Lambda retries after 1 and 3 minutes) finds
# the lease lapsed; the holder renews it at least every quarter of it.
DEFAULT_LEASE_SECONDS = 120

# Nothing holds the job: QUEUED, or PROCESSING under a lease nobody renews. A claim may take it;
# `processor.sweep` calls it stuck once it has stayed so too long.
UNHELD = "#status = :queued OR (#status = :processing AND lease_expires_at < :now_epoch)"
# Never a job without a row: the backend's late PutItem would reset a finished job, and a job id
# with no row could cut any upload.
_CLAIMABLE = f"attribute_exists(video_id) AND ({UNHELD})"
_OWNED = "processing_attempt_id = :attempt AND #status = :processing"


class ClaimLostError(ProcessorError):
    """Another attempt took the job over (this attempt's lease expired); stop without writing."""

    error_type = "claim_lost"


@dataclass(frozen=True)
class Claim:
    claimed: bool
    attempt_id: str
    attempts: int = 0
    status: str | None = None  # the status that blocked the claim, when not claimed
    lease_expires_at: float = 0.0  # epoch seconds; of the blocking attempt, when not claimed
    upload_key: str | None = None  # the row's bucket_location, written by the backend
    segments_planned: int = 0  # what an earlier attempt planned (and may have uploaded)
    text_variations: TextVariations | None = None  # base_vary texts an earlier attempt stored
    row_exists: bool = True  # False: the backend has not written the job's row (yet)


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _decimal(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))


class JobStore:
    def __init__(self, table_name: str, resource: Any = None, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> None:
        self.table = (resource or boto3.resource("dynamodb")).Table(table_name)
        self.lease_seconds = lease_seconds

    def _lease(self) -> int:
        return int(time.time()) + self.lease_seconds

    def _update(self, what: str, job_id: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        """Run one conditional update; False when the condition did not hold."""
        return self._updated(what, job_id, expression, condition, values) is not None

    def _updated(self, what: str, job_id: str, expression: str, condition: str, values: dict[str, Any],
                 returns: str = "UPDATED_NEW") -> dict[str, Any] | None:
        """Run one conditional update; the attributes ``returns`` asks for, None when the condition did not hold."""
        with aws_call(f"DynamoDB {what} of job {job_id}"):
            try:
                response = self.table.update_item(
                    Key={"video_id": job_id},
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=values,
                    ReturnValues=returns,
                )
            except ClientError as error:
                if _is_condition_failure(error):
                    return None
                raise
        return response.get("Attributes", {})

    def get(self, job_id: str) -> dict[str, Any] | None:
        with aws_call(f"DynamoDB read of job {job_id}"):
            return self.table.get_item(Key={"video_id": job_id}, ConsistentRead=True).get("Item")

    def claim(self, job_id: str, attempt_id: str, backend: str, memory_mb: int | None = None) -> Claim:
        """``processing_started_at`` is the attempt's start, ``first_claimed_at`` the first
        attempt's (the report's queue wait ends there, not at a retry's); ``memory_mb``
        (Lambda's configured memory) is what the report's cost estimate bills by (`router.report`)."""
        now = utc_timestamp()
        memory = ", processing_memory_mb = :memory" if memory_mb else ""
        values = {":processing": PROCESSING, ":queued": QUEUED, ":attempt": attempt_id, ":now": now,
                  ":lease": self._lease(), ":now_epoch": int(time.time()), ":backend": backend,
                  ":stage": QUEUED_STAGE, ":zero": 0, ":one": 1}
        if memory_mb:
            values[":memory"] = memory_mb
        claimed = self._update(
            "claim", job_id,
            "SET #status = :processing, processing_attempt_id = :attempt, lease_expires_at = :lease, "
            "processing_started_at = :now, first_claimed_at = if_not_exists(first_claimed_at, :now), "
            "updated_at = :now, processed_by = :backend, "
            f"processing_stage = :stage, progress_percentage = :zero{memory} "
            "ADD processing_attempts :one REMOVE error_message, error_type, last_error, current_segment, "
            "total_segments, processing_seconds" + ("" if memory_mb else ", processing_memory_mb"),
            _CLAIMABLE,
            values,
        )
        row = self.get(job_id) or {}
        return Claim(claimed, attempt_id, attempts=int(row.get("processing_attempts", 0)),
                     status=None if claimed else row.get("status"),
                     lease_expires_at=float(row.get("lease_expires_at", 0)),
                     upload_key=row.get("bucket_location"),
                     segments_planned=int(row.get("segments_planned", 0)),
                     text_variations=TextVariations.from_row(row), row_exists=bool(row))

    def progress(self, job_id: str, attempt_id: str, *, stage: str, percentage: float,
                 current_segment: int | None = None, total_segments: int | None = None,
                 segments_planned: int = 0) -> None:
        """Record progress and renew the lease (the holder's heartbeat).

        The fields are those of today's progress messages, so the backend's status endpoint and
        the router's stream helper read the state the Redis channel carries.
        """
        expression = ("SET processing_stage = :stage, progress_percentage = :pct, updated_at = :now, "
                      "lease_expires_at = :lease")
        values = {":stage": stage, ":pct": _decimal(percentage), ":now": utc_timestamp(), ":attempt": attempt_id,
                  ":processing": PROCESSING, ":lease": self._lease()}
        if total_segments:
            expression += ", total_segments = :total"
            values[":total"] = total_segments
        if segments_planned:
            # Kept for a later attempt's cleanup, should this one die after uploading some.
            expression += ", segments_planned = :planned"
            values[":planned"] = segments_planned
        if current_segment is not None:
            expression += ", current_segment = :current"
            values[":current"] = current_segment
        else:
            expression += " REMOVE current_segment"
        if not self._update("progress", job_id, expression, _OWNED, values):
            raise ClaimLostError(f"job {job_id} is no longer held by attempt {attempt_id}")

    def held(self, job_id: str, attempt_id: str) -> dict[str, Any]:
        """The row of a job this attempt holds; a fan-out step runs only under its execution's claim."""
        row = self.get(job_id) or {}
        if row.get("status") != PROCESSING or row.get("processing_attempt_id") != attempt_id:
            raise ClaimLostError(f"job {job_id} is no longer held by attempt {attempt_id} "
                                 f"(it is {row.get('status', 'without a row')})")
        return row

    def renew(self, job_id: str, attempt_id: str) -> None:
        """Renew the lease without touching progress: a fan-out item's heartbeat while it encodes."""
        if not self._update("lease renewal", job_id, "SET lease_expires_at = :lease", _OWNED,
                            {":lease": self._lease(), ":attempt": attempt_id, ":processing": PROCESSING}):
            raise ClaimLostError(f"job {job_id} is no longer held by attempt {attempt_id}")

    def start_counting(self, job_id: str, attempt_id: str, total: int) -> None:
        """A fan-out's plan on the row: ``total`` segments to encode, none done yet (``count_done``)."""
        if not self._update(
            "segment count", job_id,
            "SET total_segments = :total, segments_planned = :total, lease_expires_at = :lease, updated_at = :now "
            "REMOVE segments_done",
            _OWNED,
            {":total": total, ":lease": self._lease(), ":now": utc_timestamp(), ":attempt": attempt_id,
             ":processing": PROCESSING},
        ):
            raise ClaimLostError(f"job {job_id} is no longer held by attempt {attempt_id}")

    def count_done(self, job_id: str, attempt_id: str, indices: Sequence[int], total: int) -> int:
        """Record segments ``indices`` of ``total`` as done and renew the lease; how many are done now.

        Items finish in any order, at once: an atomic ADD into a number set, never a read then a
        write, and a retried item that already counted its segments counts nothing twice. The
        row's progress fields follow, never backwards: a count written late loses to a higher one.
        """
        changed = self._updated(
            "segment count", job_id, "ADD segments_done :indices SET lease_expires_at = :lease, updated_at = :now",
            _OWNED, {":indices": set(indices), ":lease": self._lease(), ":now": utc_timestamp(),
                     ":attempt": attempt_id, ":processing": PROCESSING},
            # Segments already counted change nothing, and an unchanged attribute is not "updated".
            returns="ALL_NEW")
        if changed is None:
            raise ClaimLostError(f"job {job_id} is no longer held by attempt {attempt_id}")
        done = len(changed["segments_done"])
        self._update(
            "progress", job_id,
            "SET current_segment = :done, progress_percentage = :pct, processing_stage = :stage",
            f"{_OWNED} AND (attribute_not_exists(current_segment) OR current_segment < :done)",
            {":done": done, ":pct": _decimal(percentage(PROCESSING_STAGE, done / total)), ":stage": PROCESSING_STAGE,
             ":attempt": attempt_id, ":processing": PROCESSING})
        return done

    def add_billing(self, job_id: str, attempt_id: str, seconds: float, state_transitions: int | None = None) -> bool:
        """Add one fan-out invocation's billed seconds (rounded up to the millisecond, as Lambda
        bills) and count it, atomically: items end at once (``lambda_billed_seconds``,
        ``lambda_invocations``; ``state_transitions`` from finish). Only on the row of this
        attempt's claim, whatever its status: finish and fail add theirs as they end the job."""
        expression = "ADD lambda_billed_seconds :seconds, lambda_invocations :one"
        values: dict[str, Any] = {":seconds": Decimal(math.ceil(seconds * 1000)) / 1000, ":one": 1,
                                  ":attempt": attempt_id}
        if state_transitions is not None:
            expression += " SET state_transitions = :transitions"
            values[":transitions"] = state_transitions
        # #status only because every update names it (JobStore._updated).
        return self._update("billing", job_id, expression,
                            "processing_attempt_id = :attempt AND attribute_exists(#status)", values)

    def note_item_error(self, job_id: str, attempt_id: str, error_type: str, message: str) -> bool:
        """Keep a fan-out item's permanent error on the row, with its attempt, while the attempt
        holds the job: a distributed Map fails as States.ExceedToleratedFailureThreshold, and
        the item's own error never reaches the fail step (``failure_of``'s ``recorded``)."""
        return self._update(
            "item error", job_id, "SET fanout_item_error = :error", _OWNED,
            {":error": {"attempt": attempt_id, "error_type": error_type, "message": message[:MAX_ERROR_MESSAGE]},
             ":attempt": attempt_id, ":processing": PROCESSING})

    def save_text_variations(self, job_id: str, attempt_id: str, variations: TextVariations) -> None:
        """Store base_vary's texts before any segment is encoded: every later attempt reuses them."""
        names = sorted(variations.to_row())
        expression = "SET " + ", ".join(f"{name} = :{name}" for name in names) + ", updated_at = :now"
        values = {f":{name}": value for name, value in variations.to_row().items()}
        values.update({":now": utc_timestamp(), ":attempt": attempt_id, ":processing": PROCESSING})
        if not self._update("text variations", job_id, expression, _OWNED, values):
            raise ClaimLostError(f"job {job_id} is no longer held by attempt {attempt_id}")

    def complete(self, job_id: str, attempt_id: str, keys: Sequence[str], durations: Sequence[float], *,
                 input_seconds: float, processing_seconds: float) -> None:
        """COMPLETED with the ordered segment keys, written only once every segment is uploaded.

        ``input_seconds`` (the video's length) and ``processing_seconds`` (claim to now) are the
        report's throughput and processing time (`router.report`).
        """
        now = utc_timestamp()
        if not self._update(
            "completion", job_id,
            "SET #status = :completed, output_s3_urls = :keys, segments_created = :count, "
            "segment_durations = :durations, processing_stage = :completed_stage, current_segment = :count, "
            "total_segments = :count, progress_percentage = :hundred, completed_at = :now, updated_at = :now, "
            "input_duration_seconds = :input, processing_seconds = :elapsed "
            "REMOVE lease_expires_at",
            _OWNED,
            {":completed": COMPLETED, ":keys": list(keys), ":count": len(keys),
             ":durations": [_decimal(d) for d in durations], ":completed_stage": COMPLETED_STAGE,
             ":hundred": 100, ":now": now, ":attempt": attempt_id, ":processing": PROCESSING,
             ":input": _decimal(input_seconds), ":elapsed": _decimal(processing_seconds)},
        ):
            raise ClaimLostError(f"job {job_id} is no longer held by attempt {attempt_id}")

    def fail(self, job_id: str, attempt_id: str, message: str, error_type: str, processing_seconds: float) -> bool:
        """FAILED with the error and the attempt's duration; False when this attempt no longer holds the job."""
        now = utc_timestamp()
        return self._update(
            "failure", job_id,
            "SET #status = :failed, error_message = :message, error_type = :type, "
            "processing_stage = :failed_stage, failed_at = :now, updated_at = :now, processing_seconds = :elapsed "
            "REMOVE lease_expires_at",
            _OWNED,
            {":failed": FAILED, ":message": message[:MAX_ERROR_MESSAGE], ":type": error_type,
             ":failed_stage": FAILED_STAGE, ":now": now, ":attempt": attempt_id, ":processing": PROCESSING,
             ":elapsed": _decimal(processing_seconds)},
        )

    def fail_unclaimed(self, job_id: str, message: str, error_type: str) -> bool:
        """FAILED for a job no attempt could start (a bad event); never over a finished or live job."""
        now = utc_timestamp()
        return self._update(
            "failure", job_id,
            "SET #status = :failed, error_message = :message, error_type = :type, "
            "processing_stage = :failed_stage, failed_at = :now, updated_at = :now",
            _CLAIMABLE,
            {":failed": FAILED, ":message": message[:MAX_ERROR_MESSAGE], ":type": error_type,
             ":failed_stage": FAILED_STAGE, ":now": now, ":queued": QUEUED, ":processing": PROCESSING,
             ":now_epoch": int(time.time())},
        )

    def note_redispatch(self, job_id: str, stale_before: str, limit: int) -> bool:
        """Count one re-dispatch of a stuck job (`processor.sweep`); False when it is no longer
        stuck or has had ``limit`` already, so two sweeps never both send it."""
        now = utc_timestamp()
        # updated_at moves on: the next sweep leaves the job one more threshold to be picked up.
        return self._update(
            "re-dispatch count", job_id,
            "SET sweep_redispatches = if_not_exists(sweep_redispatches, :zero) + :one, "
            "last_redispatched_at = :now, updated_at = :now",
            f"attribute_exists(video_id) AND ({UNHELD}) AND updated_at < :stale_before "
            "AND (attribute_not_exists(sweep_redispatches) OR sweep_redispatches < :limit)",
            {":zero": 0, ":one": 1, ":now": now, ":queued": QUEUED, ":processing": PROCESSING,
             ":now_epoch": int(time.time()), ":stale_before": stale_before, ":limit": limit},
        )

    def release(self, job_id: str, attempt_id: str, message: str) -> bool:
        """Give the claim back after a transient error so the retry can take the job at once."""
        return self._update(
            "release", job_id,
            "SET lease_expires_at = :zero, last_error = :message, processing_stage = :stage, updated_at = :now",
            _OWNED,
            {":zero": 0, ":message": message[:MAX_ERROR_MESSAGE], ":stage": QUEUED_STAGE,
             ":now": utc_timestamp(), ":attempt": attempt_id, ":processing": PROCESSING},
        )
