"""The backend's ``dynamodb_service.create_job_entry``, as it behaves: one PutItem of the whole row.

A PutItem replaces whatever the row held, which is why the documented routes write it before
the job is sent. The table comes from ``DYNAMODB_TABLE_NAME`` with the backend's default, and
the region from the backend's setting, as the backend's module does (read per call here, so
each test's environment applies).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import boto3

from tests.backend.stand_ins import settings


def iso_utc_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def create_job_entry(job_id: str, user_id: str | None = None, upload_date: str | None = None, status: str = "QUEUED",
                     created_at: str | None = None, updated_at: str | None = None,
                     video_duration: float | None = None, **metadata: Any) -> dict[str, Any]:
    """``metadata``: filename, file_size, title, user_email, content_type, bucket_location (None: left out)."""
    now = iso_utc_now()
    item: dict[str, Any] = {"video_id": job_id, "user_id": user_id or "anonymous", "upload_date": upload_date or now,
                            "status": status, "created_at": created_at or now, "updated_at": updated_at or now}
    if video_duration is not None:
        item["video_duration"] = Decimal(str(video_duration))
    item.update({name: value for name, value in metadata.items() if value is not None})
    table = os.environ.get("DYNAMODB_TABLE_NAME", "easy-video-share-video-metadata")
    boto3.resource("dynamodb", region_name=settings.AWS_REGION).Table(table).put_item(Item=item)
    return item
