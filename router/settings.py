"""The backend's Railway variables that wire the router (flags are in `router.flags`).

The backend's own names count (`processor.backend_env`): the bucket from ``S3_BUCKET_NAME`` or
``AWS_BUCKET_NAME``, the broker from ``CELERY_BROKER_URL``, ``REDIS_URL`` or ``REDISHOST``...,
the table defaulted as the backend's ``config.py`` defaults it. `check_environment` is the
backend's startup check: a variable missing or wrong fails the deploy, naming every one, instead
of surfacing first as a stranded job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from processor import backend_env
from processor.contract import is_bucket_name
from router.errors import ConfigurationError, FlagError
from router.flags import FLAG_NAMES, env_name, validate_values

FUNCTION_NAME = "VIDEO_PROCESSOR_FUNCTION_NAME"
TABLE_NAME = backend_env.TABLE_VARIABLE
BROKER_URL = backend_env.BROKER_VARIABLE
FLAGS_PARAMETER = "ROUTER_FLAGS_PARAMETER"
CELERY_QUEUE = backend_env.QUEUE_VARIABLE
SETTING_VARIABLES = (FUNCTION_NAME, TABLE_NAME, BROKER_URL, FLAGS_PARAMETER, CELERY_QUEUE,
                     *backend_env.BUCKET_VARIABLES, backend_env.REDIS_URL_VARIABLE, *backend_env.REDIS_PART_VARIABLES)

# A function name, or its ARN (optionally with a version or alias), as Lambda's Invoke accepts it.
_FUNCTION = re.compile(r"(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]{1,128})?")
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_PARAMETER = re.compile(r"[A-Za-z0-9_./-]{1,2048}")
_QUEUE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
# Celery's default queue: the backend's own worker consumes it, with its other tasks.
TODAYS_QUEUE = "celery"
# kombu's transports a backend would plausibly run on.
_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp", "sqs", "memory")


@dataclass(frozen=True)
class Settings:
    function_name: str | None = None
    table_name: str | None = None
    broker_url: str | None = None
    flags_parameter: str | None = None
    bucket: str | None = None
    celery_queue: str | None = None
    region: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        return cls(
            function_name=environ.get(FUNCTION_NAME, "").strip() or None,
            table_name=backend_env.table(environ),
            broker_url=backend_env.broker_url(environ),
            flags_parameter=environ.get(FLAGS_PARAMETER, "").strip() or None,
            bucket=backend_env.bucket(environ),
            celery_queue=backend_env.celery_queue(environ),
            region=backend_env.region(environ),
        )


def _redis_address(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def _problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    problems = []
    if not settings.function_name:
        problems.append(f"{FUNCTION_NAME} is not set: the function jobs are sent to "
                        "(`pulumi stack output backendEnvironment` gives it)")
    elif not _FUNCTION.fullmatch(settings.function_name):
        problems.append(f"{FUNCTION_NAME}={settings.function_name!r} is not a Lambda function name or ARN")
    if not settings.bucket:
        problems.append(f"{' or '.join(backend_env.BUCKET_VARIABLES)} is not set: the bucket of the uploads")
    elif not is_bucket_name(settings.bucket):
        problems.append(f"{_which(environ, backend_env.BUCKET_VARIABLES)}={settings.bucket!r} is not a bucket name")
    if not _TABLE.fullmatch(settings.table_name or ""):
        problems.append(f"{TABLE_NAME}={settings.table_name!r} is not a DynamoDB table name")
    problems += _broker_problems(settings, environ)
    if settings.flags_parameter and not _PARAMETER.fullmatch(settings.flags_parameter):
        problems.append(f"{FLAGS_PARAMETER}={settings.flags_parameter!r} is not an SSM parameter name")
    if not _QUEUE.fullmatch(settings.celery_queue or ""):
        problems.append(f"{CELERY_QUEUE}={settings.celery_queue!r} is not a Celery queue name")
    elif settings.celery_queue == TODAYS_QUEUE:
        problems.append(f"{CELERY_QUEUE}={TODAYS_QUEUE!r} is the backend's own worker's queue: its worker would run "
                        "routed jobs without claiming them, and the processor's would drop the backend's other tasks")
    return problems + _flag_problems(environ)


def _which(environ: Mapping[str, str], names: tuple[str, ...]) -> str:
    return next(name for name in names if environ.get(name, "").strip())


def _broker_problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    port = environ.get("REDISPORT", "").strip()
    if port and not port.isdigit():
        return [f"REDISPORT={port!r} is not a port number"]
    if not settings.broker_url:
        return [f"{BROKER_URL} or {backend_env.REDIS_URL_VARIABLE} (or REDISHOST, REDISPORT, REDIS_PASSWORD) "
                "is not set: the Celery broker"]
    scheme = urlsplit(settings.broker_url).scheme
    if scheme not in _BROKER_SCHEMES:
        name = _which(environ, (BROKER_URL, backend_env.REDIS_URL_VARIABLE))
        return [f"{name} is not a broker URL (scheme {scheme!r}; expected one of {', '.join(_BROKER_SCHEMES)})"]
    url, parts = environ.get(backend_env.REDIS_URL_VARIABLE, "").strip(), backend_env.redis_from_parts(environ)
    if url and parts and _redis_address(url) != _redis_address(parts):
        # The backend's config.py lets REDISHOST win, this project REDIS_URL: both must agree, or
        # progress and tasks would go to a Redis the backend does not read.
        return [f"{backend_env.REDIS_URL_VARIABLE} and REDISHOST/REDISPORT name different Redis servers "
                f"({_redis_address(url)} and {_redis_address(parts)})"]
    return []


def _flag_problems(environ: Mapping[str, str]) -> list[str]:
    """Each ``ROUTER_*`` variable on its own, so every bad one is named (a source stops at the first)."""
    from router.sources import EnvironmentSource  # it reads SETTING_VARIABLES from here

    problems = [f"{name} is not a flag variable (flags: {', '.join(FLAG_NAMES)})"
                for name in EnvironmentSource(environ).unknown_variables()]
    for flag in FLAG_NAMES:
        value = environ.get(env_name(flag), "")
        if value.strip():
            try:
                validate_values({flag: value})
            except FlagError as error:
                problems.append(f"{env_name(flag)}={value!r}: {error.problem}")
    return problems


def check_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """The router's wiring from the environment, or `ConfigurationError` naming every problem.

    Reads variables only (no network), so it belongs in the backend's startup: a deploy with a
    missing or invalid variable stops there instead of failing jobs.
    """
    environ = os.environ if environ is None else environ
    settings = Settings.from_environment(environ)
    problems = _problems(settings, environ)
    if problems:
        raise ConfigurationError(problems)
    return settings
