"""The running backend's side of the contract: its bucket, its job table, its job rows.

Mirrors what the backend's Terraform and its upload-complete route create today (DESIGN
section 3), so tests and the demo exercise the processor against the real shapes.
"""

from __future__ import annotations

from typing import Any

import boto3

from infra import job_table
from processor.contract import utc_timestamp

DEFAULT_BUCKET = "easy-video-share-videos"
DEFAULT_TABLE = "easy-video-share-video-metadata"


def create_bucket(name: str = DEFAULT_BUCKET) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def create_table(name: str = DEFAULT_TABLE) -> str:
    indexes = [
        {
            "IndexName": index,
            "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}]
            + ([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else []),
            "Projection": {"ProjectionType": "ALL"},
        }
        for index, hash_key, range_key in job_table.INDEXES
    ]
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": job_table.HASH_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in job_table.key_attributes()],
        GlobalSecondaryIndexes=indexes,
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def upload_video(path: str, key: str, bucket: str = DEFAULT_BUCKET) -> str:
    boto3.client("s3").upload_file(path, bucket, key, ExtraArgs={"ContentType": "video/mp4"})
    return key


def put_job_row(job_id: str, s3_key: str, *, table: str = DEFAULT_TABLE, user_id: str | None = "user-1",
                file_size: int | None = None, filename: str = "upload.mp4", **extra: Any) -> dict[str, Any]:
    """A QUEUED job row written as the backend writes it: one PutItem."""
    now = utc_timestamp()
    item: dict[str, Any] = {
        "video_id": job_id,
        "status": "QUEUED",
        "created_at": now,
        "updated_at": now,
        "upload_date": now,
        "bucket_location": s3_key,
        "filename": filename,
        **extra,
    }
    if user_id is not None:
        item["user_id"] = user_id
    if file_size is not None:
        item["file_size"] = file_size
    boto3.resource("dynamodb").Table(table).put_item(Item=item)
    return item


def get_job_row(job_id: str, table: str = DEFAULT_TABLE) -> dict[str, Any] | None:
    return boto3.resource("dynamodb").Table(table).get_item(Key={"video_id": job_id}, ConsistentRead=True).get("Item")
