"""The rollout guard on a schedule: a small function of its own that runs `router.guard` every few minutes.

Why not the processor's function, whose schedule already runs the sweep: the guard writes the
routing flags, and the function that handles every upload must not be able to flip them. So the
guard gets its own role, which may scan the job table, read and write the flags parameter and
the verdict parameter, and write its own logs, nothing else; and its own package (the router and
the processor's modules, no dependencies: `infra.function_package.build_guard`), leaving the
processor's package as it was. The verdict parameter is created empty here and written by the
guard; like the flags, its value is the guard's, not the stack's (``ignore_changes``).

Disabling the guard (``guard.enabled: false``) removes all of it; the flags keep their values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import alarms, schedule
from infra.artifacts import Artifact
from infra.config import Settings
from infra.existing import Existing
from infra.function import RUNTIME
from infra.iam import document, guard_statements

HANDLER = "router.scheduled.lambda_handler"
# Pure Python reading one page of rows at a time: the smallest memory does, and a Scan of a large
# table gets minutes, not the 3-second default.
MEMORY_MB = 256
TIMEOUT_SECONDS = 300
# `router.guard_run.VERDICT_SUFFIX`: where the router looks for the verdict.
VERDICT_SUFFIX = "-guard"
ASSUME_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@dataclass(frozen=True)
class Guard:
    function: aws.lambda_.Function
    verdict: aws.ssm.Parameter
    alarm: aws.cloudwatch.MetricAlarm


def event(settings: Settings) -> dict:
    """What the schedule sends; `router.scheduled.lambda_handler` reads it."""
    return {"window_minutes": settings.guard.window_minutes}


def declare(settings: Settings, existing: Existing, flags: aws.ssm.Parameter, code: Artifact) -> Guard | None:
    if not settings.guard.enabled:
        return None
    name = f"{settings.function_name}-guard"
    verdict = aws.ssm.Parameter(
        "router-guard-verdict",
        name=f"{settings.flags_parameter_name}{VERDICT_SUFFIX}",
        type="String",
        value="{}",
        description=f"The rollout guard's last verdict (JSON) on {settings.flags_parameter_name}; written by {name}",
        opts=pulumi.ResourceOptions(ignore_changes=["value"]),
    )
    log_group = aws.cloudwatch.LogGroup(
        "router-guard-logs",
        name=f"/aws/lambda/{name}",
        retention_in_days=settings.function.log_retention_days,
    )
    role = aws.iam.Role(
        "router-guard-role",
        name=name,
        description=f"The rollout guard of {settings.function_name}: reads job rows, writes the router's flags.",
        assume_role_policy=json.dumps(ASSUME_LAMBDA),
    )
    policy = aws.iam.RolePolicy(
        "router-guard-policy",
        name="router-guard",
        role=role.id,
        policy=pulumi.Output.all(existing.table.arn, flags.arn, verdict.arn, log_group.arn).apply(
            lambda arns: document(guard_statements(*arns))),
    )
    function = aws.lambda_.Function(
        "router-guard",
        name=name,
        runtime=RUNTIME,
        handler=HANDLER,
        role=role.arn,
        code=pulumi.FileArchive(str(code.path)),
        source_code_hash=code.source_code_hash,
        memory_size=MEMORY_MB,
        timeout=TIMEOUT_SECONDS,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables={
            "DYNAMODB_TABLE_NAME": settings.existing.table_name,
            "ROUTER_FLAGS_PARAMETER": settings.flags_parameter_name,
        }),
        opts=pulumi.ResourceOptions(depends_on=[log_group, policy]),
    )
    schedule.declare(
        "guard", "router-guard-schedule",
        name=name,
        description="Compares Lambda with Celery over the last "
                    f"{settings.guard.window_minutes} minutes and trips the kill switch on a regression (router.guard).",
        function=function, function_name=name, invoke_policy_name="invoke-router-guard",
        # The function's role already bears the guard's name; IAM role names are unique per account.
        role_name=f"{name}-scheduler",
        rate_minutes=settings.guard.rate_minutes, event=event(settings),
    )
    # A guard that cannot run is no safety net: say so like any other failure.
    failing = alarms.alarm("router-guard-errors", f"{name}-errors",
                           "The rollout guard failed: Lambda is running without its safety net.",
                           "AWS/Lambda", "Errors", {"FunctionName": function.name}, "Sum")
    return Guard(function=function, verdict=verdict, alarm=failing)
