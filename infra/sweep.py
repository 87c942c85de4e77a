"""The stuck-job sweep on a schedule: EventBridge Scheduler invokes the function with a sweep event.

The function's handler runs `processor.sweep` for ``{"action": "sweep", ...}`` before the job
path; re-dispatching there means the function invoking itself with the job's stored event, the
one backend it can reach (its package holds neither the router nor a broker client).

Least privilege: the scheduler's role may invoke this function and nothing else; the function
gets ``dynamodb:Scan`` on the job table, and ``lambda:InvokeFunction`` on itself only when the
sweep re-dispatches, in a policy of their own that exists only while the sweep is enabled.
Disabling the sweep (``sweep.enabled: false``) removes the schedule and these permissions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import Settings
from infra.existing import Existing
from infra.iam import document, scheduler_statements, sweep_statements

SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
_DOES = {"redispatch": "re-dispatches them", "mark_failed": "marks them FAILED", "report": "reports them"}


@dataclass(frozen=True)
class Sweep:
    schedule: aws.scheduler.Schedule
    policy: aws.iam.Policy


def rate(minutes: int) -> str:
    # EventBridge refuses "rate(1 minutes)": the unit is singular for a value of 1.
    return f"rate({minutes} {'minute' if minutes == 1 else 'minutes'})"


def event(settings: Settings) -> dict[str, Any]:
    """What the schedule sends; `processor.sweep.scheduled_sweep` reads it."""
    return {"action": "sweep", "mode": settings.sweep.mode, "older_than_minutes": settings.sweep.older_than_minutes,
            "max_redispatches": settings.sweep.max_redispatches}


def declare(settings: Settings, existing: Existing, function: aws.lambda_.Function) -> Sweep | None:
    if not settings.sweep.enabled:
        return None
    name = f"{settings.function_name}-sweep"
    redispatch = settings.sweep.mode == "redispatch"
    policy = aws.iam.Policy(
        "video-processor-sweep-policy",
        name=name,
        description=f"What the scheduled stuck-job sweep of {settings.function_name} needs; owned by this stack.",
        policy=pulumi.Output.all(existing.table.arn, function.arn).apply(
            lambda arns: document(sweep_statements(arns[0], arns[1], redispatch))),
    )
    attachment = aws.iam.RolePolicyAttachment(
        "video-processor-sweep-policy-attachment",
        role=existing.role.name,
        policy_arn=policy.arn,
    )
    scheduler_role = aws.iam.Role(
        "sweep-scheduler-role",
        name=name,
        description=f"EventBridge Scheduler's role for {name}: invokes {settings.function_name} only.",
        assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": SCHEDULER_PRINCIPAL}, "Action": "sts:AssumeRole"}]}),
    )
    invoke = aws.iam.RolePolicy(
        "sweep-scheduler-invoke",
        name="invoke-video-processor",
        role=scheduler_role.id,
        policy=function.arn.apply(lambda arn: document(scheduler_statements(arn))),
    )
    schedule = aws.scheduler.Schedule(
        "video-processor-sweep",
        name=name,
        description=f"Finds jobs stuck QUEUED or PROCESSING and {_DOES[settings.sweep.mode]} (processor.sweep).",
        schedule_expression=rate(settings.sweep.rate_minutes),
        flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
        target=aws.scheduler.ScheduleTargetArgs(
            arn=function.arn,
            role_arn=scheduler_role.arn,
            input=json.dumps(event(settings)),
            # A missed run is not worth a retry: the next one comes at the rate and finds the same rows.
            retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(maximum_retry_attempts=0,
                                                                     maximum_event_age_in_seconds=60),
        ),
        state="ENABLED",
        # The first run must find its permissions in place.
        opts=pulumi.ResourceOptions(depends_on=[attachment, invoke]),
    )
    return Sweep(schedule=schedule, policy=policy)
