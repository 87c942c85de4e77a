"""The rest of what the backend's ``main.py`` uses around the two routes, on real parts.

``settings`` reads the backend's variables (``AWS_BUCKET_NAME``, ``AWS_REGION``, ``REDIS_URL``)
when asked; the multipart completion and the duration probe run against the moto server and
with the pinned ffprobe, as the backend's ``s3_utils`` and ``video_processor`` do with S3 and
ffmpeg.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import boto3

from processor.probe import probe


class _Settings:
    @property
    def AWS_BUCKET_NAME(self) -> str:  # noqa: N802 - the backend's names
        return os.environ["AWS_BUCKET_NAME"]

    @property
    def AWS_REGION(self) -> str:  # noqa: N802
        return os.environ.get("AWS_REGION", "us-east-1")

    @property
    def REDIS_URL(self) -> str:  # noqa: N802
        return os.environ.get("REDIS_URL", "redis://localhost:6379/0")


settings = _Settings()


def _s3():
    return boto3.client("s3", region_name=settings.AWS_REGION)


def complete_multipart_upload(bucket_name: str, object_key: str, upload_id: str, parts: list[dict]) -> str:
    _s3().complete_multipart_upload(
        Bucket=bucket_name, Key=object_key, UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": part["PartNumber"], "ETag": part["ETag"]} for part in parts]})
    return f"s3://{bucket_name}/{object_key}"


def get_video_duration_from_s3(bucket: str, key: str) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / Path(key).name
        _s3().download_file(bucket, key, str(path))
        return probe(path).duration
