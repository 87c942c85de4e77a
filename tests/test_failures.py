"""`python -m processor failures`: the events Lambda gave up on, against a real moto SQS queue."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import boto3
import pytest

from sandbox import backend


def record(job_id: str | None, condition: str = "RetriesExhausted", error: str = "JobBusyError") -> str:
    """An invocation record as Lambda sends it to an on-failure destination."""
    return json.dumps({
        "version": "1.0", "timestamp": "2026-11-24T10:00:00.000Z",
        "requestContext": {"requestId": "r-1", "condition": condition, "approximateInvokeCount": 3,
                           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST"},
        "requestPayload": {"job_id": job_id, "s3_key": "uploads/x.mp4"} if job_id else "not an event",
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": error, "errorMessage": "job is PROCESSING under another attempt"},
    })


@pytest.fixture
def failure_queue(backend_world):
    sqs = boto3.client("sqs")
    return sqs.create_queue(QueueName="easy-video-share-video-processor-failures")["QueueUrl"]


def failures(queue_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "processor", "failures", "--queue-url", queue_url, *args],
                          capture_output=True, text=True, timeout=60)


def set_row(job_id: str, status: str, lease: float = 0) -> None:
    backend.put_job_row(job_id, f"uploads/{job_id}.mp4")
    boto3.resource("dynamodb").Table(backend.DEFAULT_TABLE).update_item(
        Key={"video_id": job_id}, UpdateExpression="SET #s = :s, lease_expires_at = :l",
        ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": status, ":l": int(lease)})


def remaining(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(value) for value in attributes["Attributes"].values())


def test_unfinished_jobs_are_marked_failed_and_their_records_removed(failure_queue):
    jobs = {"queued": "QUEUED", "lapsed": "PROCESSING", "busy": "PROCESSING", "done": "COMPLETED"}
    for job_id, status in jobs.items():
        set_row(job_id, status, lease=time.time() + 600 if job_id == "busy" else 0)
        boto3.client("sqs").send_message(QueueUrl=failure_queue, MessageBody=record(job_id))
    boto3.client("sqs").send_message(QueueUrl=failure_queue, MessageBody=record(None))

    listing = failures(failure_queue)
    assert listing.returncode == 0, listing.stderr
    assert "queued" in listing.stdout and "would be marked FAILED" in listing.stdout
    assert backend.get_job_row("queued")["status"] == "QUEUED"  # listing changes nothing
    assert remaining(failure_queue) == 5

    settled = failures(failure_queue, "--mark-failed")
    assert settled.returncode == 0, settled.stderr
    lines = {line.split()[0]: line for line in settled.stdout.splitlines()[:-1]}
    assert "marked FAILED" in lines["queued"] and "marked FAILED" in lines["lapsed"]
    assert "being processed" in lines["busy"] and "already COMPLETED" in lines["done"]
    assert "no job id" in lines["-"]
    for job_id in ("queued", "lapsed"):
        row = backend.get_job_row(job_id)
        assert (row["status"], row["error_type"]) == ("FAILED", "delivery_failed")
        assert row["error_message"].startswith("Lambda gave up on the job's event (RetriesExhausted after 3")
    assert backend.get_job_row("busy")["status"] == "PROCESSING"
    assert backend.get_job_row("done")["status"] == "COMPLETED"
    # The busy job's record and the unreadable one stay for another look.
    assert remaining(failure_queue) == 2


def test_without_a_table_it_says_so(failure_queue, monkeypatch):
    monkeypatch.delenv("DYNAMODB_TABLE_NAME")
    result = failures(failure_queue)
    assert result.returncode == 2
    assert result.stderr.strip() == "python -m processor: error: --table is required when DYNAMODB_TABLE_NAME is not set"


def test_an_unknown_queue_is_one_line_not_a_traceback(backend_world):
    result = failures("http://127.0.0.1:1/000000000000/nope")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
