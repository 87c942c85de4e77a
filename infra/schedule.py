"""EventBridge Scheduler invoking a function at a rate: the stuck-job sweep's and the guard's.

Each schedule has a role of its own that may invoke its one function and nothing else. A missed
run is not retried: the next one comes at the rate and finds the same rows.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import pulumi
import pulumi_aws as aws

from infra.iam import document, scheduler_statements

SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"


def rate(minutes: int) -> str:
    # EventBridge refuses "rate(1 minutes)": the unit is singular for a value of 1.
    return f"rate({minutes} {'minute' if minutes == 1 else 'minutes'})"


def declare(prefix: str, resource_name: str, *, name: str, description: str, function: aws.lambda_.Function,
            function_name: str, invoke_policy_name: str, rate_minutes: int, event: dict[str, Any],
            role_name: str | None = None, depends_on: Sequence[pulumi.Resource] = ()) -> aws.scheduler.Schedule:
    """``prefix`` names the scheduler's role resources (``{prefix}-scheduler-role``, ``-invoke``);
    the role is named ``role_name``, else like the schedule."""
    scheduler_role = aws.iam.Role(
        f"{prefix}-scheduler-role",
        name=role_name or name,
        description=f"EventBridge Scheduler's role for {name}: invokes {function_name} only.",
        assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": SCHEDULER_PRINCIPAL}, "Action": "sts:AssumeRole"}]}),
    )
    invoke = aws.iam.RolePolicy(
        f"{prefix}-scheduler-invoke",
        name=invoke_policy_name,
        role=scheduler_role.id,
        policy=function.arn.apply(lambda arn: document(scheduler_statements(arn))),
    )
    return aws.scheduler.Schedule(
        resource_name,
        name=name,
        description=description,
        schedule_expression=rate(rate_minutes),
        flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
        target=aws.scheduler.ScheduleTargetArgs(
            arn=function.arn,
            role_arn=scheduler_role.arn,
            input=json.dumps(event),
            retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(maximum_retry_attempts=0,
                                                                     maximum_event_age_in_seconds=60),
        ),
        state="ENABLED",
        # The first run must find its permissions in place.
        opts=pulumi.ResourceOptions(depends_on=[*depends_on, invoke]),
    )
