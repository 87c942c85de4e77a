"""The Lambda entry point: ``processor.handler.lambda_handler``.

Async invocations: the return value goes nowhere (except to an on-success destination), so
what matters is the job row and the exception. Permanent errors return after marking the job
FAILED; transient ones raise so Lambda's async retry runs the job again.

The same function runs the stuck-job sweep when its schedule invokes it with
``{"action": "sweep", ...}`` (`processor.sweep`), and the steps of a fan-out when its state
machine invokes it with ``{"fanout": "prepare" | "item" | "finish" | "fail", ...}``
(`processor.fanout_steps`). A job that qualifies for fan-out (``FANOUT_*``) is claimed and
probed here, then handed to a new execution instead of being encoded.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from processor.contract import parse_event
from processor.logs import log
from processor.fanout_steps import FanoutStarter, FanoutSteps, is_step_event
from processor.pipeline import build_runner
from processor.sweep import is_sweep_event, scheduled_sweep

# Time kept back from Lambda's limit to stop ffmpeg, remove partial segments and mark the row
# FAILED: if Lambda killed the invocation first, the job would stay PROCESSING until its lease ran out.
SAFETY_MARGIN_SECONDS = 20.0


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000
    deadline = time.monotonic() + remaining - SAFETY_MARGIN_SECONDS
    # A fan-out step carries the job's event under "job".
    request = event.get("job") if is_step_event(event) else event
    job_id = request.get("job_id") if isinstance(request, Mapping) else None
    log("invocation", job_id=job_id if isinstance(job_id, str) else None,
        request_id=getattr(context, "aws_request_id", None), remaining_seconds=round(remaining, 1),
        **({"step": event["fanout"]} if is_step_event(event) else {}))
    runner = build_runner("lambda")
    if is_sweep_event(event):
        return scheduled_sweep(event, runner.store, context.function_name, deadline)
    if is_step_event(event):
        return FanoutSteps(runner).run(event, deadline)
    if runner.settings.fanout is not None:
        runner.fanout = FanoutStarter(runner.settings.fanout, context.invoked_function_arn)
    # A duplicate of a job another attempt holds waits here for it to finish or lapse: raising
    # at once would spend Lambda's two retries within three minutes of a long job.
    outcome = runner.run_request(lambda: parse_event(event, expected_bucket=runner.settings.bucket), job_id,
                                 deadline=deadline, wait_if_busy=True)
    return outcome.to_dict()
