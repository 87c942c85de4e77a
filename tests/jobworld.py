"""Helpers for tests that run whole jobs: an uploaded video with its QUEUED row, a Lambda context."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import boto3
import pytest

from sandbox import backend


class LambdaContext:
    """The context object Lambda passes: a request id and a deadline that really runs out."""

    def __init__(self, remaining_seconds: float = 900.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = "easy-video-share-video-processor"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self._deadline = time.monotonic() + remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    s3_key: str
    bucket: str
    table: str

    def event(self, **overrides) -> dict:
        event = {"s3_bucket": self.bucket, "s3_key": self.s3_key, "job_id": self.job_id, "user_id": "user-1",
                 "cutting_options": {"type": "fixed", "duration_seconds": 2}, "text_strategy": None,
                 "text_input": None, "file_size": None, "source": "test"}
        event.update(overrides)
        return event

    def row(self) -> dict | None:
        return backend.get_job_row(self.job_id, self.table)

    def wait_for(self, status: str, timeout: float = 90.0) -> dict:
        """The row once it reaches ``status`` with no attempt holding it (fails the test otherwise)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.row()
            if row and row["status"] == status and "lease_expires_at" not in row:
                return row
            time.sleep(0.2)
        pytest.fail(f"job {self.job_id} did not reach {status}: {self.row()}")

    def segment_keys(self) -> list[str]:
        listing = boto3.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=f"processed/{self.job_id}/")
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def object_versions(self) -> int:
        listing = boto3.client("s3").list_object_versions(Bucket=self.bucket, Prefix=f"processed/{self.job_id}/")
        return len(listing.get("Versions", [])) + len(listing.get("DeleteMarkers", []))


def queue_job(world, video_path, job_id: str, *, with_row: bool = True) -> QueuedJob:
    key = f"uploads/user-1/{job_id}{video_path.suffix}"
    backend.upload_video(str(video_path), key, world.bucket)
    if with_row:
        backend.put_job_row(job_id, key, table=world.table, file_size=video_path.stat().st_size,
                            filename="holiday.mp4")
    return QueuedJob(job_id, key, world.bucket, world.table)
