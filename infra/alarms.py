"""Alarms on the two signs that jobs are failing: function errors and failed events kept aside.

Async invocations fail out of sight of the backend (its invoke returned 202 long before), so
without these a broken deploy shows only as jobs that never finish. They carry no actions:
operators subscribe the notification they use to them.
"""

from __future__ import annotations

import pulumi_aws as aws

from infra.config import Settings

PERIOD_SECONDS = 300


def declare(settings: Settings, function: aws.lambda_.Function, failure_queue: aws.sqs.Queue) -> None:
    aws.cloudwatch.MetricAlarm(
        "video-processor-errors",
        name=f"{settings.function_name}-errors",
        alarm_description="The video processor raised an error (a retry may still succeed).",
        namespace="AWS/Lambda",
        metric_name="Errors",
        dimensions={"FunctionName": function.name},
        statistic="Sum",
        period=PERIOD_SECONDS,
        evaluation_periods=1,
        threshold=0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
    )
    aws.cloudwatch.MetricAlarm(
        "video-processor-failed-events",
        name=f"{settings.function_name}-failed-events",
        alarm_description="An event used up its retries or its maximum age and waits in the failure queue.",
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": failure_queue.name},
        statistic="Maximum",
        period=PERIOD_SECONDS,
        evaluation_periods=1,
        threshold=0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
    )
