"""Per-job metrics as CloudWatch Embedded Metric Format lines: one JSON line on stdout per finished job.

In Lambda, CloudWatch Logs turns a line shaped like this into metrics as it ingests the log: no
PutMetricData call, no client, no extra dependency and nothing on the job's time. The Celery
worker writes the same line to its process's standard output (not through ``print``, which
Celery's worker redirects into its logger with a prefix that would break the format); it
becomes a metric only where that output is shipped to CloudWatch, so the job rows
(`python -m router report`) remain the comparison of record.

The dashboard (`infra/dashboard.py`) reads these names: change them together.
"""

from __future__ import annotations

import json
import sys
import time

NAMESPACE = "VideoProcessor"
DIMENSION = "Backend"
JOBS, FAILURES, PROCESSING_TIME, VIDEO_SECONDS = "Jobs", "Failures", "ProcessingTime", "VideoSeconds"


def job_metrics(backend: str, job_id: str, *, failed: bool, processing_seconds: float,
                video_seconds: float | None = None, error_type: str | None = None) -> dict:
    """The EMF document for one finished attempt (completed or failed), by backend."""
    metrics = [{"Name": JOBS, "Unit": "Count"}, {"Name": FAILURES, "Unit": "Count"},
               {"Name": PROCESSING_TIME, "Unit": "Seconds"}]
    document = {
        "_aws": {"Timestamp": int(time.time() * 1000),
                 "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [[DIMENSION]], "Metrics": metrics}]},
        DIMENSION: backend, JOBS: 1, FAILURES: 1 if failed else 0, PROCESSING_TIME: round(processing_seconds, 3),
        # Not dimensions: searchable in Logs Insights without multiplying metric costs.
        "job_id": job_id, "error_type": error_type,
    }
    if video_seconds is not None:
        metrics.append({"Name": VIDEO_SECONDS, "Unit": "Seconds"})
        document[VIDEO_SECONDS] = round(video_seconds, 3)
    return document


def emit(document: dict) -> None:
    # The process's own stdout, not the processor's log (stderr, with its own envelope) nor
    # sys.stdout (a Celery worker's logger): the line must be exactly the document.
    stream = sys.__stdout__ or sys.stdout
    stream.write(json.dumps(document, separators=(",", ":")) + "\n")
    stream.flush()
