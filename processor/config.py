"""The processor's configuration, read once from the environment.

Lambda sets ``S3_BUCKET_NAME`` and ``DYNAMODB_TABLE_NAME`` (the Pulumi program declares them);
the Celery worker on Railway reads the backend's own variables as fallbacks
(`processor.backend_env`): ``AWS_BUCKET_NAME``, ``REDIS_URL`` or ``REDISHOST``..., and the
backend's default table.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from processor import backend_env
from processor.engine import EncodeSettings
from processor.errors import ConfigurationError
from processor.jobs import DEFAULT_LEASE_SECONDS

# Lambda runs an async event at most three times by default (the first try and two retries);
# the attempt that reaches this count fails the job instead of handing it to a retry that will
# never come, so no job stays PROCESSING.
DEFAULT_MAX_ATTEMPTS = 3
# How long a job waits for its row before giving up: the backend's legacy order sends the task
# first and writes the row a moment later (0 to 3 s measured on its multipart route).
DEFAULT_ROW_WAIT_SECONDS = 10


def _whole_number(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    bucket: str
    table: str
    redis_url: str | None
    scratch_dir: Path
    encode: EncodeSettings
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    row_wait_seconds: int = DEFAULT_ROW_WAIT_SECONDS

    @classmethod
    def from_env(cls) -> "Settings":
        bucket = backend_env.bucket()
        if bucket is None:
            raise ConfigurationError(f"environment variable {' or '.join(backend_env.BUCKET_VARIABLES)} is not set")
        return cls(
            bucket=bucket,
            table=backend_env.table(),
            redis_url=backend_env.redis_url(),
            # Lambda's writable disk is /tmp; tempfile honours TMPDIR elsewhere.
            scratch_dir=Path(os.environ.get("SCRATCH_DIR") or tempfile.gettempdir()),
            encode=EncodeSettings.from_env(),
            max_attempts=_whole_number("MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS),
            lease_seconds=_whole_number("JOB_LEASE_SECONDS", DEFAULT_LEASE_SECONDS),
            row_wait_seconds=_whole_number("JOB_ROW_WAIT_SECONDS", DEFAULT_ROW_WAIT_SECONDS, minimum=0),
        )
