"""The routing decision: pure, no I/O, microseconds, so it can run on every upload.

Rules, first match wins:

1. ``kill_switch``: everything to Celery, whatever else is set.
2. ``phase``: ``celery`` sends everything to Celery; ``lambda_only`` everything to Lambda (Celery
   is retired, so no later rule can pick it). ``canary`` and ``lambda`` go on.
3. User lists: ``celery_users`` to Celery (checked first: a user on both lists stays on the
   backend that exists today), then ``lambda_users`` to Lambda.
4. Size: a file over ``max_lambda_file_size_mb`` to Celery (Lambda's /tmp and 15 minutes are
   hard ceilings); a file of unknown size to Celery when ``unknown_size`` is ``celery``.
5. Rollout: in ``lambda`` everything left goes to Lambda; in ``canary`` the salted bucket of the
   sticky key decides (`router.rollout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from router.flags import MB, RouterFlags
from router.request import field_of
from router.rollout import in_rollout

# Larger than any upload: a size at which only the size rule can pick Celery.
_LARGEST = 2**63
REASONS = ("kill_switch", "phase", "user_allow", "user_deny", "size_limit", "unknown_size",
           "rollout_in", "rollout_out", "fallback")
BACKENDS = ("lambda", "celery")


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a job goes and why; ``fell_back`` and ``error`` say a Lambda send failed."""

    backend: str
    reason: str
    fell_back: bool = False
    error: str | None = None
    flags_version: str = "defaults"


def rollout_key(request: Any, flags: RouterFlags) -> str:
    """The sticky key's value; a job without a user is bucketed by its job id."""
    value = field_of(request, flags.sticky_key)
    if value is None:
        value = field_of(request, "job_id")
    return str(value)


def decide(request: Any, flags: RouterFlags) -> Decision:
    version = flags.version
    if flags.kill_switch:
        return Decision("celery", "kill_switch", flags_version=version)
    phase = flags.phase
    if phase == "celery":
        return Decision("celery", "phase", flags_version=version)
    if phase == "lambda_only":
        return Decision("lambda", "phase", flags_version=version)

    user = field_of(request, "user_id")
    if user is not None:
        user = str(user)
        if user in flags.celery_users:
            return Decision("celery", "user_deny", flags_version=version)
        if user in flags.lambda_users:
            return Decision("lambda", "user_allow", flags_version=version)

    size = field_of(request, "file_size")
    if isinstance(size, int) and not isinstance(size, bool):
        if size > flags.max_lambda_file_size_mb * MB:
            return Decision("celery", "size_limit", flags_version=version)
    elif flags.unknown_size == "celery":
        return Decision("celery", "unknown_size", flags_version=version)

    if phase == "lambda":
        return Decision("lambda", "phase", flags_version=version)
    if in_rollout(flags.salt, rollout_key(request, flags), flags.lambda_percent):
        return Decision("lambda", "rollout_in", flags_version=version)
    return Decision("celery", "rollout_out", flags_version=version)


def size_decides(fields: Mapping[str, Any], flags: RouterFlags) -> bool:
    """Whether the file size can change the backend of this job (so an unknown one is worth a lookup).

    Decided by the rules themselves: the smallest and the largest size lead to different backends.
    """
    return (decide({**fields, "file_size": 0}, flags).backend
            != decide({**fields, "file_size": _LARGEST}, flags).backend)
