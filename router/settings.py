"""The backend's Railway variables that wire the router (flags are in `router.flags`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

FUNCTION_NAME = "VIDEO_PROCESSOR_FUNCTION_NAME"
TABLE_NAME = "DYNAMODB_TABLE_NAME"
BROKER_URL = "CELERY_BROKER_URL"
FLAGS_PARAMETER = "ROUTER_FLAGS_PARAMETER"
# The bucket goes into the Lambda event; the backend already has this variable.
BUCKET_NAME = "S3_BUCKET_NAME"
# The queue the processor's Celery worker consumes; Celery's default when unset.
CELERY_QUEUE = "VIDEO_PROCESSOR_CELERY_QUEUE"
SETTING_VARIABLES = (FUNCTION_NAME, TABLE_NAME, BROKER_URL, FLAGS_PARAMETER, BUCKET_NAME, CELERY_QUEUE)


@dataclass(frozen=True)
class Settings:
    function_name: str | None = None
    table_name: str | None = None
    broker_url: str | None = None
    flags_parameter: str | None = None
    bucket: str | None = None
    celery_queue: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        return cls(*(environ.get(name) or None for name in SETTING_VARIABLES))
