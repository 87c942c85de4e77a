"""The processor's and the backend's permissions: two managed policies this stack owns outright.

The adopted role's inline policy stays exactly as the backend's Terraform wrote it. What the
processor needs goes into a policy of its own, attached to that role, because a policy document
with one owner is never rewritten by the other (Terraform and Pulumi editing one document would
undo each other's statements on every apply), and removing the processor is one step: detach
and delete this policy, and the role is back to what it was.

Least privilege: every statement names its actions and its resources; no ``*`` action, and
the only wildcards are key prefixes and the function's own log streams.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import Settings
from infra.existing import Existing
from processor.contract import OUTPUT_KEY

# Where the processor writes segments, from the contract itself so the two cannot drift apart.
OUTPUT_PREFIX = OUTPUT_KEY.split("{", 1)[0]


@dataclass(frozen=True)
class ProcessorAccess:
    policy: aws.iam.Policy
    attachment: aws.iam.RolePolicyAttachment


def statement(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2)


def processor_statements(bucket_arn: str, upload_prefix: str, table_arn: str, queue_arn: str,
                         log_group_arn: str, secret_parameter_arns: Sequence[str] = ()) -> list[dict[str, Any]]:
    statements = [
        statement("ReadUploads", ["s3:GetObject"], [f"{bucket_arn}/{upload_prefix}*"]),
        # AbortMultipartUpload lets boto3 clean up a failed multipart upload of a large segment
        # instead of leaving billed, invisible parts behind.
        statement("WriteSegments", ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                  [f"{bucket_arn}/{OUTPUT_PREFIX}*"]),
        statement("UpdateJobRows", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [table_arn]),
        statement("SendFailedEvents", ["sqs:SendMessage"], [queue_arn]),
        # The group ARN for CreateLogStream, its streams for PutLogEvents.
        statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group_arn, f"{log_group_arn}:*"]),
    ]
    if secret_parameter_arns:
        # SecureStrings encrypted with the account's aws/ssm key, whose key policy lets the
        # account's principals decrypt through SSM: no kms statement is needed, and reading is
        # controlled by this one GetParameter on these parameters (infra/secret_parameters.py).
        statements.append(statement("ReadFunctionSecrets", ["ssm:GetParameter"], list(secret_parameter_arns)))
    return statements


def backend_statements(function_arn: str, parameter_arn: str, table_arn: str, bucket_arn: str,
                       upload_prefix: str) -> list[dict[str, Any]]:
    return [
        statement("InvokeVideoProcessor", ["lambda:InvokeFunction"], [function_arn]),
        statement("ReadRouterFlags", ["ssm:GetParameter"], [parameter_arn]),
        # The router records its decision with one conditional UpdateItem; its progress stream
        # (router.progress_events) reads the row, for jobs whose progress cannot reach Redis.
        statement("RecordDispatch", ["dynamodb:UpdateItem"], [table_arn]),
        statement("ReadJobProgress", ["dynamodb:GetItem"], [table_arn]),
        # HeadObject, when a request has no file_size: S3 authorises it as s3:GetObject.
        statement("ReadUploadSizes", ["s3:GetObject"], [f"{bucket_arn}/{upload_prefix}*"]),
    ]


def sweep_statements(table_arn: str, function_arn: str, redispatch: bool) -> list[dict[str, Any]]:
    """The scheduled sweep's reads (a Scan: the table has no status index) and, when it
    re-dispatches, the function invoking itself."""
    scan = [statement("FindStuckJobs", ["dynamodb:Scan"], [table_arn])]
    return scan + ([statement("RedispatchStuckJobs", ["lambda:InvokeFunction"], [function_arn])] if redispatch else [])


def guard_statements(table_arn: str, flags_arn: str, verdict_arn: str, log_group_arn: str) -> list[dict[str, Any]]:
    """The rollout guard's function (`router.scheduled`): read the window's rows (a Scan: no index),
    read and write the flags and its verdict, write its own logs. Nothing of the video processor's."""
    return [
        statement("ReadJobHistory", ["dynamodb:Scan"], [table_arn]),
        statement("GuardRouterFlags", ["ssm:GetParameter", "ssm:PutParameter"], [flags_arn, verdict_arn]),
        statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group_arn, f"{log_group_arn}:*"]),
    ]


def scheduler_statements(function_arn: str) -> list[dict[str, Any]]:
    return [statement("InvokeVideoProcessor", ["lambda:InvokeFunction"], [function_arn])]


def processor_access(settings: Settings, existing: Existing, log_group: aws.cloudwatch.LogGroup,
                     failure_queue: aws.sqs.Queue, secrets: Sequence[aws.ssm.Parameter] = ()) -> ProcessorAccess:
    arns = [existing.bucket.arn, existing.table.arn, failure_queue.arn, log_group.arn, *(s.arn for s in secrets)]
    policy_document = pulumi.Output.all(*arns).apply(
        lambda arns: document(processor_statements(arns[0], settings.existing.upload_prefix, *arns[1:4], arns[4:])))
    policy = aws.iam.Policy(
        "video-processor-policy",
        name=settings.function_name,
        description=f"What {settings.function_name} needs beyond the role's inline policy; owned by this stack.",
        policy=policy_document,
    )
    attachment = aws.iam.RolePolicyAttachment(
        "video-processor-policy-attachment",
        role=existing.role.name,
        policy_arn=policy.arn,
    )
    return ProcessorAccess(policy=policy, attachment=attachment)


def backend_access(settings: Settings, existing: Existing, function: aws.lambda_.Function,
                   flags: aws.ssm.Parameter) -> aws.iam.Policy:
    policy = aws.iam.Policy(
        "backend-policy",
        name=f"{settings.function_name}-backend",
        description=f"What the Railway backend needs to route jobs to {settings.function_name}.",
        policy=pulumi.Output.all(function.arn, flags.arn, existing.table.arn, existing.bucket.arn).apply(
            lambda arns: document(backend_statements(*arns, settings.existing.upload_prefix))),
    )
    if settings.railway_user_name is not None:
        aws.iam.UserPolicyAttachment(
            "backend-policy-attachment",
            user=settings.railway_user_name,
            policy_arn=policy.arn,
        )
    return policy
