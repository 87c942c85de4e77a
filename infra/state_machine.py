"""The fan-out state machine: one job's segments encoded by many invocations of the function.

A Standard workflow (``{projectName}-video-processor-fanout``), started by the function itself
when a job qualifies (`processor.fanout`): prepare -> a Map over the items -> finish, with a
Catch on each that leads to the fail step, which marks the job FAILED and removes its keys.
The Map is inline while the items fit one (`processor.fanout.inline`), distributed with an S3
item reader above.

``definition`` is pure and is what the tests run in moto's Step Functions interpreter
(tests/e2e/test_fanout.py), so the definition that runs locally is the one declared here.

Least privilege: the machine's role invokes this function only, starts and watches its own
child executions (a distributed Map runs each batch as one) and reads the item lists; the
function may start executions of this machine only, and write the item lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import Settings
from infra.existing import Existing
from infra.iam import OUTPUT_PREFIX, document, statement
from processor.fanout import FAIL, FINISH, INLINE_MAX_ITEMS, ITEM, ITEMS_KEY, PREPARE, STEP_FAILED, state_machine_arn

STATES_PRINCIPAL = "states.amazonaws.com"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
ITEMS_PREFIX = ITEMS_KEY.split("{", 1)[0]
# Lambda's own transient failures (AWS's recommended retry for lambda:invoke), and the
# function's: StepRetry is a TransientError in a fan-out step; Runtime.ExitError is an
# invocation whose process died (killed, out of memory).
_SERVICE_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                   "Lambda.ClientExecutionTimeoutException", "Lambda.TooManyRequestsException"]
_FUNCTION_ERRORS = ["StepRetry", "Runtime.ExitError"]
_CATCH = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Fail"}]


@dataclass(frozen=True)
class FanoutMachine:
    state_machine: aws.sfn.StateMachine
    role: aws.iam.Role
    start_policy: aws.iam.Policy


def _retry() -> list[dict[str, Any]]:
    return [
        {"ErrorEquals": _SERVICE_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2.0},
        {"ErrorEquals": _FUNCTION_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 2.0},
    ]


def _invoke(function_arn: str, mode: str, **payload: str) -> dict[str, Any]:
    """A lambda:invoke task of the function in ``mode``, with the job and its claim's attempt."""
    return {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function_arn,
                       "Payload": {"fanout": mode, "job.$": "$.job", "attempt.$": "$.attempt", **payload}},
        "Retry": _retry(),
    }


def _map(function_arn: str, max_concurrency: int, reader: dict[str, Any] | None) -> dict[str, Any]:
    encode = {**_invoke(function_arn, ITEM, **{"item.$": "$.item", "media.$": "$.media"}),
              "ResultSelector": {"done.$": "$.Payload.done"}, "End": True}
    processor: dict[str, Any] = {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Encode",
                                 "States": {"Encode": encode}}
    state: dict[str, Any] = {
        "Type": "Map",
        "ItemSelector": {"job.$": "$.job", "attempt.$": "$.attempt", "media.$": "$.media",
                         "item.$": "$$.Map.Item.Value"},
        "MaxConcurrency": max_concurrency,
        "ResultPath": None,
        "Next": "Finish",
        "Catch": _CATCH,
    }
    if reader is None:
        state["ItemsPath"] = "$.prepared.items"
        state["MaxConcurrency"] = min(max_concurrency, INLINE_MAX_ITEMS)
    else:
        state["ItemReader"] = reader
        processor["ProcessorConfig"] = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    state["ItemProcessor"] = processor
    return state


