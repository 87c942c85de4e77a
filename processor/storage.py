"""S3: the upload in, the segments out.

The input is downloaded to local scratch (Lambda's /tmp) rather than read from a presigned URL:
the static ffmpeg links glibc statically and cannot resolve host names. Free space is checked
first, since a video larger than /tmp would otherwise fail half-way with a confusing ENOSPC.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import boto3
from botocore.exceptions import ClientError

from processor.aws_errors import aws_call
from processor.contract import Job
from processor.errors import InputNotFoundError, InsufficientSpaceError, SegmentMissingError
from processor.logs import log

# The input, its segments (about the input's size again when re-encoding) and ffmpeg's slack.
SPACE_FACTOR = 2.2
SPACE_MARGIN_BYTES = 32 * 1024 * 1024
# S3 user metadata (x-amz-meta-duration): a segment's measured duration in seconds.
DURATION_METADATA = "duration"


def ensure_fits(size: int, free: int, directory: Path) -> None:
    """Refuse an input that will not fit in scratch space with its segments."""
    needed = int(size * SPACE_FACTOR) + SPACE_MARGIN_BYTES
    if needed > free:
        raise InsufficientSpaceError(
            f"input is {size / 1e6:.0f} MB and needs about {needed / 1e6:.0f} MB of scratch space "
            f"with its segments, but {directory} has {free / 1e6:.0f} MB free "
            "(raise the function's ephemeral storage or route such files to Celery)")


class VideoStorage:
    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.s3 = client or boto3.client("s3")

    def size(self, key: str) -> int:
        """The upload's size in bytes; a key that is missing (or that the processor may not
        read) is InputNotFoundError, whether the job downloads it or fans out over it."""
        with aws_call(f"S3 HeadObject s3://{self.bucket}/{key}"):
            try:
                return int(self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
            except ClientError as error:
                # Without s3:ListBucket, S3 answers a missing key with 403, not 404.
                if error.response.get("Error", {}).get("Code") in ("403", "404", "NoSuchKey", "NotFound"):
                    raise InputNotFoundError(f"input s3://{self.bucket}/{key} does not exist "
                                             "or the processor may not read it") from error
                raise

    def download(self, key: str, directory: Path, on_progress: Callable[[float], None] | None = None) -> Path:
        """Download ``key`` into ``directory`` after proving it will fit with its segments.

        ``on_progress`` gets the fraction downloaded, from the transfer's threads.
        """
        size = self.size(key)
        ensure_fits(size, shutil.disk_usage(directory).free, directory)
        target = directory / ("input" + Path(key).suffix.lower()[:8])
        done = 0

        def transferred(count: int) -> None:
            nonlocal done
            done += count
            if on_progress and size:
                on_progress(done / size)

        with aws_call(f"S3 download s3://{self.bucket}/{key}"):
            self.s3.download_file(self.bucket, key, str(target), Callback=transferred)
        return target

    def upload_segments(self, job: Job, paths: Sequence[Path], on_uploaded: Callable[[int], None] | None = None,
                        *, first: int = 0, durations: Sequence[float] = ()) -> list[str]:
        """Upload the segment at ``paths[j]`` to ``processed/{job_id}/segment_{first + j:03d}.mp4``; keys in order.

        Keys are a function of the job and the index, so a retry overwrites, never duplicates.
        ``durations`` go along as object metadata: a fan-out's finish step reads them back
        (``segment_durations``) without downloading the segments.
        """
        keys: list[str] = []
        for index, path in enumerate(paths):
            key = job.output_key(first + index)
            extra: dict[str, Any] = {"ContentType": "video/mp4"}
            if durations:
                extra["Metadata"] = {DURATION_METADATA: f"{durations[index]:.6f}"}
            with aws_call(f"S3 upload s3://{self.bucket}/{key}"):
                self.s3.upload_file(str(path), self.bucket, key, ExtraArgs=extra)
            keys.append(key)
            if on_uploaded:
                on_uploaded(index)
        return keys

    def segment_durations(self, job: Job, count: int) -> list[float]:
        """The durations stored with segments 0 .. count - 1; SegmentMissingError names the first
        that is not there (or was not written by a fan-out item)."""
        durations = []
        for index in range(count):
            key = job.output_key(index)
            with aws_call(f"S3 HeadObject s3://{self.bucket}/{key}"):
                try:
                    metadata = self.s3.head_object(Bucket=self.bucket, Key=key).get("Metadata", {})
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") in ("403", "404", "NoSuchKey", "NotFound"):
                        raise SegmentMissingError(f"segment {index} of {count} is not in S3 ({key})") from None
                    raise
            if DURATION_METADATA not in metadata:
                raise SegmentMissingError(f"segment {index} of {count} ({key}) carries no duration")
            durations.append(float(metadata[DURATION_METADATA]))
        return durations

    def put_json(self, key: str, value: Any) -> None:
        with aws_call(f"S3 upload s3://{self.bucket}/{key}"):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(value).encode(),
                               ContentType="application/json")

    def delete_key(self, key: str) -> None:
        """Best effort, as ``delete``."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            log("cleanup_failed", job_id=None, key=key, error=str(error))

    def delete(self, job: Job, count: int, *, first: int = 0) -> None:
        """Remove this job's segments ``first`` .. ``first + count - 1`` (best effort: the row,
        not S3, says done)."""
        keys = [{"Key": job.output_key(i)} for i in range(first, first + count)]
        for start in range(0, len(keys), 1000):
            try:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[start:start + 1000], "Quiet": True})
            except ClientError as error:
                log("cleanup_failed", job_id=job.job_id, error=str(error))
