"""The flag set operators toggle to move load, validated as a whole.

Values arrive as JSON (the SSM parameter), as strings (``ROUTER_*`` variables, the command
line) or as Python values (tests, `RouterFlags(...)`); one validator per flag accepts all three
so every source means the same thing by the same text. A change is validated completely before
it is used: a bad value is rejected with a `FlagError` naming the flag, never half-applied.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from router.errors import FlagError

PHASES = ("celery", "canary", "lambda", "lambda_only")
# What each phase means, for operators (`python -m router phase --help`, docs/router.md).
PHASE_HELP = {
    "celery": "every job to Celery, the backend that runs today (the safe default)",
    "canary": "phase 1: Lambda for lambda_percent of jobs and for lambda_users, Celery for the rest",
    "lambda": "phase 2: every job to Lambda except those over the size limit or on celery_users; "
              "Celery stays as the emergency fallback",
    "lambda_only": "phase 3: Celery retired; every job to Lambda, and only kill_switch still picks Celery",
}
STICKY_KEYS = ("user_id", "job_id")
# What a job of unknown size does: go to Celery, or be treated as small and follow the rollout.
UNKNOWN_SIZE_POLICIES = ("celery", "rollout")
# Sizes count as Lambda does for /tmp (MB = MiB); /tmp can be at most 10,240 MB.
MB = 1024 * 1024
MAX_LAMBDA_TMP_MB = 10_240
MAX_SALT_CHARS = 128
# What the guard (`router.guard`) does when Lambda breaches its thresholds.
GUARD_ACTIONS = ("kill_switch", "lower_percent")
ENV_PREFIX = "ROUTER_"

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in options:
            raise FlagError(name, f"must be one of {', '.join(options)}, got {value!r}")
        return value
    return check


def _number(name: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise FlagError(name, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FlagError(name, f"must be a finite number, got {value!r}")
    return float(value)


def _percent(name: str, value: Any) -> float:
    percent = _number(name, value)
    if not 0 <= percent <= 100:
        raise FlagError(name, f"must be between 0 and 100, got {value!r}")
    # Steps of 0.01 map exactly onto the 10,000 rollout buckets.
    if abs(percent * 100 - round(percent * 100)) > 1e-6:
        raise FlagError(name, f"must be in steps of 0.01, got {value!r}")
    return round(percent, 2)


def _size_mb(name: str, value: Any) -> float:
    size = _number(name, value)
    if not 0 < size <= MAX_LAMBDA_TMP_MB:
        raise FlagError(name, f"must be more than 0 and at most {MAX_LAMBDA_TMP_MB} (Lambda's largest /tmp), "
                              f"got {value!r}")
    return size


def _whole(name: str, value: Any) -> int:
    number = _number(name, value)
    if number != int(number) or number < 1:
        raise FlagError(name, f"must be a whole number of at least 1, got {value!r}")
    return int(number)


def _ratio(name: str, value: Any) -> float:
    ratio = _number(name, value)
    if ratio < 1:
        raise FlagError(name, f"must be at least 1 (Lambda as slow as Celery), got {value!r}")
    return ratio


def _points(name: str, value: Any) -> float:
    points = _number(name, value)
    if not 0 <= points <= 100:
        raise FlagError(name, f"must be between 0 and 100 percentage points, got {value!r}")
    return points


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise FlagError(name, f"must be true or false, got {value!r}")


_JSON_KINDS = {dict: "a JSON object", str: "a JSON string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def _users(name: str, value: Any) -> frozenset[str]:
    """A JSON array, or a comma-separated string (how a Railway variable is easiest to type).

    Text that starts like JSON (``[``, ``{``, ``"``) is read as JSON, so an object is refused
    rather than taken for one user id that happens to contain braces.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{", '"')):
            try:
                value = json.loads(text)
            except ValueError as error:
                raise FlagError(name, f"is not valid JSON: {error}") from None
        else:
            value = text.split(",")
    if not isinstance(value, (list, tuple, set, frozenset)):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        raise FlagError(name, f"must be a list of user ids (a JSON array or comma-separated), got {kind}")
    users = set()
    for user in value:
        if isinstance(user, int) and not isinstance(user, bool):
            user = str(user)
        if not isinstance(user, str):
            raise FlagError(name, f"must hold user ids as strings, got {user!r}")
        if user.strip():
            users.add(user.strip())
    return frozenset(users)


def _salt(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_SALT_CHARS:
        raise FlagError(name, f"must be a non-empty string of at most {MAX_SALT_CHARS} characters, got {value!r}")
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "phase": _choice(PHASES),
    "lambda_percent": _percent,
    "sticky_key": _choice(STICKY_KEYS),
    "salt": _salt,
    "lambda_users": _users,
    "celery_users": _users,
    "max_lambda_file_size_mb": _size_mb,
    "unknown_size": _choice(UNKNOWN_SIZE_POLICIES),
    "fallback_to_celery": _bool,
    "kill_switch": _bool,
    "guard_min_jobs": _whole,
    "guard_failure_points": _points,
    "guard_p95_ratio": _ratio,
    "guard_action": _choice(GUARD_ACTIONS),
    "guard_fallback_percent": _percent,
    "auto_advance": _bool,
}
FLAG_NAMES = tuple(_CHECKS)
# What each flag means and takes, for operators (`python -m router flags set --help`, docs/router.md).
FLAG_HELP = {
    "phase": "celery | canary | lambda | lambda_only (default celery): the migration phase, see `phase --help`",
    "lambda_percent": "0 to 100 in steps of 0.01 (default 0): the share of jobs sent to Lambda in canary",
    "sticky_key": "user_id | job_id (default user_id): what the rollout buckets; all of a user's jobs land "
                  "the same way, a job without a user is bucketed by its job id",
    "salt": "text of 1 to 128 characters (default video-router): changing it reshuffles who is in the rollout",
    "lambda_users": "user ids, comma-separated or a JSON array (default none): always Lambda in canary and lambda",
    "celery_users": "user ids, comma-separated or a JSON array (default none): always Celery while Celery exists "
                    "(wins over lambda_users)",
    "max_lambda_file_size_mb": "more than 0, at most 10240 (default 250): larger files go to Celery while Celery "
                               "exists (Lambda's /tmp and 15 minutes); MB = 1,048,576 bytes",
    "unknown_size": "celery | rollout (default celery): a job whose size neither the request nor S3 gives goes "
                    "to Celery, or is treated as small and follows the rollout",
    "fallback_to_celery": "true | false (default true): a job Lambda did not take goes to Celery while Celery exists",
    "kill_switch": "true | false (default false): everything to Celery now, whatever else is set",
    "guard_min_jobs": "a whole number, at least 1 (default 20): the guard judges nothing until each backend has "
                      "finished this many jobs in its window",
    "guard_failure_points": "0 to 100 (default 5): the guard trips when Lambda's failure rate exceeds Celery's by "
                            "more than this many percentage points",
    "guard_p95_ratio": "at least 1 (default 1.5): the guard trips when Lambda's p95 processing time exceeds this "
                       "many times Celery's",
    "guard_action": "kill_switch | lower_percent (default kill_switch): what a tripped guard does; lower_percent "
                    "goes back to canary at guard_fallback_percent",
    "guard_fallback_percent": "0 to 100 in steps of 0.01 (default 1): lambda_percent after a lower_percent trip",
    "auto_advance": "true | false (default false): the guard raises lambda_percent one step (1, 5, 10, 25, 50, "
                    "100) after a healthy window; never past the canary phase",
}


def validate_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check a partial flag set (one source's values); the first bad one rejects it all."""
    unknown = sorted(set(values) - set(_CHECKS))
    if unknown:
        raise FlagError(unknown[0], f"is not a flag (flags: {', '.join(FLAG_NAMES)})")
    return {name: _CHECKS[name](name, value) for name, value in values.items()}


def plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated values as JSON values (lists sorted), as the SSM parameter stores them."""
    return {name: sorted(value) if isinstance(value, frozenset) else value for name, value in values.items()}


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.upper()


@dataclass(frozen=True)
class Snapshot:
    """One source's validated values; ``source`` says where they came from, for operators."""

    source: str
    values: Mapping[str, Any]
    version: str


@dataclass(frozen=True)
class RouterFlags:
    """The effective flags. The defaults are the safe state: everything on Celery.

    ``version`` is not a flag: it names the sources that produced the set (for example
    ``ssm:7+env:1f2e3d4c``) so each decision can be traced to the flags that made it.
    """

    phase: str = "celery"
    lambda_percent: float = 0.0
    sticky_key: str = "user_id"
    salt: str = "video-router"
    lambda_users: frozenset[str] = frozenset()
    celery_users: frozenset[str] = frozenset()
    # An input plus its segments must fit in Lambda's /tmp (512 MB unless raised).
    max_lambda_file_size_mb: float = 250.0
    unknown_size: str = "celery"
    fallback_to_celery: bool = True
    kill_switch: bool = False
    # The guard's thresholds and actions (`router.guard`, docs/router.md "Deciding the next step").
    guard_min_jobs: int = 20
    guard_failure_points: float = 5.0
    guard_p95_ratio: float = 1.5
    guard_action: str = "kill_switch"
    guard_fallback_percent: float = 1.0
    auto_advance: bool = False
    version: str = field(default="defaults", compare=False)

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))

    @property
    def celery_exists(self) -> bool:
        return self.phase != "lambda_only"

    @classmethod
    def layered(cls, layers: Iterable[Snapshot]) -> tuple[RouterFlags, dict[str, str]]:
        """Merge sources, lowest precedence first; also say which source set each flag."""
        merged: dict[str, Any] = {}
        origins = {name: "default" for name in FLAG_NAMES}
        versions = []
        for layer in layers:
            merged.update(layer.values)
            origins.update(dict.fromkeys(layer.values, layer.source))
            versions.append(layer.version)
        return cls(**merged, version="+".join(versions) or "defaults"), origins

    def to_plain(self) -> dict[str, Any]:
        return plain_values({name: getattr(self, name) for name in FLAG_NAMES})
