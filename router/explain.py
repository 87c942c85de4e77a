"""Why a job goes where it goes, in words an operator can check against the flags."""

from __future__ import annotations

from typing import Any

from router.decide import Decision, decide, rollout_key
from router.flags import RouterFlags
from router.request import field_of
from router.rollout import BUCKETS, bucket, threshold
from router.sizes import format_size

_PHASES = {
    "celery": "phase is celery: every job goes to Celery",
    "lambda": "phase is lambda: every job within the size limit goes to Lambda, Celery is the fallback",
    "lambda_only": "phase is lambda_only: every job goes to Lambda, Celery is retired",
}


def _why(request: Any, flags: RouterFlags, decision: Decision) -> str:
    reason = decision.reason
    if reason == "kill_switch":
        return "kill_switch is on: every job goes to Celery, whatever else is set"
    if reason == "phase":
        return _PHASES[flags.phase]
    if reason in ("user_deny", "user_allow"):
        listed = "celery_users" if reason == "user_deny" else "lambda_users"
        return f"user {field_of(request, 'user_id')} is in {listed}"
    if reason == "size_limit":
        return (f"the file ({format_size(field_of(request, 'file_size'))}) is over max_lambda_file_size_mb "
                f"({flags.max_lambda_file_size_mb:g} MB)")
    if reason == "unknown_size":
        return "the file size is unknown and unknown_size is celery"
    key = rollout_key(request, flags)
    key_name = flags.sticky_key if field_of(request, flags.sticky_key) is not None else "job_id (no user)"
    where = "below" if reason == "rollout_in" else "not below"
    return (f"{key_name} {key} is in bucket {bucket(flags.salt, key)} of {BUCKETS} (salt {flags.salt!r}), "
            f"{where} {threshold(flags.lambda_percent)} (lambda_percent {flags.lambda_percent:g})")


def explain(request: Any, flags: RouterFlags) -> list[str]:
    decision = decide(request, flags)
    return [f"{decision.backend} ({decision.reason})", f"  {_why(request, flags, decision)}",
            f"  flags version {flags.version}"]
