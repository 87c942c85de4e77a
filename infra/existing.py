"""The backend's bucket, job table, Lambda role and the role's inline policy: adopted or referenced.

Adopting (``adoptExisting: true``) imports them into this stack so that Terraform can let go of
them. Since Pulumi CLI 3.174 an import whose declared inputs differ from the real resource no
longer fails: the resource is imported and then *updated* to match the program. Every input of
an adopted resource is therefore in ``ignore_changes`` (the program manages none of them: a
difference is imported, never applied), and ``protect`` plus ``retain_on_delete`` make sure no
`pulumi destroy` or removed line can delete a video or a job row.

Referencing (``adoptExisting: false``) reads the bucket, the table and the role with
``Resource.get``, which never modifies or deletes anything (the inline policy, which nothing
here uses, is left alone). Both paths return the same resource types, so the rest of the
program uses ``bucket.arn`` or ``role.arn`` without knowing which one ran.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import job_table
from infra.config import ExistingResources, Settings

LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }],
}


@dataclass(frozen=True)
class Existing:
    bucket: aws.s3.Bucket
    table: aws.dynamodb.Table
    role: aws.iam.Role


def every_input(args_type: type) -> list[str]:
    """All inputs of a resource type, read from its Args class so a provider upgrade that adds
    an input cannot silently make it manageable."""
    return sorted(name for name in inspect.signature(args_type.__init__).parameters if name != "__self__")


def _adopted(import_id: str, args_type: type) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(import_=import_id, protect=True, retain_on_delete=True,
                                  ignore_changes=every_input(args_type))


def _table_attributes() -> list[aws.dynamodb.TableAttributeArgs]:
    return [aws.dynamodb.TableAttributeArgs(name=name, type="S") for name in job_table.key_attributes()]


def _table_indexes() -> list[aws.dynamodb.TableGlobalSecondaryIndexArgs]:
    return [
        aws.dynamodb.TableGlobalSecondaryIndexArgs(
            name=name,
            projection_type="ALL",
            key_schemas=[aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=hash_key, key_type="HASH")]
            + ([aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=range_key, key_type="RANGE")]
               if range_key else []),
        )
        for name, hash_key, range_key in job_table.INDEXES
    ]


def _adopt(existing: ExistingResources) -> Existing:
    policy_id = f"{existing.role_name}:{existing.policy_name}"
    # The inline policy's document is the backend's to define, and this program cannot know it:
    # it is read from AWS and declared as read, so even the declaration invents nothing.
    live_policy = aws.iam.RolePolicy.get("lambda-role-policy-live", policy_id)
    # Nothing refers to it; it is imported so that Terraform can hand it over with the rest.
    aws.iam.RolePolicy(
        "lambda-role-policy",
        name=existing.policy_name,
        role=existing.role_name,
        policy=live_policy.policy,
        opts=_adopted(policy_id, aws.iam.RolePolicyArgs),
    )
    return Existing(
        bucket=aws.s3.Bucket(
            "video-bucket",
            bucket=existing.bucket_name,
            opts=_adopted(existing.bucket_name, aws.s3.BucketArgs),
        ),
        table=aws.dynamodb.Table(
            "job-table",
            name=existing.table_name,
            hash_key="video_id",
            billing_mode="PAY_PER_REQUEST",
            attributes=_table_attributes(),
            global_secondary_indexes=_table_indexes(),
            opts=_adopted(existing.table_name, aws.dynamodb.TableArgs),
        ),
        role=aws.iam.Role(
            "lambda-role",
            name=existing.role_name,
            assume_role_policy=json.dumps(LAMBDA_TRUST_POLICY),
            opts=_adopted(existing.role_name, aws.iam.RoleArgs),
        ),
    )


def _reference(existing: ExistingResources) -> Existing:
    return Existing(
        bucket=aws.s3.Bucket.get("video-bucket", existing.bucket_name),
        table=aws.dynamodb.Table.get("job-table", existing.table_name),
        role=aws.iam.Role.get("lambda-role", existing.role_name),
    )


def declare(settings: Settings) -> Existing:
    return _adopt(settings.existing) if settings.adopt_existing else _reference(settings.existing)
