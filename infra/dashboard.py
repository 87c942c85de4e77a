"""A CloudWatch dashboard with both backends side by side, and the alarms.

The per-backend graphs read the Embedded Metric Format lines each finished job writes
(`processor.metrics`): in Lambda they become metrics as the log is ingested; the Celery
worker's become metrics only where its log is shipped to CloudWatch (docs/router.md). The
job rows stay the comparison of record: `python -m router report`.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import pulumi
import pulumi_aws as aws

from infra.config import Settings
from processor.metrics import DIMENSION, FAILURES, JOBS, NAMESPACE, PROCESSING_TIME, VIDEO_SECONDS

BACKENDS = ("lambda", "celery")
PERIOD_SECONDS = 300
WIDTH, HEIGHT = 12, 6


def _by_backend(metric: str, stat: str) -> list[list[Any]]:
    return [[NAMESPACE, metric, DIMENSION, backend, {"stat": stat, "label": f"{backend} {stat}"}]
            for backend in BACKENDS]


def _graph(title: str, metrics: list[list[Any]], region: str, x: int, y: int) -> dict[str, Any]:
    return {"type": "metric", "x": x, "y": y, "width": WIDTH, "height": HEIGHT,
            "properties": {"title": title, "region": region, "view": "timeSeries", "stacked": False,
                           "period": PERIOD_SECONDS, "metrics": metrics}}


def body(region: str, function_name: str, alarm_arns: Sequence[str]) -> str:
    """The dashboard's JSON, from plain values (so it can be checked without the engine)."""
    widgets = [
        _graph("Jobs finished, by backend", _by_backend(JOBS, "Sum"), region, 0, 0),
        _graph("Failed jobs, by backend", _by_backend(FAILURES, "Sum"), region, WIDTH, 0),
        _graph("Processing time (s), p50 and p95", _by_backend(PROCESSING_TIME, "p50")
               + _by_backend(PROCESSING_TIME, "p95"), region, 0, HEIGHT),
        _graph("Video seconds processed", _by_backend(VIDEO_SECONDS, "Sum"), region, WIDTH, HEIGHT),
        _graph(f"{function_name}: invocations, errors, throttles",
               [["AWS/Lambda", name, "FunctionName", function_name, {"stat": "Sum"}]
                for name in ("Invocations", "Errors", "Throttles")], region, 0, 2 * HEIGHT),
        {"type": "alarm", "x": WIDTH, "y": 2 * HEIGHT, "width": WIDTH, "height": HEIGHT,
         "properties": {"title": "Alarms", "alarms": list(alarm_arns)}},
    ]
    return json.dumps({"widgets": widgets}, sort_keys=True)


def declare(settings: Settings, function: aws.lambda_.Function,
            alarms: Sequence[aws.cloudwatch.MetricAlarm]) -> aws.cloudwatch.Dashboard:
    return aws.cloudwatch.Dashboard(
        "video-processor-dashboard",
        dashboard_name=settings.function_name,
        dashboard_body=pulumi.Output.all(function.name, *(alarm.arn for alarm in alarms)).apply(
            lambda values: body(settings.region, values[0], values[1:])),
    )
