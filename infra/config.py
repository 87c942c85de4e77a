"""The stack configuration, validated before anything is declared.

A bad value found halfway through a program leaves a preview with half a plan and an error far
from its cause; a value AWS rejects is only found at `pulumi up`, after the adopted resources
are imported. So every key is checked here first, against the limits AWS enforces, and every
error names the key as `pulumi config` spells it. Unknown keys inside the `existing` and
`function` objects are errors too: a misspelt key would otherwise fall back to its default
without a word.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import pulumi

from processor.command import LONG_SIDE_RANGE
from processor.fanout import DEFAULT_MIN_DURATION_SECONDS, DEFAULT_MIN_SEGMENTS

NAMESPACE = "lambda-video-processor"

# Reads one raw configuration value by its full key ("ns:key"): a string, an object's JSON, or None.
RawConfig = Callable[[str], "str | None"]
# Whether a key was set with `pulumi config set --secret` (stored encrypted in the stack file).
IsSecret = Callable[[str], bool]

# The longest names derived from projectName must fit AWS: the artifacts bucket
# "{projectName}-artifacts-<7 random>" S3's 63 characters, the default role name
# "{projectName}-lambda-execution-role" IAM's 64.
PROJECT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
ENVIRONMENT = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
IAM_NAME = re.compile(r"[\w+=,.@-]{1,64}")
IAM_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
# An S3 key prefix that is safe inside an IAM resource: no wildcard, no policy variable, no
# leading slash (S3 keys have none), ending in "/" so "uploads" cannot also match "uploads-old/".
UPLOAD_PREFIX = re.compile(r"[A-Za-z0-9!_.'()-][A-Za-z0-9!_.'()/-]*/")
# redis://[[user]:password@]host[:port][/db] or rediss:// (TLS, as Railway's public proxy wants).
REDIS_URL = re.compile(r"rediss?://(?:[^@/\s]*@)?[A-Za-z0-9.-]+(?::\d{1,5})?(?:/\d{0,2})?")

# Google Cloud's rules for project ids and region names; the model name as the API spells it.
GOOGLE_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
GOOGLE_LOCATION = re.compile(r"[a-z][a-z0-9-]{0,39}")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
BASE_URL = re.compile(r"https?://[^\s]+")

LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)
# The pinned static ffmpeg in the layer is an x86-64 binary; an arm64 function could not run it.
ARCHITECTURES = ("x86_64",)


class ConfigError(pulumi.RunError):
    """Bad or missing configuration. A RunError, so `pulumi` prints the message without a traceback."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"configuration {key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class ExistingResources:
    """The backend's resources, created by its Terraform, that this stack adopts or references."""

    bucket_name: str
    table_name: str
    role_name: str
    policy_name: str
    upload_prefix: str


@dataclass(frozen=True)
class FunctionSettings:
    memory_mb: int
    timeout_seconds: int
    ephemeral_storage_mb: int
    architecture: str
    reserved_concurrency: int | None
    log_retention_days: int
    max_retry_attempts: int
    max_event_age_seconds: int
    max_output_long_side: int | None = None
    """VIDEO_MAX_LONG_SIDE for the processor; None keeps its default (1920)."""


@dataclass(frozen=True)
class TextVariationsSettings:
    """Where base_vary's model is (processor/text_model.py reads these as environment variables).

    Vertex AI needs ``credential_config``: Lambda has no Google credentials of its own, and a
    workload identity federation configuration (no secret in it) trades the function's AWS
    role for a Google token. Otherwise an API key, held as a Pulumi secret.
    """

    project: str | None = None
    location: str | None = None
    credential_config: dict[str, Any] | None = None
    model: str | None = None
    base_url: str | None = None
    timeout_seconds: int | None = None
    attempts: int | None = None
    api_key: str | None = field(default=None, repr=False)  # a credential: never printed


@dataclass(frozen=True)
class SweepSettings:
    """The stuck-job sweep's schedule (`infra/sweep.py`, `processor.sweep`)."""

    enabled: bool
    rate_minutes: int
    older_than_minutes: int
    action: str  # a key of SWEEP_ACTIONS
    max_redispatches: int

    @property
    def mode(self) -> str:
        return SWEEP_ACTIONS[self.action]


@dataclass(frozen=True)
class FanoutSettings:
    """When a job fans out over many invocations (`infra/state_machine.py`, `processor.fanout`).

    The defaults are argued in bench/README.md (fan-out): below two minutes of video or four
    segments, the single pass's wall time is already within the fan-out's fixed cost.
    """

    enabled: bool = True
    min_segments: int = DEFAULT_MIN_SEGMENTS
    min_duration_seconds: int = DEFAULT_MIN_DURATION_SECONDS
    max_concurrency: int = 60


@dataclass(frozen=True)
class GuardSettings:
    """The rollout guard's schedule (`infra/guard.py`, `router.guard`): how often, over which window."""

    enabled: bool
    rate_minutes: int
    window_minutes: int


# The config's spelling (camelCase, as every key) and the sweep event's mode.
SWEEP_ACTIONS = {"redispatch": "redispatch", "markFailed": "mark_failed", "report": "report"}


@dataclass(frozen=True)
class Settings:
    project_name: str
    environment: str
    region: str
    adopt_existing: bool
    existing: ExistingResources
    function: FunctionSettings
    railway_user_name: str | None
    sweep: SweepSettings
    fanout: FanoutSettings = FanoutSettings()
    guard: GuardSettings = GuardSettings(enabled=True, rate_minutes=15, window_minutes=60)
    # The Redis the function publishes progress to; it holds a password, so it is never printed.
    progress_redis_url: str | None = field(default=None, repr=False)
    text_variations: TextVariationsSettings = TextVariationsSettings()

    @property
    def function_name(self) -> str:
        return f"{self.project_name}-video-processor"

    @property
    def state_machine_name(self) -> str:
        return f"{self.project_name}-video-processor-fanout"

    @property
    def flags_parameter_name(self) -> str:
        return f"/{self.project_name}/{self.environment}/router-flags"

    @property
    def progress_redis_parameter_name(self) -> str:
        return f"/{self.project_name}/{self.environment}/progress-redis-url"

    @property
    def text_variations_api_key_parameter_name(self) -> str:
        return f"/{self.project_name}/{self.environment}/text-variations-api-key"


def _key(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def _text(key: str, value: Any, pattern: re.Pattern[str], expected: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(key, f"must be {expected}, got {value!r}")
    return value


def _integer(key: str, value: Any, low: int, high: int) -> int:
    # `pulumi config set --path` may store a number as a string; a YAML number arrives as int.
    if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key, f"must be a whole number from {low} to {high}, got {value!r}")
    return value


def _boolean(key: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(key, f"must be true or false, got {value!r}")


def _object(name: str, raw: str | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if not isinstance(value, dict):
        raise ConfigError(_key(name), f"must be an object with the keys {', '.join(allowed)}, got {raw!r}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(_key(f"{name}.{unknown[0]}"), f"unknown key; the keys are {', '.join(allowed)}")
    return value


def _existing(raw: str | None, project_name: str) -> ExistingResources:
    fields = ("bucketName", "tableName", "roleName", "policyName", "uploadPrefix")
    value = _object("existing", raw, fields)
    if value.get("bucketName") is None:
        raise ConfigError(_key("existing.bucketName"),
                          "is required: the backend's video bucket "
                          "(pulumi config set --path existing.bucketName <bucket>)")
    return ExistingResources(
        bucket_name=_text(_key("existing.bucketName"), value["bucketName"], BUCKET_NAME, "an S3 bucket name"),
        table_name=_text(_key("existing.tableName"), value.get("tableName", f"{project_name}-video-metadata"),
                         TABLE_NAME, "a DynamoDB table name"),
        role_name=_text(_key("existing.roleName"), value.get("roleName", f"{project_name}-lambda-execution-role"),
                        IAM_NAME, "an IAM role name"),
        policy_name=_text(_key("existing.policyName"), value.get("policyName", f"{project_name}-lambda-policy"),
                          IAM_POLICY_NAME, "an IAM policy name"),
        upload_prefix=_text(_key("existing.uploadPrefix"), value.get("uploadPrefix", "uploads/"), UPLOAD_PREFIX,
                            "an S3 key prefix ending in '/' (no wildcard, no leading '/')"),
    )


def _function(raw: str | None) -> FunctionSettings:
    fields = ("memoryMb", "timeoutSeconds", "ephemeralStorageMb", "architecture", "reservedConcurrency",
              "logRetentionDays", "maxRetryAttempts", "maxEventAgeSeconds", "maxOutputLongSide")
    value = _object("function", raw, fields)

    def key(name: str) -> str:
        return _key(f"function.{name}")

    architecture = value.get("architecture", "x86_64")
    if architecture not in ARCHITECTURES:
        raise ConfigError(key("architecture"), f"must be x86_64 (the layer's ffmpeg is an x86-64 binary), "
                                               f"got {architecture!r}")
    retention = _integer(key("logRetentionDays"), value.get("logRetentionDays", 30), 1, 3653)
    if retention not in LOG_RETENTION_DAYS:
        raise ConfigError(key("logRetentionDays"), f"must be one of CloudWatch's retention periods "
                                                   f"{LOG_RETENTION_DAYS}, got {retention}")
    reserved = value.get("reservedConcurrency")
    long_side = value.get("maxOutputLongSide")
    return FunctionSettings(
        memory_mb=_integer(key("memoryMb"), value.get("memoryMb", 3008), 128, 10240),
        timeout_seconds=_integer(key("timeoutSeconds"), value.get("timeoutSeconds", 900), 1, 900),
        ephemeral_storage_mb=_integer(key("ephemeralStorageMb"), value.get("ephemeralStorageMb", 10240),
                                      512, 10240),
        architecture=architecture,
        # 0 is allowed on purpose: it stops the function; queued events then age out into the failure queue.
        reserved_concurrency=None if reserved is None else _integer(key("reservedConcurrency"), reserved, 0, 100000),
        log_retention_days=retention,
        max_retry_attempts=_integer(key("maxRetryAttempts"), value.get("maxRetryAttempts", 2), 0, 2),
        max_event_age_seconds=_integer(key("maxEventAgeSeconds"), value.get("maxEventAgeSeconds", 6 * 3600),
                                       60, 6 * 3600),
        max_output_long_side=None if long_side is None else _integer(key("maxOutputLongSide"), long_side,
                                                                     *LONG_SIDE_RANGE),
    )


def _progress_redis_url(get: RawConfig, is_secret: IsSecret) -> str | None:
    key = _key("progressRedisUrl")
    value = get(key)
    if value is None:
        return None
    # The messages never repeat the value: it holds the Redis password.
    if not is_secret(key):
        raise ConfigError(key, "holds a password: set it with `pulumi config set --secret progressRedisUrl ...` "
                               "so the stack file keeps it encrypted")
    if not REDIS_URL.fullmatch(value.strip()):
        raise ConfigError(key, "must be a Redis URL, rediss://[:PASSWORD@]HOST:PORT[/DB] (or redis://)")
    return value.strip()


def _credential_config(key: str, value: Any) -> dict[str, Any]:
    """A federation configuration from AWS, as `gcloud iam workload-identity-pools create-cred-config --aws` writes."""
    if not isinstance(value, dict) or value.get("type") != "external_account":
        raise ConfigError(key, "must be a workload identity federation configuration (an object with "
                               "\"type\": \"external_account\"), never a service-account key")
    required = ("audience", "subject_token_type", "token_url", "credential_source")
    missing = [name for name in required if name not in value]
    if missing:
        raise ConfigError(key, f"lacks {', '.join(missing)}")
    source = value["credential_source"]
    if not isinstance(source, dict) or not str(source.get("environment_id", "")).startswith("aws"):
        raise ConfigError(f"{key}.credential_source", "must be AWS's (environment_id aws1): the function signs "
                                                      "in with its own role")
    return value


def _text_variations(raw: str | None, api_key: str | None, api_key_is_secret: bool) -> TextVariationsSettings:
    fields = ("project", "location", "credentialConfig", "model", "baseUrl", "timeoutSeconds", "attempts")
    value = _object("textVariations", raw, fields)

    def key(name: str) -> str:
        return _key(f"textVariations.{name}")

    def optional(name: str, pattern: re.Pattern[str], expected: str) -> str | None:
        return None if value.get(name) is None else _text(key(name), value[name], pattern, expected)

    project = optional("project", GOOGLE_PROJECT, "a Google Cloud project id")
    credential_config = value.get("credentialConfig")
    if project and credential_config is None:
        raise ConfigError(key("credentialConfig"), "is required with project: Lambda has no Google credentials of "
                                                   "its own (docs/deploying.md, base_vary's text variations)")
    if credential_config is not None and not project:
        raise ConfigError(key("project"), "is required with credentialConfig")
    if api_key is not None:
        if not api_key_is_secret:
            raise ConfigError(_key("textVariationsApiKey"), "must be set as a secret "
                                                            "(pulumi config set --secret textVariationsApiKey ...)")
        if project:
            raise ConfigError(_key("textVariationsApiKey"), "and textVariations.project are two ways to reach the "
                                                            "model: set one")
    return TextVariationsSettings(
        project=project,
        location=optional("location", GOOGLE_LOCATION, "a Google Cloud location such as us-central1 or global"),
        credential_config=None if credential_config is None else _credential_config(key("credentialConfig"),
                                                                                      credential_config),
        model=optional("model", MODEL_NAME, "a model name such as gemini-2.5-flash"),
        base_url=optional("baseUrl", BASE_URL, "an http(s) URL"),
        timeout_seconds=None if value.get("timeoutSeconds") is None else _integer(
            key("timeoutSeconds"), value["timeoutSeconds"], 1, 120),
        attempts=None if value.get("attempts") is None else _integer(key("attempts"), value["attempts"], 1, 5),
        api_key=api_key,
    )


def _enabled(key: str, value: Any) -> bool:
    """An object's ``enabled``: a YAML boolean, or its text when set with `pulumi config set --path`."""
    if isinstance(value, str):
        value = _boolean(key, value, default=True)
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")
    return value


def _fanout(raw: str | None) -> FanoutSettings:
    fields = ("enabled", "minSegments", "minDurationSeconds", "maxConcurrency")
    value = _object("fanout", raw, fields)

    def key(name: str) -> str:
        return _key(f"fanout.{name}")

    return FanoutSettings(
        enabled=_enabled(key("enabled"), value.get("enabled", True)),
        min_segments=_integer(key("minSegments"), value.get("minSegments", FanoutSettings.min_segments), 2, 10000),
        min_duration_seconds=_integer(key("minDurationSeconds"),
                                      value.get("minDurationSeconds", FanoutSettings.min_duration_seconds), 0, 86400),
        # A distributed Map runs at most 10,000 child executions at once.
        max_concurrency=_integer(key("maxConcurrency"), value.get("maxConcurrency", FanoutSettings.max_concurrency),
                                 1, 10000),
    )


def _sweep(raw: str | None) -> SweepSettings:
    fields = ("enabled", "rateMinutes", "olderThanMinutes", "action", "maxRedispatches")
    value = _object("sweep", raw, fields)

    def key(name: str) -> str:
        return _key(f"sweep.{name}")

    enabled = _enabled(key("enabled"), value.get("enabled", True))
    action = value.get("action", "redispatch")
    if action not in SWEEP_ACTIONS:
        raise ConfigError(key("action"), f"must be one of {', '.join(SWEEP_ACTIONS)}, got {action!r}")
    return SweepSettings(
        enabled=enabled,
        rate_minutes=_integer(key("rateMinutes"), value.get("rateMinutes", 15), 1, 24 * 60),
        older_than_minutes=_integer(key("olderThanMinutes"), value.get("olderThanMinutes", 15), 1, 7 * 24 * 60),
        action=action,
        max_redispatches=_integer(key("maxRedispatches"), value.get("maxRedispatches", 2), 0, 10),
    )


def _guard(raw: str | None) -> GuardSettings:
    value = _object("guard", raw, ("enabled", "rateMinutes", "windowMinutes"))

    def key(name: str) -> str:
        return _key(f"guard.{name}")

    return GuardSettings(
        enabled=_enabled(key("enabled"), value.get("enabled", True)),
        rate_minutes=_integer(key("rateMinutes"), value.get("rateMinutes", 15), 1, 24 * 60),
        window_minutes=_integer(key("windowMinutes"), value.get("windowMinutes", 60), 5, 7 * 24 * 60),
    )



def load(get: RawConfig, is_secret: IsSecret = lambda key: False) -> Settings:
    """Validate the stack configuration read through ``get``; raise ConfigError naming the first bad key."""
    def scalar(name: str, default: str) -> str:
        value = get(_key(name))
        return default if value is None else value

    project_name = _text(_key("projectName"), scalar("projectName", "easy-video-share"), PROJECT_NAME,
                         "1 to 40 lowercase letters, digits or hyphens (it prefixes S3 and IAM names)")
    environment = _text(_key("environment"), scalar("environment", "dev"), ENVIRONMENT,
                        "1 to 32 lowercase letters, digits or hyphens")
    region = get("aws:region")
    if region is None:
        raise ConfigError("aws:region", "is required (pulumi config set aws:region <region>)")
    adopt_existing = _boolean(_key("adoptExisting"), get(_key("adoptExisting")), default=True)
    if adopt_existing and get("aws:defaultTags") is not None:
        # Provider default tags become a tag update on every taggable resource, the adopted ones
        # included: exactly the modification adopting must never make.
        raise ConfigError("aws:defaultTags", "must not be set while adoptExisting is true: it would retag "
                                             "(modify) the adopted bucket, table and role")
    railway_user = get(_key("railwayUserName"))
    function, fanout = _function(get(_key("function"))), _fanout(get(_key("fanout")))
    reserved = function.reserved_concurrency
    # 0 is the function's emergency stop (docs/deploying.md): nothing runs, nothing to share.
    if fanout.enabled and reserved and fanout.max_concurrency >= reserved:
        # One job's items would hold every instance: its own finish, other jobs' starts and
        # prepares, and the sweep would be throttled until the items end.
        raise ConfigError(_key("fanout.maxConcurrency"), f"must be below function.reservedConcurrency ({reserved}), "
                                                         f"got {fanout.max_concurrency}")
    return Settings(
        project_name=project_name,
        environment=environment,
        region=_text("aws:region", region, REGION, "an AWS region such as us-east-1"),
        adopt_existing=adopt_existing,
        existing=_existing(get(_key("existing")), project_name),
        function=function,
        railway_user_name=None if railway_user is None else _text(
            _key("railwayUserName"), railway_user, IAM_NAME, "an IAM user name"),
        progress_redis_url=_progress_redis_url(get, is_secret),
        text_variations=_text_variations(get(_key("textVariations")), get(_key("textVariationsApiKey")),
                                         is_secret(_key("textVariationsApiKey"))),
        sweep=_sweep(get(_key("sweep"))),
        fanout=fanout,
        guard=_guard(get(_key("guard"))),
    )


def from_stack() -> Settings:
    """The current stack's settings, as `pulumi preview` and `pulumi up` pass them to the program."""
    # The CLI names the secret keys in PULUMI_CONFIG_SECRET_KEYS; set_all_config (mocks, automation) in the runtime.
    return load(pulumi.runtime.get_config, lambda key: key in pulumi.runtime.get_config_secret_keys_env()
                or pulumi.runtime.is_config_secret(key))
