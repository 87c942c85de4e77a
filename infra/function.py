"""The video-processor function, where its logs and failed events go, and its async settings.

An async invoke is only queued when the backend gets its 202: Lambda retries a failed event
(``maxRetryAttempts``), keeps a throttled one up to ``maxEventAgeSeconds``, then drops it unless
an on-failure destination is set. The failure queue is that destination, so no job's event is
ever lost silently; its alarm says when one arrived.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.artifacts import Artifact
from infra.config import Settings
from infra.existing import Existing
from infra import secret_parameters
from infra.iam import ProcessorAccess

RUNTIME = "python3.12"
HANDLER = "processor.handler.lambda_handler"
# Lambda rejects a function that sets any of these (DESIGN section 4 and the Lambda docs).
RESERVED_ENVIRONMENT_KEYS = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_REGION", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT", "TZ",
})
ENVIRONMENT_LIMIT_BYTES = 4096
# SQS's longest retention: time for an operator to inspect and redrive a failed event.
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class Sinks:
    """Where the function's logs and failed events go; its permissions name both, so they exist first."""

    log_group: aws.cloudwatch.LogGroup
    failure_queue: aws.sqs.Queue


@dataclass(frozen=True)
class Processor:
    function: aws.lambda_.Function
    environment: dict[str, str]


def _text_variations_environment(settings: Settings) -> dict[str, str]:
    """What ``processor.text_model`` reads; unset keys keep the processor's defaults."""
    text = settings.text_variations
    variables = {
        "GOOGLE_CLOUD_PROJECT": text.project,
        "GOOGLE_CLOUD_LOCATION": text.location,
        "GOOGLE_CREDENTIAL_CONFIG": None if text.credential_config is None else json.dumps(
            text.credential_config, separators=(",", ":"), sort_keys=True),
        "TEXT_VARIATIONS_MODEL": text.model,
        "TEXT_VARIATIONS_BASE_URL": text.base_url,
        "TEXT_VARIATIONS_TIMEOUT_SECONDS": None if text.timeout_seconds is None else str(text.timeout_seconds),
        "TEXT_VARIATIONS_ATTEMPTS": None if text.attempts is None else str(text.attempts),
    }
    return {key: value for key, value in variables.items() if value is not None}


def environment(settings: Settings) -> dict[str, str]:
    """The function's environment: exactly what ``processor.config`` reads, and nothing Lambda reserves.

    ``MAX_ATTEMPTS`` tells the processor which delivery is Lambda's last (the first try plus
    the configured retries), so that attempt fails the job instead of leaving it PROCESSING.
    ``FANOUT_*`` say when a job fans out and over which state machine (`infra.state_machine`).
    ``PROGRESS_REDIS_PARAMETER`` and ``GOOGLE_API_KEY_PARAMETER`` name the parameters holding
    the progress Redis URL and the Gemini API key: the names only, never the values
    (`infra.secret_parameters`).
    """
    variables = {
        "S3_BUCKET_NAME": settings.existing.bucket_name,
        "DYNAMODB_TABLE_NAME": settings.existing.table_name,
        "MAX_ATTEMPTS": str(settings.function.max_retry_attempts + 1),
        **_text_variations_environment(settings),
    }
    if settings.function.max_output_long_side is not None:
        variables["VIDEO_MAX_LONG_SIDE"] = str(settings.function.max_output_long_side)
    variables.update({secret.variable: secret.parameter_name for secret in secret_parameters.wanted(settings)})
    if settings.fanout.enabled:
        # The machine's name only: processor.fanout derives its ARN from the function's own.
        variables.update({"FANOUT_STATE_MACHINE": settings.state_machine_name,
                          "FANOUT_MIN_SEGMENTS": str(settings.fanout.min_segments),
                          "FANOUT_MIN_DURATION_SECONDS": str(settings.fanout.min_duration_seconds)})
    reserved = sorted(RESERVED_ENVIRONMENT_KEYS & variables.keys())
    if reserved:
        raise ValueError(f"Lambda reserves the environment variables {reserved}; the function cannot set them")
    size = sum(len(key.encode()) + len(value.encode()) for key, value in variables.items())
    if size > ENVIRONMENT_LIMIT_BYTES:
        raise ValueError(f"the function's environment is {size} bytes; Lambda allows {ENVIRONMENT_LIMIT_BYTES}")
    return variables


def sinks(settings: Settings) -> Sinks:
    # Created by the program rather than by Lambda on first log line: a group Lambda creates has
    # no retention (logs kept forever) and belongs to no stack.
    log_group = aws.cloudwatch.LogGroup(
        "video-processor-logs",
        name=f"/aws/lambda/{settings.function_name}",
        retention_in_days=settings.function.log_retention_days,
    )
    failure_queue = aws.sqs.Queue(
        "video-processor-failures",
        name=f"{settings.function_name}-failures",
        message_retention_seconds=FAILURE_RETENTION_SECONDS,
        sqs_managed_sse_enabled=True,
    )
    return Sinks(log_group=log_group, failure_queue=failure_queue)


def declare(settings: Settings, existing: Existing, layer: aws.lambda_.LayerVersion, code: Artifact, sinks: Sinks,
            access: ProcessorAccess) -> Processor:
    variables = environment(settings)
    function = aws.lambda_.Function(
        "video-processor",
        name=settings.function_name,
        runtime=RUNTIME,
        handler=HANDLER,
        role=existing.role.arn,
        code=pulumi.FileArchive(str(code.path)),
        source_code_hash=code.source_code_hash,
        layers=[layer.arn],
        architectures=[settings.function.architecture],
        memory_size=settings.function.memory_mb,
        timeout=settings.function.timeout_seconds,
        ephemeral_storage=aws.lambda_.FunctionEphemeralStorageArgs(size=settings.function.ephemeral_storage_mb),
        reserved_concurrent_executions=settings.function.reserved_concurrency,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
        # The first invocation must find its log group (with retention) and its permissions in place.
        opts=pulumi.ResourceOptions(depends_on=[sinks.log_group, access.attachment]),
    )
    aws.lambda_.FunctionEventInvokeConfig(
        "video-processor-async",
        function_name=function.name,
        maximum_retry_attempts=settings.function.max_retry_attempts,
        maximum_event_age_in_seconds=settings.function.max_event_age_seconds,
        destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
            on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                destination=sinks.failure_queue.arn),
        ),
        # Lambda checks that the execution role may send to the destination when the config is
        # written: without the processor's policy attached first, the first `pulumi up` fails.
        opts=pulumi.ResourceOptions(depends_on=[access.attachment]),
    )
    return Processor(function=function, environment=variables)
