"""The size of an upload, read from S3 when the request does not carry it.

The backend's ``file_size`` is optional. Without it the size rule cannot protect Lambda's /tmp,
and in phase ``lambda`` every such job would stay on Celery (``unknown_size``). One HeadObject,
bounded like every call on the request path, tells the size; only when it fails does
``unknown_size`` decide, and the failure is logged.
"""

from __future__ import annotations

import logging

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from processor.contract import Job
from router.log import log_event

# About three seconds at worst (a connect that times out, then one retry that answers at once).
S3_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2})


class UploadSizes:
    def __init__(self, bucket: str | None, client: BaseClient | None = None, region: str | None = None) -> None:
        self.bucket = bucket
        self.region = region
        self._client = client

    def size_of(self, job: Job) -> int | None:
        """The upload's size in bytes, or None (logged) when S3 does not say."""
        if not self.bucket:
            problem = "no bucket configured (set S3_BUCKET_NAME or AWS_BUCKET_NAME)"
        else:
            if self._client is None:
                self._client = boto3.session.Session().client("s3", region_name=self.region, config=S3_CONFIG)
            try:
                return int(self._client.head_object(Bucket=self.bucket, Key=job.s3_key)["ContentLength"])
            except (BotoCoreError, ClientError) as error:
                problem = f"S3 HeadObject s3://{self.bucket}/{job.s3_key} failed: {error}"
        log_event(logging.WARNING, "router.size_unknown", job_id=job.job_id, error=problem)
        return None
