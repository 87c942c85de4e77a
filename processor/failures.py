"""Events Lambda gave up on: read from the function's failure queue and their jobs settled.

An event that used up its retries (or outlived its maximum age) goes to the on-failure
destination instead of the handler, so its job row may still say QUEUED, or PROCESSING under
a lapsed lease. ``python -m processor failures`` lists them; with ``--mark-failed`` it marks
each such job FAILED (never one that finished or is being processed) and removes the record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterator

import boto3

from processor.aws_errors import aws_call
from processor.jobs import COMPLETED, FAILED, PROCESSING, JobStore

ERROR_TYPE = "delivery_failed"


@dataclass(frozen=True)
class FailedDelivery:
    """One invocation record, as Lambda writes it to an on-failure destination."""

    receipt: str
    job_id: str | None
    condition: str
    attempts: int
    error: str

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "FailedDelivery":
        try:
            record = json.loads(message["Body"])
        except ValueError:
            record = {}
        record = record if isinstance(record, dict) else {}
        context = record.get("requestContext") or {}
        payload = record.get("requestPayload")
        response = record.get("responsePayload")
        job_id = payload.get("job_id") if isinstance(payload, dict) else None
        error = (f"{response.get('errorType', 'Error')}: {response.get('errorMessage', '')}"
                 if isinstance(response, dict) else "no error reported")
        return cls(message["ReceiptHandle"], job_id if isinstance(job_id, str) else None,
                   str(context.get("condition", "unknown")), int(context.get("approximateInvokeCount", 0)), error)

    @property
    def message(self) -> str:
        return f"Lambda gave up on the job's event ({self.condition} after {self.attempts} attempts): {self.error}"


def _receive(sqs: Any, queue_url: str, limit: int, hold_seconds: int) -> Iterator[dict[str, Any]]:
    seen = 0
    while seen < limit:
        with aws_call("SQS ReceiveMessage on the failure queue"):
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=min(10, limit - seen),
                                        VisibilityTimeout=hold_seconds, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return
        for message in batch:
            seen += 1
            yield message


def settle(queue_url: str, store: JobStore, *, mark_failed: bool, limit: int = 100,
           sqs: Any = None) -> list[tuple[FailedDelivery, str]]:
    """Each record with what was done about it; records are removed only once their job is settled."""
    sqs = sqs or boto3.client("sqs")
    results = []
    # Listing leaves records visible at once; settling hides each while it is handled.
    for message in _receive(sqs, queue_url, limit, hold_seconds=60 if mark_failed else 0):
        delivery = FailedDelivery.from_message(message)
        row = store.get(delivery.job_id) if delivery.job_id else None
        status = (row or {}).get("status")
        live = status == PROCESSING and float(row.get("lease_expires_at", 0)) > time.time()
        if delivery.job_id is None:
            action = "no job id in the record; left in the queue"
        elif row is None:
            action = "no job row; left in the queue"
        elif status in (COMPLETED, FAILED):
            action = f"already {status}"
        elif live:
            action = "being processed; left in the queue"
        elif mark_failed:
            marked = store.fail_unclaimed(delivery.job_id, delivery.message, ERROR_TYPE)
            action = "marked FAILED" if marked else "changed meanwhile; left in the queue"
        else:
            action = f"{status}: would be marked FAILED"
        if mark_failed and (action == "marked FAILED" or action.startswith("already")):
            with aws_call("SQS DeleteMessage on the failure queue"):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=delivery.receipt)
        results.append((delivery, action))
    return results
