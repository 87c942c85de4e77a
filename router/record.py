"""What the router writes on the job row: conditional UpdateItems, never a PutItem.

The row belongs to the backend (it creates it) and then to the worker (it claims and completes
it). A PutItem here could overwrite a worker's ``PROCESSING``; an unconditional UpdateItem would
create a half row for a job the backend never wrote. So every write is conditional on the row
existing, the routing record never touches ``status``, and ``FAILED`` is only written over a
row no worker has claimed. The one read is the progress stream's (`router.progress`).

The routing record also keeps the Lambda event that was sent (``dispatch_event``, JSON): the
backend writes none of the job's request on the row, and the stuck-job sweep
(`processor.sweep`) needs it to send a stranded job again.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from processor.contract import utc_timestamp
from router.decide import Decision
from router.errors import RecordError, RowMissingError

# Every later write to the row (each progress heartbeat) is billed by the whole item's size, and a
# DynamoDB item holds 400 KB at most: a request larger than this is not kept (the sweep then
# fails its job instead of re-dispatching it). Requests are a few hundred bytes in practice.
MAX_STORED_EVENT_BYTES = 8 * 1024
TABLE_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class JobTable:
    """``table`` is a boto3 DynamoDB Table (the backend's own works); else built from ``name``."""

    def __init__(self, table: Any = None, *, name: str | None = None, region: str | None = None) -> None:
        self._table = table
        self.name = name if table is None else table.name
        self.region = region

    def dynamodb_table(self) -> Any:
        if self._table is None:
            if not self.name:
                raise RecordError("no job table configured (set DYNAMODB_TABLE_NAME)")
            self._table = boto3.session.Session().resource("dynamodb", region_name=self.region,
                                                           config=TABLE_CONFIG).Table(self.name)
        return self._table

    def read(self, job_id: str) -> dict[str, Any] | None:
        """The row as it is now (a strongly consistent GetItem), or None if there is none."""
        return self.dynamodb_table().get_item(Key={"video_id": job_id}, ConsistentRead=True).get("Item")

    def record(self, job_id: str, decision: Decision, event: str | None = None) -> None:
        """Note where the job goes (and, given ``event``, what was sent); refuses (`RowMissingError`)
        a job whose row does not exist."""
        expression = "SET processing_backend = :backend, routing_reason = :reason, dispatched_at = :at, " \
                     "fell_back = :fell_back"
        values = {":backend": decision.backend, ":reason": decision.reason, ":at": utc_timestamp(),
                  ":fell_back": decision.fell_back}
        if event is not None and len(event.encode()) <= MAX_STORED_EVENT_BYTES:
            expression += ", dispatch_event = :event"
            values[":event"] = event
        try:
            self.dynamodb_table().update_item(
                Key={"video_id": job_id},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(video_id)",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _condition_failed(error):
                raise RowMissingError(
                    f"job {job_id}: no row in table {self.name}; the backend must write the job row "
                    "(status QUEUED) before calling router.dispatch()", job_id=job_id) from None
            raise RecordError(f"job {job_id}: could not record the routing decision: {error}", job_id=job_id) from error
        except BotoCoreError as error:
            raise RecordError(f"job {job_id}: could not record the routing decision: {error}", job_id=job_id) from error

    def mark_failed(self, job_id: str, message: str) -> bool:
        """Set ``FAILED`` unless the row is missing or a worker already has the job.

        Returns whether the row was written: a Lambda invoke that timed out may still have been
        delivered, and a worker's ``PROCESSING`` or ``COMPLETED`` is then the truth.
        """
        try:
            self.dynamodb_table().update_item(
                Key={"video_id": job_id},
                UpdateExpression="SET #status = :failed, error_message = :message, updated_at = :now",
                ConditionExpression="attribute_exists(video_id) AND NOT #status IN (:processing, :completed)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":failed": "FAILED", ":message": message, ":now": utc_timestamp(),
                                           ":processing": "PROCESSING", ":completed": "COMPLETED"},
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise RecordError(f"job {job_id}: could not mark the row FAILED: {error}", job_id=job_id) from error
        except BotoCoreError as error:
            raise RecordError(f"job {job_id}: could not mark the row FAILED: {error}", job_id=job_id) from error
        return True
