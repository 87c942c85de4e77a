"""The Railway backend's variables, read the way its own ``config.py`` reads them.

The router runs in the backend's process and the Celery worker beside it, on the variables the
backend already has: ``AWS_BUCKET_NAME``, ``REDIS_URL`` (or ``REDISHOST``/``REDISPORT``/
``REDIS_PASSWORD``), ``AWS_REGION``, and a ``DYNAMODB_TABLE_NAME`` its code defaults. This
project's own names (``S3_BUCKET_NAME``, ``CELERY_BROKER_URL``, as the Lambda function gets
them) come first; the backend's are the fallbacks, so a variable the backend lacks never turns
into a stranded job. Pure: reads a mapping, no I/O.
"""

from __future__ import annotations

import os
from typing import Mapping
from urllib.parse import quote

# The backend's config.py defaults (DYNAMODB_TABLE_NAME, AWS_REGION).
DEFAULT_TABLE = "easy-video-share-video-metadata"
DEFAULT_REGION = "us-east-1"
# The processor's worker consumes a queue of its own: today's worker keeps Celery's default
# queue (``celery``) with the backend's other tasks, and a message for one never reaches the other.
DEFAULT_CELERY_QUEUE = "video-processor"

BUCKET_VARIABLES = ("S3_BUCKET_NAME", "AWS_BUCKET_NAME")
TABLE_VARIABLE = "DYNAMODB_TABLE_NAME"
BROKER_VARIABLE = "CELERY_BROKER_URL"
REDIS_URL_VARIABLE = "REDIS_URL"
REDIS_PART_VARIABLES = ("REDISHOST", "REDISPORT", "REDIS_PASSWORD")
QUEUE_VARIABLE = "VIDEO_PROCESSOR_CELERY_QUEUE"
# botocore reads only AWS_DEFAULT_REGION; the backend sets AWS_REGION (and passes it to its clients).
REGION_VARIABLES = ("AWS_DEFAULT_REGION", "AWS_REGION")


def _get(environ: Mapping[str, str] | None, name: str) -> str | None:
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or None


def _first(environ: Mapping[str, str] | None, names: tuple[str, ...]) -> str | None:
    return next((value for value in (_get(environ, name) for name in names) if value), None)


def bucket(environ: Mapping[str, str] | None = None) -> str | None:
    return _first(environ, BUCKET_VARIABLES)


def table(environ: Mapping[str, str] | None = None) -> str:
    return _get(environ, TABLE_VARIABLE) or DEFAULT_TABLE


def redis_from_parts(environ: Mapping[str, str] | None = None) -> str | None:
    """The URL config.py builds from Railway's ``REDISHOST``/``REDISPORT``/``REDIS_PASSWORD``."""
    host = _get(environ, "REDISHOST")
    if host is None:
        return None
    password = _get(environ, "REDIS_PASSWORD")
    port = _get(environ, "REDISPORT")
    # Quoted, unlike config.py: a password holding '@' or '/' must not change the host.
    credentials = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{credentials}{host}{f':{port}' if port else ''}/0"


def redis_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The backend's Redis (progress messages, and the broker unless CELERY_BROKER_URL says otherwise)."""
    return _get(environ, REDIS_URL_VARIABLE) or redis_from_parts(environ)


def broker_url(environ: Mapping[str, str] | None = None) -> str | None:
    return _get(environ, BROKER_VARIABLE) or redis_url(environ)


def celery_queue(environ: Mapping[str, str] | None = None) -> str:
    return _get(environ, QUEUE_VARIABLE) or DEFAULT_CELERY_QUEUE


def region(environ: Mapping[str, str] | None = None) -> str:
    return _first(environ, REGION_VARIABLES) or DEFAULT_REGION
