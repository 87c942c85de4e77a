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

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import Settings
from infra.existing import Existing
from infra import schedule as schedules
from infra.iam import document, sweep_statements
_DOES = {"redispatch": "re-dispatches them", "mark_failed": "marks them FAILED", "report": "reports them"}


@dataclass(frozen=True)
class Sweep:
    schedule: aws.scheduler.Schedule
    policy: aws.iam.Policy


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
    schedule = schedules.declare(
        "sweep", "video-processor-sweep",
        name=name,
        description=f"Finds jobs stuck QUEUED or PROCESSING and {_DOES[settings.sweep.mode]} (processor.sweep).",
        function=function, function_name=settings.function_name, invoke_policy_name="invoke-video-processor",
        rate_minutes=settings.sweep.rate_minutes, event=event(settings), depends_on=[attachment],
    )
    return Sweep(schedule=schedule, policy=policy)
