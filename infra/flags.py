"""The router's live flags: one SSM parameter that operators change to move load between backends.

Created once with the safe default (everything to Celery, the backend that runs today) and then
never written again: ``value`` is in ``ignore_changes``, so a `pulumi up` during a rollout does
not silently send every job back to Celery, nor a rollback to Lambda. Operators own the value;
this stack owns only that the parameter exists.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.config import Settings

SAFE_DEFAULT = {"phase": "celery"}


def declare(settings: Settings) -> aws.ssm.Parameter:
    return aws.ssm.Parameter(
        "router-flags",
        name=settings.flags_parameter_name,
        type="String",
        value=json.dumps(SAFE_DEFAULT),
        description=f"Routing flags (JSON) read by the backend's router for {settings.function_name}; "
                    "set by operators, created with the safe default",
        opts=pulumi.ResourceOptions(ignore_changes=["value"]),
    )
