"""The processor's configuration, read once from the environment.

Lambda sets ``S3_BUCKET_NAME`` and ``DYNAMODB_TABLE_NAME`` (the Pulumi program declares them);
the Celery worker gets the same variables from Railway. Progress goes to the Redis of
``REDIS_URL`` (the worker's broker) or, in Lambda, of the URL held in the SecureString parameter
named by ``PROGRESS_REDIS_PARAMETER`` (read once per process, see `processor.publisher`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from processor.engine import EncodeSettings
from processor.errors import ConfigurationError
from processor.jobs import DEFAULT_LEASE_SECONDS
from processor.text_model import TextModelSettings

# Lambda runs an async event at most three times by default (the first try and two retries);
# the attempt that reaches this count fails the job instead of handing it to a retry that will
# never come, so no job stays PROCESSING.
DEFAULT_MAX_ATTEMPTS = 3


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigurationError(f"{name} must be at least 1, got {value}")
    return value


def lease_seconds() -> int:
    """``JOB_LEASE_SECONDS``: the claim's lease, which the Celery app's redelivery also follows."""
    return _positive_int("JOB_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)


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

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            bucket=_required("S3_BUCKET_NAME"),
            table=_required("DYNAMODB_TABLE_NAME"),
            redis_url=os.environ.get("REDIS_URL") or None,
            # Lambda's writable disk is /tmp; tempfile honours TMPDIR elsewhere.
            scratch_dir=Path(os.environ.get("SCRATCH_DIR") or tempfile.gettempdir()),
            encode=EncodeSettings.from_env(),
            max_attempts=_positive_int("MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS),
            lease_seconds=lease_seconds(),
            progress_redis_parameter=os.environ.get("PROGRESS_REDIS_PARAMETER", "").strip() or None,
            text_model=TextModelSettings.from_env(),
        )
