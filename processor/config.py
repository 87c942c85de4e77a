"""The processor's configuration, read once from the environment.

Lambda sets ``S3_BUCKET_NAME`` and ``DYNAMODB_TABLE_NAME`` (the Pulumi program declares them);
the Celery worker on Railway reads the backend's own variables as fallbacks
(`processor.backend_env`): ``AWS_BUCKET_NAME``, ``REDIS_URL`` or ``REDISHOST``..., and the
backend's default table. Progress goes to the Redis of ``REDIS_URL`` (the worker's broker) or,
in Lambda, of the URL held in the SecureString parameter named by ``PROGRESS_REDIS_PARAMETER``
(read once per process, see `processor.publisher`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from processor import backend_env
from processor.engine import EncodeSettings
from processor.errors import ConfigurationError
from processor.fanout import DEFAULT_MIN_DURATION_SECONDS, DEFAULT_MIN_SEGMENTS, FanoutSettings
from processor.jobs import DEFAULT_LEASE_SECONDS
from processor.text_model import TextModelSettings

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


def lease_seconds() -> int:
    """``JOB_LEASE_SECONDS``: the claim's lease, which the Celery app's redelivery also follows."""
    return _whole_number("JOB_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)


@dataclass(frozen=True)
class Settings:
    bucket: str
    table: str
    redis_url: str | None
    scratch_dir: Path
    encode: EncodeSettings
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    progress_redis_parameter: str | None = None
    text_model: TextModelSettings = field(default_factory=TextModelSettings)
    row_wait_seconds: int = DEFAULT_ROW_WAIT_SECONDS
    fanout: FanoutSettings | None = None

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
            lease_seconds=lease_seconds(),
            row_wait_seconds=_whole_number("JOB_ROW_WAIT_SECONDS", DEFAULT_ROW_WAIT_SECONDS, minimum=0),
            progress_redis_parameter=os.environ.get("PROGRESS_REDIS_PARAMETER", "").strip() or None,
            text_model=TextModelSettings.from_env(),
            fanout=fanout_settings(),
        )


def fanout_settings() -> FanoutSettings | None:
    """``FANOUT_STATE_MACHINE`` and its thresholds (infra/function.py sets them with
    ``fanout.enabled``); unset: every job takes the single pass, as the Celery worker always does."""
    name = os.environ.get("FANOUT_STATE_MACHINE", "").strip()
    if not name:
        return None
    return FanoutSettings(state_machine=name,
                          min_segments=_whole_number("FANOUT_MIN_SEGMENTS", DEFAULT_MIN_SEGMENTS, minimum=2),
                          min_duration_seconds=_whole_number("FANOUT_MIN_DURATION_SECONDS",
                                                             DEFAULT_MIN_DURATION_SECONDS, minimum=0))
