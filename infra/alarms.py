"""Alarms on the two signs that jobs are failing: function errors and failed events kept aside.

Async invocations fail out of sight of the backend (its invoke returned 202 long before), so
without these a broken deploy shows only as jobs that never finish. They carry no actions:
operators subscribe the notification they use to them.
"""

from __future__ import annotations

import pulumi_aws as aws

from infra.config import Settings

PERIOD_SECONDS = 300


def alarm(resource_name: str, alarm_name: str, description: str, namespace: str, metric: str,
          dimensions: dict, statistic: str) -> aws.cloudwatch.MetricAlarm:
    """Alarm as soon as the metric is above zero in one period; no data is no trouble."""
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=alarm_name,
        alarm_description=description,
        namespace=namespace,
        metric_name=metric,
        dimensions=dimensions,
        statistic=statistic,
        period=PERIOD_SECONDS,
        evaluation_periods=1,
        threshold=0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
    )


def declare(settings: Settings, function: aws.lambda_.Function,
            failure_queue: aws.sqs.Queue) -> list[aws.cloudwatch.MetricAlarm]:
    """The alarms, for the dashboard (`infra/dashboard.py`) to show."""
    return [alarm("video-processor-errors", f"{settings.function_name}-errors",
                  "The video processor raised an error (a retry may still succeed).",
                  "AWS/Lambda", "Errors", {"FunctionName": function.name}, "Sum"),
            alarm("video-processor-failed-events", f"{settings.function_name}-failed-events",
                  "An event used up its retries or its maximum age and waits in the failure queue.",
                  "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": failure_queue.name}, "Maximum")]
