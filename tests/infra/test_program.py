"""What the Pulumi program declares, run under mocks with several stack configurations.

Expected names and ARNs are written out here rather than computed with the program's own
helpers, so a test compares the program with the issue, not with itself.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from layers.ffmpeg.build import LAYER_ZIP
from infra.mocked import (
    LIVE_INLINE_POLICY,
    MINIMAL_CONFIG,
    REPO,
    Declaration,
    HarnessError,
    ProgramError,
    run_program,
    stack_file_config,
)
from tests.infra.test_config import FEDERATION

ACCOUNT = "123456789012"
CUSTOM_CONFIG = {
    "aws:region": "eu-central-1",
    "projectName": "clips",
    "environment": "prod",
    "existing": {"bucketName": "clips-videos", "tableName": "clips-jobs", "roleName": "clips-role",
                 "policyName": "clips-inline", "uploadPrefix": "incoming/"},
    "function": {"memoryMb": 4096, "timeoutSeconds": 600, "ephemeralStorageMb": 4096, "reservedConcurrency": 150,
                 "logRetentionDays": 14, "maxRetryAttempts": 1, "maxEventAgeSeconds": 3600},
    "railwayUserName": "clips-railway",
    "sweep": {"rateMinutes": 1, "olderThanMinutes": 120, "action": "markFailed", "maxRedispatches": 0},
    "fanout": {"minSegments": 6, "minDurationSeconds": 300, "maxConcurrency": 100},
    "guard": {"rateMinutes": 5, "windowMinutes": 180},
}
CONFIGS = {
    "minimal": MINIMAL_CONFIG,
    "custom": CUSTOM_CONFIG,
    "no-sweep": {**MINIMAL_CONFIG, "sweep": {"enabled": False}},
    "no-fanout": {**MINIMAL_CONFIG, "fanout": {"enabled": False}},
    "no-guard": {**MINIMAL_CONFIG, "guard": {"enabled": False}},
    "reference": {**MINIMAL_CONFIG, "adoptExisting": False},
    "stack-file": stack_file_config(REPO / "Pulumi.dev.yaml"),
}
# DESIGN section 4: Lambda rejects a function that sets any of these.
RESERVED_KEYS = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "LAMBDA_TASK_ROOT", "_HANDLER", "TZ"}
with warnings.catch_warnings():
    # pulumi_aws.s3 warns about its own deprecated *V2 classes as it loads.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_aws as aws

    ADOPTED_TYPES = {
        "video-bucket": ("aws:s3/bucket:Bucket", aws.s3.BucketArgs),
        "job-table": ("aws:dynamodb/table:Table", aws.dynamodb.TableArgs),
        "lambda-role": ("aws:iam/role:Role", aws.iam.RoleArgs),
        "lambda-role-policy": ("aws:iam/rolePolicy:RolePolicy", aws.iam.RolePolicyArgs),
    }


@cache
def declared(config_name: str) -> Declaration:
    return run_program(CONFIGS[config_name])


def sha256(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def wire_names(args_type: type) -> set[str]:
    """Every input of a resource type as the engine names it (camelCase), from its Args class."""
    return {re.sub(r"_([a-z])", lambda match: match.group(1).upper(), name)
            for name in inspect.signature(args_type.__init__).parameters if name != "__self__"}


def statements(declaration: Declaration, name: str) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    document = json.loads(declaration.named(name).inputs["policy"])
    assert document["Version"] == "2012-10-17"
    assert all(set(s) == {"Sid", "Effect", "Action", "Resource"} and s["Effect"] == "Allow"
               for s in document["Statement"])
    return {(tuple(sorted(s["Action"])), tuple(sorted(s["Resource"]))) for s in document["Statement"]}


# --- the existing resources --------------------------------------------------------------------


@pytest.mark.parametrize(("config_name", "ids"), [
    ("minimal", {"video-bucket": "easy-video-share-videos", "job-table": "easy-video-share-video-metadata",
                 "lambda-role": "easy-video-share-lambda-execution-role",
                 "lambda-role-policy": "easy-video-share-lambda-execution-role:easy-video-share-lambda-policy"}),
    ("custom", {"video-bucket": "clips-videos", "job-table": "clips-jobs", "lambda-role": "clips-role",
                "lambda-role-policy": "clips-role:clips-inline"}),
])
def test_adopted_resources_are_imported_protected_and_cannot_be_modified(config_name: str, ids: dict[str, str]):
    declaration = declared(config_name)
    for name, (type_, args_type) in ADOPTED_TYPES.items():
        resource = declaration.named(name)
        assert (resource.type, resource.read) == (type_, False)
        assert resource.options["importId"] == ids[name]
        assert resource.options["protect"] is True
        assert resource.options["retainOnDelete"] is True
        # Every input is ignored: whatever differs from reality is imported, never applied.
        assert set(resource.options["ignoreChanges"]) == wire_names(args_type)
        assert set(resource.inputs) <= set(resource.options["ignoreChanges"])
    imported = {r.name for r in declaration.resources if r.options.get("importId")}
    protected = {r.name for r in declaration.resources if r.options.get("protect") or r.options.get("retainOnDelete")}
    assert imported == protected == set(ADOPTED_TYPES)


def test_adopted_resources_are_declared_as_the_backend_defines_them():
    declaration = declared("custom")
    assert declaration.named("video-bucket").inputs == {"bucket": "clips-videos"}
    table = declaration.named("job-table").inputs
    assert (table["name"], table["hashKey"], table["billingMode"]) == ("clips-jobs", "video_id", "PAY_PER_REQUEST")
    assert "rangeKey" not in table
    assert table["attributes"] == [{"name": name, "type": "S"} for name in
                                   ("created_at", "segment_id", "segment_type", "upload_date", "user_id", "video_id")]

    def index(name: str, hash_key: str, range_key: str | None = None) -> dict[str, Any]:
        keys = [{"attributeName": hash_key, "keyType": "HASH"}]
        keys += [{"attributeName": range_key, "keyType": "RANGE"}] if range_key else []
        return {"name": name, "projectionType": "ALL", "keySchemas": keys}

    assert table["globalSecondaryIndexes"] == [
        index("user_id-upload_date-index", "user_id", "upload_date"),
        index("user_id-created_at-index", "user_id", "created_at"),
        index("video_id-segment_type-index", "video_id", "segment_type"),
        index("user_id-segment_type-index", "user_id", "segment_type"),
        index("segment_id-index", "segment_id"),
    ]
    role = declaration.named("lambda-role").inputs
    assert role["name"] == "clips-role"
    assert json.loads(role["assumeRolePolicy"]) == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    # The inline policy's document is the live one, read from AWS: the program invents none.
    live = declaration.named("lambda-role-policy-live")
    assert (live.read, live.id) == (True, "clips-role:clips-inline")
    assert declaration.named("lambda-role-policy").inputs == {
        "name": "clips-inline", "role": "clips-role", "policy": LIVE_INLINE_POLICY}


def test_without_adoption_the_existing_resources_are_only_read():
    declaration = declared("reference")
    reads = {r.name: (r.type, r.id) for r in declaration.resources if r.read}
    assert reads == {
        "video-bucket": ("aws:s3/bucket:Bucket", "easy-video-share-videos"),
        "job-table": ("aws:dynamodb/table:Table", "easy-video-share-video-metadata"),
        "lambda-role": ("aws:iam/role:Role", "easy-video-share-lambda-execution-role"),
    }
    assert not [r.name for r in declaration.resources if r.options.get("importId") or r.options.get("protect")]
    # Everything else is still declared, against the read resources.
    assert declaration.named("video-processor").inputs["role"] == (
        f"arn:aws:iam::{ACCOUNT}:role/easy-video-share-lambda-execution-role")


# --- the function --------------------------------------------------------------------------------


@pytest.mark.parametrize(("config_name", "expected"), [
    ("minimal", {"name": "easy-video-share-video-processor", "memorySize": 3008, "timeout": 900,
                 "ephemeralStorage": {"size": 10240}, "reserved": None, "region": "us-east-1",
                 "role": "easy-video-share-lambda-execution-role", "layer": "easy-video-share-ffmpeg",
                 "environment": {"S3_BUCKET_NAME": "easy-video-share-videos",
                                 "DYNAMODB_TABLE_NAME": "easy-video-share-video-metadata", "MAX_ATTEMPTS": "3",
                                 "FANOUT_STATE_MACHINE": "easy-video-share-video-processor-fanout",
                                 "FANOUT_MIN_SEGMENTS": "4", "FANOUT_MIN_DURATION_SECONDS": "120"}}),
    ("custom", {"name": "clips-video-processor", "memorySize": 4096, "timeout": 600,
                "ephemeralStorage": {"size": 4096}, "reserved": 150, "region": "eu-central-1",
                "role": "clips-role", "layer": "clips-ffmpeg",
                "environment": {"S3_BUCKET_NAME": "clips-videos", "DYNAMODB_TABLE_NAME": "clips-jobs",
                                "MAX_ATTEMPTS": "2", "FANOUT_STATE_MACHINE": "clips-video-processor-fanout",
                                "FANOUT_MIN_SEGMENTS": "6", "FANOUT_MIN_DURATION_SECONDS": "300"}}),
])
def test_function_is_declared_from_the_configuration(config_name: str, expected: dict[str, Any]):
    declaration = declared(config_name)
    function = declaration.named("video-processor")
    assert function.type == "aws:lambda/function:Function"
    inputs = function.inputs
    assert inputs["name"] == expected["name"]
    assert (inputs["runtime"], inputs["handler"]) == ("python3.12", "processor.handler.lambda_handler")
    assert (inputs["memorySize"], inputs["timeout"], inputs["ephemeralStorage"]) == (
        expected["memorySize"], expected["timeout"], expected["ephemeralStorage"])
    assert inputs["architectures"] == ["x86_64"]
    assert inputs.get("reservedConcurrentExecutions") == expected["reserved"]
    assert inputs["role"] == f"arn:aws:iam::{ACCOUNT}:role/{expected['role']}"
    assert inputs["layers"] == [f"arn:aws:lambda:{expected['region']}:{ACCOUNT}:layer:{expected['layer']}:1"]
    assert inputs["environment"] == {"variables": expected["environment"]}
    assert declaration.function_environment == expected["environment"]
    code = Path(inputs["code"]["path"])
    assert (inputs["code"]["kind"], code) == ("FileArchive", REPO / "infra" / "dist" / "video-processor.zip")
    assert inputs["sourceCodeHash"] == base64.b64encode(sha256(code)).decode()
    # Its log group (with retention) and its permissions exist before its first invocation.
    assert {"video-processor-logs", "video-processor-policy-attachment"} <= set(function.dependencies)


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_function_environment_is_exactly_what_the_processor_reads_and_nothing_reserved(config_name: str):
    environment = declared(config_name).function_environment
    fanout = set() if config_name == "no-fanout" else {"FANOUT_STATE_MACHINE", "FANOUT_MIN_SEGMENTS",
                                                       "FANOUT_MIN_DURATION_SECONDS"}
    assert set(environment) == {"S3_BUCKET_NAME", "DYNAMODB_TABLE_NAME", "MAX_ATTEMPTS"} | fanout
    assert not RESERVED_KEYS & set(environment)
    assert declared(config_name).outputs["functionEnvironment"] == environment


def test_a_capped_output_size_reaches_the_processor():
    from infra import function
    from tests.infra.test_config import settings

    environment = function.environment(settings(function={"maxOutputLongSide": 1280}))
    assert environment["VIDEO_MAX_LONG_SIDE"] == "1280"
    assert "VIDEO_MAX_LONG_SIDE" not in function.environment(settings())


def test_environment_guard_refuses_reserved_keys_and_oversized_environments(monkeypatch: pytest.MonkeyPatch):
    from infra import function
    from infra.config import load

    assert RESERVED_KEYS <= function.RESERVED_ENVIRONMENT_KEYS
    settings = load({"aws:region": "us-east-1",
                     "lambda-video-processor:existing": json.dumps({"bucketName": "videos-bucket"})}.get)
    monkeypatch.setattr(function, "RESERVED_ENVIRONMENT_KEYS", frozenset({"S3_BUCKET_NAME"}))
    with pytest.raises(ValueError, match="reserves the environment variables \\['S3_BUCKET_NAME'\\]"):
        function.environment(settings)
    monkeypatch.undo()
    monkeypatch.setattr(function, "ENVIRONMENT_LIMIT_BYTES", 16)
    with pytest.raises(ValueError, match="Lambda allows 16"):
        function.environment(settings)



def test_text_variations_reach_the_function_as_the_processor_reads_them():
    declaration = run_program({**MINIMAL_CONFIG, "textVariations": {
        "project": "video-share", "location": "us-central1", "credentialConfig": FEDERATION,
        "model": "gemini-2.5-flash-lite", "baseUrl": "https://proxy.example.com", "timeoutSeconds": 20,
        "attempts": 3}})
    environment = declaration.function_environment
    assert {key: value for key, value in environment.items() if key != "GOOGLE_CREDENTIAL_CONFIG"} == {
        "S3_BUCKET_NAME": "easy-video-share-videos", "DYNAMODB_TABLE_NAME": "easy-video-share-video-metadata",
        "MAX_ATTEMPTS": "3", "GOOGLE_CLOUD_PROJECT": "video-share", "GOOGLE_CLOUD_LOCATION": "us-central1",
        "TEXT_VARIATIONS_MODEL": "gemini-2.5-flash-lite", "TEXT_VARIATIONS_BASE_URL": "https://proxy.example.com",
        "TEXT_VARIATIONS_TIMEOUT_SECONDS": "20", "TEXT_VARIATIONS_ATTEMPTS": "3",
        "FANOUT_STATE_MACHINE": "easy-video-share-video-processor-fanout", "FANOUT_MIN_SEGMENTS": "4",
        "FANOUT_MIN_DURATION_SECONDS": "120"}
    assert json.loads(environment["GOOGLE_CREDENTIAL_CONFIG"]) == FEDERATION
    # The federation configuration holds no secret: it is plain, and in the output too.
    assert declaration.named("video-processor").secret_inputs == ()
    assert declaration.outputs["functionEnvironment"] == environment
    # Federation signs in with the role's own credentials: no new AWS permission.
    policy = "video-processor-policy"
    assert statements(declaration, policy) == statements(declared("minimal"), policy)


def test_an_api_key_in_plain_text_stops_the_program():
    with pytest.raises(ProgramError) as raised:
        run_program({**MINIMAL_CONFIG, "textVariationsApiKey": "AIza-plain"})
    assert raised.value.message.startswith("configuration lambda-video-processor:textVariationsApiKey: must be set "
                                           "as a secret")


@pytest.mark.parametrize(("config_name", "retries", "age", "queue"), [
    ("minimal", 2, 21600, "arn:aws:sqs:us-east-1:123456789012:easy-video-share-video-processor-failures"),
    ("custom", 1, 3600, "arn:aws:sqs:eu-central-1:123456789012:clips-video-processor-failures"),
])
def test_failed_async_events_go_to_the_failure_queue(config_name: str, retries: int, age: int, queue: str):
    declaration = declared(config_name)
    config = declaration.named("video-processor-async")
    assert config.type == "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
    assert config.inputs == {
        "functionName": declaration.named("video-processor").inputs["name"],
        "maximumRetryAttempts": retries,
        "maximumEventAgeInSeconds": age,
        "destinationConfig": {"onFailure": {"destination": queue}},
    }
    # Lambda checks the role may send to the destination when the config is written.
    assert "video-processor-policy-attachment" in config.dependencies
    failure_queue = declaration.named("video-processor-failures")
    assert failure_queue.inputs == {"name": queue.rsplit(":", 1)[1], "messageRetentionSeconds": 1209600,
                                    "sqsManagedSseEnabled": True}


def test_log_group_and_alarms():
    declaration = declared("custom")
    assert declaration.named("video-processor-logs").inputs == {
        "name": "/aws/lambda/clips-video-processor", "retentionInDays": 14}
    common = {"period": 300, "evaluationPeriods": 1, "threshold": 0, "comparisonOperator": "GreaterThanThreshold",
              "treatMissingData": "notBreaching"}
    errors = declaration.named("video-processor-errors").inputs
    assert {key: errors[key] for key in common} == common
    assert (errors["namespace"], errors["metricName"], errors["statistic"], errors["dimensions"]) == (
        "AWS/Lambda", "Errors", "Sum", {"FunctionName": "clips-video-processor"})
    failed = declaration.named("video-processor-failed-events").inputs
    assert {key: failed[key] for key in common} == common
    assert (failed["namespace"], failed["metricName"], failed["statistic"], failed["dimensions"]) == (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", {"QueueName": "clips-video-processor-failures"})


# --- permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize(("config_name", "bucket", "prefix", "region", "table", "name"), [
    ("minimal", "easy-video-share-videos", "uploads/", "us-east-1", "easy-video-share-video-metadata",
     "easy-video-share-video-processor"),
    ("reference", "easy-video-share-videos", "uploads/", "us-east-1", "easy-video-share-video-metadata",
     "easy-video-share-video-processor"),
    ("custom", "clips-videos", "incoming/", "eu-central-1", "clips-jobs", "clips-video-processor"),
])
def test_processor_policy_is_least_privilege(config_name, bucket, prefix, region, table, name):
    declaration = declared(config_name)
    log_group = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/lambda/{name}"
    assert statements(declaration, "video-processor-policy") == {
        (("s3:GetObject",), (f"arn:aws:s3:::{bucket}/{prefix}*",)),
        (("s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"), (f"arn:aws:s3:::{bucket}/processed/*",)),
        (("dynamodb:GetItem", "dynamodb:UpdateItem"), (f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}",)),
        (("sqs:SendMessage",), (f"arn:aws:sqs:{region}:{ACCOUNT}:{name}-failures",)),
        (("logs:CreateLogStream", "logs:PutLogEvents"), (log_group, f"{log_group}:*")),
    }
    assert declaration.named("video-processor-policy").inputs["name"] == name
    role = "clips-role" if config_name == "custom" else "easy-video-share-lambda-execution-role"
    assert declaration.named("video-processor-policy-attachment").inputs == {
        "role": role, "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/{name}"}


@pytest.mark.parametrize(("config_name", "user"), [("minimal", None), ("custom", "clips-railway")])
def test_backend_policy_invokes_this_function_only(config_name: str, user: str | None):
    declaration = declared(config_name)
    project, environment, region, table, bucket, prefix = (
        ("clips", "prod", "eu-central-1", "clips-jobs", "clips-videos", "incoming/") if user
        else ("easy-video-share", "dev", "us-east-1", "easy-video-share-video-metadata", "easy-video-share-videos",
              "uploads/"))
    assert statements(declaration, "backend-policy") == {
        (("lambda:InvokeFunction",), (f"arn:aws:lambda:{region}:{ACCOUNT}:function:{project}-video-processor",)),
        (("ssm:GetParameter",), (f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{project}/{environment}/router-flags",)),
        (("dynamodb:UpdateItem",), (f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}",)),
        (("dynamodb:GetItem",), (f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}",)),
        # the size of an upload whose request has none (HeadObject)
        (("s3:GetObject",), (f"arn:aws:s3:::{bucket}/{prefix}*",)),
    }
    attachments = declaration.of_type("aws:iam/userPolicyAttachment:UserPolicyAttachment")
    if user is None:
        assert attachments == []
    else:
        assert [a.inputs for a in attachments] == [
            {"user": user, "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/{project}-video-processor-backend"}]


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_no_policy_the_program_writes_has_a_wildcard_action_or_an_unnamed_resource(config_name: str):
    declaration = declared(config_name)
    policies = declaration.of_type("aws:iam/policy:Policy")
    sweep = {"video-processor-sweep-policy"} if config_name != "no-sweep" else set()
    fanout = {"video-processor-fanout-start"} if config_name != "no-fanout" else set()
    assert {p.name for p in policies} == {"video-processor-policy", "backend-policy"} | sweep | fanout
    for policy in policies + declaration.of_type("aws:iam/rolePolicy:RolePolicy"):
        if policy.read or policy.options.get("importId"):
            continue  # the adopted inline policy: imported or read, never written

        for entry in json.loads(policy.inputs["policy"])["Statement"]:
            assert entry["Action"] and all("*" not in action for action in entry["Action"])
            for resource in entry["Resource"]:
                assert resource.startswith("arn:aws:")
                # Wildcards only as a key prefix or the function's own log streams.
                assert "*" not in resource.rstrip("*") and (not resource.endswith("*") or resource[-2] in "/:")


# --- the stuck-job sweep --------------------------------------------------------------------------


def test_the_sweep_runs_the_function_on_a_schedule_with_least_privilege():
    declaration = declared("minimal")
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:easy-video-share-video-processor"
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/easy-video-share-video-metadata"
    name = "easy-video-share-video-processor-sweep"
    schedule = declaration.named("video-processor-sweep")
    assert schedule.type == "aws:scheduler/schedule:Schedule"
    assert schedule.inputs == {
        "name": name, "state": "ENABLED", "scheduleExpression": "rate(15 minutes)",
        "description": "Finds jobs stuck QUEUED or PROCESSING and re-dispatches them (processor.sweep).",
        "flexibleTimeWindow": {"mode": "OFF"},
        "target": {"arn": function, "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
                   "input": json.dumps({"action": "sweep", "mode": "redispatch", "older_than_minutes": 15,
                                        "max_redispatches": 2}),
                   "retryPolicy": {"maximumRetryAttempts": 0, "maximumEventAgeInSeconds": 60}},
    }
    # Its first run finds the function's and the scheduler's permissions in place.
    assert {"video-processor-sweep-policy-attachment", "sweep-scheduler-invoke"} <= set(schedule.dependencies)
    role = declaration.named("sweep-scheduler-role")
    assert role.inputs["name"] == name
    assert json.loads(role.inputs["assumeRolePolicy"]) == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    # The scheduler may invoke this function and nothing else.
    assert declaration.named("sweep-scheduler-invoke").inputs["role"] == name
    assert statements(declaration, "sweep-scheduler-invoke") == {(("lambda:InvokeFunction",), (function,))}
    # The function: a Scan of the job table, and invoking itself to re-dispatch.
    assert statements(declaration, "video-processor-sweep-policy") == {
        (("dynamodb:Scan",), (table,)), (("lambda:InvokeFunction",), (function,))}
    assert declaration.named("video-processor-sweep-policy-attachment").inputs == {
        "role": "easy-video-share-lambda-execution-role", "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/{name}"}
    # Nothing else of the program may scan the table but the guard's own role.
    scanning = {p.name for p in declaration.of_type("aws:iam/policy:Policy") + declaration.of_type(
        "aws:iam/rolePolicy:RolePolicy") if not p.read and not p.options.get("importId")
        and any("dynamodb:Scan" in action for action, _ in statements(declaration, p.name))}
    assert scanning == {"video-processor-sweep-policy", "router-guard-policy"}


def test_a_sweep_that_only_fails_jobs_may_not_invoke_the_function():
    declaration = declared("custom")
    schedule = declaration.named("video-processor-sweep").inputs
    assert schedule["scheduleExpression"] == "rate(1 minute)"
    assert json.loads(schedule["target"]["input"]) == {"action": "sweep", "mode": "mark_failed",
                                                       "older_than_minutes": 120, "max_redispatches": 0}
    assert statements(declaration, "video-processor-sweep-policy") == {
        (("dynamodb:Scan",), (f"arn:aws:dynamodb:eu-central-1:{ACCOUNT}:table/clips-jobs",))}


def test_a_disabled_sweep_declares_no_schedule_and_no_permission_for_it():
    names = {r.name for r in declared("no-sweep").resources}
    assert names == {r.name for r in declared("minimal").resources} - {
        "video-processor-sweep", "sweep-scheduler-role", "sweep-scheduler-invoke", "video-processor-sweep-policy",
        "video-processor-sweep-policy-attachment"}


# --- the layer, the flags, the outputs -----------------------------------------------------------


def test_layer_goes_through_a_private_bucket_under_its_hash():
    declaration = declared("custom")
    digest = sha256(LAYER_ZIP)
    artifacts = declaration.named("clips-artifacts")
    assert artifacts.inputs == {"forceDestroy": True}
    bucket_id = artifacts.id
    assert declaration.named("artifacts-public-access-block").inputs == {
        "bucket": bucket_id, "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
        "restrictPublicBuckets": True}
    assert declaration.named("artifacts-encryption").inputs == {
        "bucket": bucket_id, "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
    upload = declaration.named("ffmpeg-layer-zip").inputs
    key = f"layers/ffmpeg/{digest.hex()}.zip"
    assert (upload["bucket"], upload["key"], Path(upload["source"]["path"])) == (bucket_id, key, LAYER_ZIP)
    layer = declaration.named("ffmpeg-layer")
    assert layer.type == "aws:lambda/layerVersion:LayerVersion"
    assert {k: layer.inputs[k] for k in ("layerName", "s3Bucket", "s3Key", "sourceCodeHash", "compatibleRuntimes",
                                         "compatibleArchitectures")} == {
        "layerName": "clips-ffmpeg", "s3Bucket": bucket_id, "s3Key": key,
        "sourceCodeHash": base64.b64encode(digest).decode(), "compatibleRuntimes": ["python3.12"],
        "compatibleArchitectures": ["x86_64"]}


def test_an_unchanged_layer_is_declared_identically_so_it_is_not_republished():
    first, second = declared("minimal"), declared("reference")
    for name in ("ffmpeg-layer-zip", "ffmpeg-layer"):
        assert first.named(name).inputs == second.named(name).inputs


def test_router_flags_start_safe_and_are_never_reset():
    flags = declared("custom").named("router-flags")
    assert flags.type == "aws:ssm/parameter:Parameter"
    assert (flags.inputs["name"], flags.inputs["type"]) == ("/clips/prod/router-flags", "String")
    assert json.loads(flags.inputs["value"]) == {"phase": "celery"}
    assert flags.options["ignoreChanges"] == ["value"]


def test_outputs():
    assert declared("custom").outputs == {
        "functionName": "clips-video-processor",
        "functionArn": f"arn:aws:lambda:eu-central-1:{ACCOUNT}:function:clips-video-processor",
        "functionEnvironment": {"S3_BUCKET_NAME": "clips-videos", "DYNAMODB_TABLE_NAME": "clips-jobs",
                                "MAX_ATTEMPTS": "2", "FANOUT_STATE_MACHINE": "clips-video-processor-fanout",
                                "FANOUT_MIN_SEGMENTS": "6", "FANOUT_MIN_DURATION_SECONDS": "300"},
        "fanoutStateMachineArn": f"arn:aws:states:eu-central-1:{ACCOUNT}:stateMachine:clips-video-processor-fanout",
        "layerArn": f"arn:aws:lambda:eu-central-1:{ACCOUNT}:layer:clips-ffmpeg:1",
        "routerFlagsParameter": "/clips/prod/router-flags",
        "failureQueueUrl": f"https://sqs.eu-central-1.amazonaws.com/{ACCOUNT}/clips-video-processor-failures",
        "processorPolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/clips-video-processor",
        "backendPolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/clips-video-processor-backend",
        "backendEnvironment": {
            "VIDEO_PROCESSOR_FUNCTION_NAME": "clips-video-processor",
            "ROUTER_FLAGS_PARAMETER": "/clips/prod/router-flags",
            "DYNAMODB_TABLE_NAME": "clips-jobs",
            "S3_BUCKET_NAME": "clips-videos",
        },
    }


def test_the_committed_stack_file_deploys_the_defaults():
    declaration = declared("stack-file")
    assert declaration.named("video-bucket").options["importId"] == "easy-video-share-videos"
    assert declaration.outputs["functionName"] == "easy-video-share-video-processor"
    # It spells out the defaults: the same stack as the minimal configuration.
    assert ({r.name: r for r in declaration.resources} == {r.name: r for r in declared("minimal").resources})


# --- fan-out ------------------------------------------------------------------------------------


def test_the_fanout_state_machine_and_its_role_invoke_this_function_only():
    declaration = declared("custom")
    function = f"arn:aws:lambda:eu-central-1:{ACCOUNT}:function:clips-video-processor"
    machine_arn = f"arn:aws:states:eu-central-1:{ACCOUNT}:stateMachine:clips-video-processor-fanout"
    machine = declaration.named("video-processor-fanout")
    assert {k: v for k, v in machine.inputs.items() if k != "definition"} == {
        "name": "clips-video-processor-fanout", "type": "STANDARD",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/clips-video-processor-fanout"}
    assert "fanout-role-policy" in machine.dependencies
    role = declaration.named("fanout-role").inputs
    assert role["name"] == "clips-video-processor-fanout"
    assert json.loads(role["assumeRolePolicy"])["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    assert declaration.named("fanout-role-policy").inputs["role"] == "clips-video-processor-fanout"
    assert statements(declaration, "fanout-role-policy") == {
        (("lambda:InvokeFunction",), (function,)),
        (("states:StartExecution",), (machine_arn,)),
        (("states:DescribeExecution", "states:StopExecution"),
         (f"arn:aws:states:eu-central-1:{ACCOUNT}:execution:clips-video-processor-fanout/*",)),
        (("s3:GetObject",), ("arn:aws:s3:::clips-videos/fanout-items/*",)),
    }
    assert statements(declaration, "video-processor-fanout-start") == {
        (("states:StartExecution",), (machine_arn,)),
        (("s3:DeleteObject", "s3:PutObject"), ("arn:aws:s3:::clips-videos/fanout-items/*",)),
        (("s3:GetObject",), ("arn:aws:s3:::clips-videos/processed/*",)),
    }
    assert declaration.named("video-processor-fanout-start-attachment").inputs == {
        "role": "clips-role", "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/clips-video-processor-fanout-start"}


def test_the_fanout_definition_maps_the_items_with_retries_and_a_catch_on_every_step():
    definition = json.loads(declared("custom").named("video-processor-fanout").inputs["definition"])
    function = f"arn:aws:lambda:eu-central-1:{ACCOUNT}:function:clips-video-processor"
    states = definition["States"]
    assert definition["StartAt"] == "Prepare"
    tasks = {"Prepare": states["Prepare"], "Finish": states["Finish"], "Fail": states["Fail"],
             "Encode (inline)": states["EncodeInline"]["ItemProcessor"]["States"]["Encode"],
             "Encode (distributed)": states["EncodeDistributed"]["ItemProcessor"]["States"]["Encode"]}
    for name, task in tasks.items():
        assert (task["Resource"], task["Parameters"]["FunctionName"]) == ("arn:aws:states:::lambda:invoke",
                                                                           function), name
        retried = {error for rule in task["Retry"] for error in rule["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "StepRetry"} <= retried, name
        assert all(rule["BackoffRate"] > 1 for rule in task["Retry"]), name
    for name in ("Prepare", "EncodeInline", "EncodeDistributed", "Finish"):
        assert states[name]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Fail"}]
    assert [task["Parameters"]["Payload"]["fanout"] for task in tasks.values()] == [
        "prepare", "finish", "fail", "item", "item"]
    # Inline below the inline Map's 40 at once; distributed above, reading the items from S3.
    assert states["EncodeInline"]["MaxConcurrency"] == 40 and states["EncodeInline"]["ItemsPath"] == "$.prepared.items"
    distributed = states["EncodeDistributed"]
    assert distributed["MaxConcurrency"] == 100
    assert distributed["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert distributed["ItemReader"] == {"Resource": "arn:aws:states:::s3:getObject",
                                         "ReaderConfig": {"InputType": "JSON"},
                                         "Parameters": {"Bucket": "clips-videos", "Key.$": "$.prepared.items_key"}}
    assert states["Items"]["Choices"] == [{"Variable": "$.prepared.items_key", "IsNull": True,
                                           "Next": "EncodeInline"}]
    assert states["Failed"]["Type"] == "Fail"


def test_fanout_disabled_declares_no_state_machine_and_no_permission_for_it():
    names = {r.name for r in declared("no-fanout").resources}
    assert not names & {"video-processor-fanout", "fanout-role", "fanout-role-policy", "video-processor-fanout-start",
                        "video-processor-fanout-start-attachment"}
    assert "fanoutStateMachineArn" not in declared("no-fanout").outputs
    assert declared("minimal").function_environment["FANOUT_STATE_MACHINE"] == "easy-video-share-video-processor-fanout"
    assert (declared("minimal").function_environment["FANOUT_MIN_SEGMENTS"],
            declared("minimal").function_environment["FANOUT_MIN_DURATION_SECONDS"]) == ("4", "120")


# --- errors and the harness itself ------------------------------------------------------------


@pytest.mark.parametrize(("config", "message"), [
    ({"aws:region": "us-east-1"}, "configuration lambda-video-processor:existing.bucketName: is required"),
    ({**MINIMAL_CONFIG, "function": {"architecture": "arm64"}},
     "configuration lambda-video-processor:function.architecture: must be x86_64"),
])
def test_a_bad_configuration_stops_the_program_with_its_message(config: dict[str, Any], message: str):
    with pytest.raises(ProgramError) as raised:
        run_program(config)
    assert raised.value.type_name == "ConfigError"
    assert raised.value.message.startswith(message)


def test_the_harness_fails_a_program_that_declares_nothing(tmp_path: Path):
    (tmp_path / "__main__.py").write_text("import pulumi\n")
    with pytest.raises(HarnessError, match="declared no resource"):
        run_program(MINIMAL_CONFIG, program=tmp_path)


# --- the rollout guard and the dashboard ---------------------------------------------------------


@pytest.mark.parametrize(("config_name", "rate", "window"), [("minimal", "rate(15 minutes)", 60),
                                                             ("custom", "rate(5 minutes)", 180)])
def test_the_guard_is_a_function_of_its_own_that_alone_may_write_the_flags(config_name, rate, window):
    declaration = declared(config_name)
    project, environment, region, table = (
        ("clips", "prod", "eu-central-1", "clips-jobs") if config_name == "custom"
        else ("easy-video-share", "dev", "us-east-1", "easy-video-share-video-metadata"))
    name = f"{project}-video-processor-guard"
    flags = f"/{project}/{environment}/router-flags"
    log_group = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/lambda/{name}"
    function = declaration.named("router-guard")
    assert {key: value for key, value in function.inputs.items() if key not in ("code", "sourceCodeHash")} == {
        "name": name, "role": f"arn:aws:iam::{ACCOUNT}:role/{name}", "runtime": "python3.12",
        "handler": "router.scheduled.lambda_handler", "memorySize": 256, "timeout": 300,
        "reservedConcurrentExecutions": 1,
        "environment": {"variables": {"DYNAMODB_TABLE_NAME": table, "ROUTER_FLAGS_PARAMETER": flags}}}
    assert function.inputs["code"]["path"].endswith("router-guard.zip")
    assert {"router-guard-logs", "router-guard-policy"} <= set(function.dependencies)
    assert "layers" not in function.inputs  # no ffmpeg: it only reads rows and writes flags
    assert declaration.named("router-guard-role").inputs["name"] == name
    assert json.loads(declaration.named("router-guard-role").inputs["assumeRolePolicy"])["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    assert statements(declaration, "router-guard-policy") == {
        (("dynamodb:Scan",), (f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}",)),
        (("ssm:GetParameter", "ssm:PutParameter"), (f"arn:aws:ssm:{region}:{ACCOUNT}:parameter{flags}",
                                                    f"arn:aws:ssm:{region}:{ACCOUNT}:parameter{flags}-guard")),
        (("logs:CreateLogStream", "logs:PutLogEvents"), (log_group, f"{log_group}:*")),
    }
    assert declaration.named("router-guard-logs").inputs["name"] == f"/aws/lambda/{name}"
    verdict = declaration.named("router-guard-verdict")
    assert (verdict.inputs["name"], verdict.inputs["type"], verdict.inputs["value"]) == (f"{flags}-guard", "String",
                                                                                         "{}")
    assert verdict.options["ignoreChanges"] == ["value"]
    schedule = declaration.named("router-guard-schedule")
    assert schedule.inputs == {
        "name": name, "state": "ENABLED", "scheduleExpression": rate,
        "description": f"Compares Lambda with Celery over the last {window} minutes and trips the kill switch on a "
                       "regression (router.guard).",
        "flexibleTimeWindow": {"mode": "OFF"},
        "target": {"arn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}",
                   "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{name}-scheduler",
                   "input": json.dumps({"window_minutes": window}),
                   "retryPolicy": {"maximumRetryAttempts": 0, "maximumEventAgeInSeconds": 60}},
    }
    assert "guard-scheduler-invoke" in schedule.dependencies
    assert statements(declaration, "guard-scheduler-invoke") == {
        (("lambda:InvokeFunction",), (f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}",))}
    alarm = declaration.named("router-guard-errors").inputs
    assert (alarm["name"], alarm["metricName"], alarm["dimensions"]) == (f"{name}-errors", "Errors",
                                                                         {"FunctionName": name})
    # Nothing else may write any parameter: not the processor, not the backend.
    writers = {p.name for p in declaration.of_type("aws:iam/policy:Policy") + declaration.of_type(
        "aws:iam/rolePolicy:RolePolicy") if not p.read and not p.options.get("importId")
        and any("ssm:PutParameter" in action for action, _ in statements(declaration, p.name))}
    assert writers == {"router-guard-policy"}


def test_a_disabled_guard_declares_nothing_of_it():
    names = {r.name for r in declared("no-guard").resources}
    assert names == {r.name for r in declared("minimal").resources} - {
        "router-guard", "router-guard-role", "router-guard-policy", "router-guard-logs", "router-guard-verdict",
        "router-guard-schedule", "guard-scheduler-role", "guard-scheduler-invoke", "router-guard-errors"}
    alarms = json.loads(declared("no-guard").named("video-processor-dashboard").inputs["dashboardBody"])
    assert alarms["widgets"][-1]["properties"]["alarms"] == [
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:easy-video-share-video-processor-{name}"
        for name in ("errors", "failed-events")]


def test_the_dashboard_puts_both_backends_side_by_side_with_the_alarms():
    dashboard = declared("custom").named("video-processor-dashboard")
    assert dashboard.inputs["dashboardName"] == "clips-video-processor"

    def by_backend(metric, stat):
        return [["VideoProcessor", metric, "Backend", backend, {"stat": stat, "label": f"{backend} {stat}"}]
                for backend in ("lambda", "celery")]

    def graph(title, metrics, x, y):
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
                "properties": {"title": title, "region": "eu-central-1", "view": "timeSeries", "stacked": False,
                               "period": 300, "metrics": metrics}}

    alarm = f"arn:aws:cloudwatch:eu-central-1:{ACCOUNT}:alarm:clips-video-processor"
    assert json.loads(dashboard.inputs["dashboardBody"]) == {"widgets": [
        graph("Jobs finished, by backend", by_backend("Jobs", "Sum"), 0, 0),
        graph("Failed jobs, by backend", by_backend("Failures", "Sum"), 12, 0),
        graph("Processing time (s), p50 and p95",
              by_backend("ProcessingTime", "p50") + by_backend("ProcessingTime", "p95"), 0, 6),
        graph("Video seconds processed", by_backend("VideoSeconds", "Sum"), 12, 6),
        graph("clips-video-processor: invocations, errors, throttles",
              [["AWS/Lambda", metric, "FunctionName", "clips-video-processor", {"stat": "Sum"}]
               for metric in ("Invocations", "Errors", "Throttles")], 0, 12),
        {"type": "alarm", "x": 12, "y": 12, "width": 12, "height": 6,
         "properties": {"title": "Alarms", "alarms": [f"{alarm}-errors", f"{alarm}-failed-events",
                                                      f"{alarm}-guard-errors"]}},
    ]}