def definition(function_arn: str, bucket: str, max_concurrency: int) -> dict[str, Any]:
    """The Amazon States Language document of the fan-out machine.

    Its input: ``{"job": <the job's Lambda event>, "attempt": <the claim's attempt id>,
    "media": <what the probe found>}`` (processor.fanout_steps.FanoutStarter).
    """
    reader = {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
              "Parameters": {"Bucket": bucket, "Key.$": "$.prepared.items_key"}}
    return {
        "Comment": "One job's segments encoded by many invocations (processor.fanout).",
        "StartAt": "Prepare",
        "States": {
            "Prepare": {**_invoke(function_arn, PREPARE, **{"media.$": "$.media"}),
                        "ResultSelector": {"items.$": "$.Payload.items", "items_key.$": "$.Payload.items_key"},
                        "ResultPath": "$.prepared", "Next": "Items", "Catch": _CATCH},
            "Items": {"Type": "Choice",
                      "Choices": [{"Variable": "$.prepared.items_key", "IsNull": True, "Next": "EncodeInline"}],
                      "Default": "EncodeDistributed"},
            "EncodeInline": _map(function_arn, max_concurrency, None),
            "EncodeDistributed": _map(function_arn, max_concurrency, reader),
            "Finish": {**_invoke(function_arn, FINISH, **{"media.$": "$.media"}), "ResultPath": None, "End": True,
                       "Catch": _CATCH},
            "Fail": {**_invoke(function_arn, FAIL, **{"error.$": "$.error"}), "ResultPath": None, "Next": "Failed"},
            "Failed": {"Type": "Fail", "Error": STEP_FAILED, "Cause": "the job failed; its row holds the reason"},
        },
    }


def machine_statements(function_arn: str, machine_arn: str, bucket_arn: str) -> list[dict[str, Any]]:
    name = machine_arn.rsplit(":", 1)[1]
    executions = machine_arn.replace(":stateMachine:", ":execution:").rsplit(":", 1)[0] + f":{name}/*"
    return [
        statement("InvokeVideoProcessor", ["lambda:InvokeFunction"], [function_arn]),
        # A distributed Map runs its batches as child executions of this machine.
        statement("RunDistributedMap", ["states:StartExecution"], [machine_arn]),
        statement("WatchDistributedMap", ["states:DescribeExecution", "states:StopExecution"], [executions]),
        statement("ReadItemLists", ["s3:GetObject"], [f"{bucket_arn}/{ITEMS_PREFIX}*"]),
    ]


def start_statements(machine_arn: str, bucket_arn: str) -> list[dict[str, Any]]:
    return [
        statement("StartFanout", ["states:StartExecution"], [machine_arn]),
        statement("WriteItemLists", ["s3:PutObject", "s3:DeleteObject"], [f"{bucket_arn}/{ITEMS_PREFIX}*"]),
        # Finish reads each segment's duration with HeadObject, which S3 authorises as
        # s3:GetObject; the function's own policy grants it on the uploads only.
        statement("ReadSegmentDurations", ["s3:GetObject"], [f"{bucket_arn}/{OUTPUT_PREFIX}*"]),
    ]


def declare(settings: Settings, existing: Existing, function: aws.lambda_.Function) -> FanoutMachine | None:
    if not settings.fanout.enabled:
        return None
    name = settings.state_machine_name
    # Derived, not read from the machine: the machine's role and the function's permission
    # name it, and the machine itself waits for its role's permissions.
    machine_arn = function.arn.apply(lambda arn: state_machine_arn(arn, name))
    role = aws.iam.Role(
        "fanout-role",
        name=name,
        description=f"Step Functions' role for {name}: invokes {settings.function_name} only.",
        assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": STATES_PRINCIPAL}, "Action": "sts:AssumeRole"}]}),
    )
    permissions = aws.iam.RolePolicy(
        "fanout-role-policy",
        name="run-fanout",
        role=role.id,
        policy=pulumi.Output.all(function.arn, machine_arn, existing.bucket.arn).apply(
            lambda arns: document(machine_statements(*arns))),
    )
    machine = aws.sfn.StateMachine(
        "video-processor-fanout",
        name=name,
        type="STANDARD",
        role_arn=role.arn,
        definition=function.arn.apply(lambda arn: json.dumps(
            definition(arn, settings.existing.bucket_name, settings.fanout.max_concurrency), indent=2)),
        opts=pulumi.ResourceOptions(depends_on=[permissions]),
    )
    start_policy = aws.iam.Policy(
        "video-processor-fanout-start",
        name=f"{name}-start",
        description=f"{settings.function_name} starts executions of {name} and writes their item lists.",
        policy=pulumi.Output.all(machine.arn, existing.bucket.arn).apply(
            lambda arns: document(start_statements(*arns))),
    )
    aws.iam.RolePolicyAttachment(
        "video-processor-fanout-start-attachment",
        role=existing.role.name,
        policy_arn=start_policy.arn,
    )
    return FanoutMachine(state_machine=machine, role=role, start_policy=start_policy)
