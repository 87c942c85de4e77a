"""The stack outputs: what operators and the backend's configuration read after `pulumi up`.

``backendEnvironment`` is the set of variables the Railway backend needs for the router, ready
to copy (`pulumi stack output backendEnvironment --json`); ``functionEnvironment`` is the
function's own environment as declared, which the end-to-end test reproduces locally.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.config import Settings
from infra.function import Processor, Sinks
from infra.iam import ProcessorAccess
from infra.state_machine import FanoutMachine


def export(settings: Settings, layer: aws.lambda_.LayerVersion, processor: Processor, sinks: Sinks,
           processor_access: ProcessorAccess, flags: aws.ssm.Parameter, backend_policy: aws.iam.Policy,
           fanout: FanoutMachine | None) -> None:
    pulumi.export("functionName", processor.function.name)
    pulumi.export("functionArn", processor.function.arn)
    pulumi.export("functionEnvironment", processor.environment)
    pulumi.export("layerArn", layer.arn)
    pulumi.export("routerFlagsParameter", flags.name)
    pulumi.export("failureQueueUrl", sinks.failure_queue.url)
    # The one policy to detach to take the processor's permissions away at once (docs/deploying.md).
    pulumi.export("processorPolicyArn", processor_access.policy.arn)
    pulumi.export("backendPolicyArn", backend_policy.arn)
    if fanout is not None:
        pulumi.export("fanoutStateMachineArn", fanout.state_machine.arn)
    pulumi.export("backendEnvironment", {
        "VIDEO_PROCESSOR_FUNCTION_NAME": processor.function.name,
        "ROUTER_FLAGS_PARAMETER": flags.name,
        "DYNAMODB_TABLE_NAME": settings.existing.table_name,
        "S3_BUCKET_NAME": settings.existing.bucket_name,
    })
