"""The guard's Lambda entry point: ``router.scheduled.lambda_handler``, invoked by its schedule.

The Pulumi program (infra/guard.py) runs it as a function of its own, with a role that may scan
the job table and read and write the flags and the verdict and nothing else: the video
processor's function never gets to change the flags. Its event: ``{"window_minutes": 60,
"dry_run": false}``; its environment names the table (``DYNAMODB_TABLE_NAME``) and the flags
parameter (``ROUTER_FLAGS_PARAMETER``).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from router.guard_run import DEFAULT_WINDOW_SECONDS, guard, verdict_parameter
from router.record import JobTable
from router.settings import FLAGS_PARAMETER, TABLE_NAME
from router.sources import SSMParameterSource
from router.sources.ssm import OPERATOR_SSM_CONFIG


class GuardEventError(ValueError):
    """The schedule's event or the function's environment cannot run the guard."""


def _window_seconds(event: Mapping[str, Any]) -> int:
    minutes = event.get("window_minutes", DEFAULT_WINDOW_SECONDS // 60)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        raise GuardEventError(f"window_minutes must be a whole number of at least 1, got {minutes!r}")
    return minutes * 60


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    # The runtime's root logger would drop the guard's INFO lines: a healthy verdict is worth a line too.
    logging.getLogger("router").setLevel(logging.INFO)
    event = event if isinstance(event, Mapping) else {}
    parameter, table = os.environ.get(FLAGS_PARAMETER, ""), os.environ.get(TABLE_NAME, "")
    if not parameter or not table:
        raise GuardEventError(f"{FLAGS_PARAMETER} and {TABLE_NAME} must name the flags parameter and the job table")
    run = guard(SSMParameterSource(parameter, config=OPERATOR_SSM_CONFIG),
                SSMParameterSource(verdict_parameter(parameter), config=OPERATOR_SSM_CONFIG), JobTable(name=table),
                window_seconds=_window_seconds(event), dry_run=event.get("dry_run") is True)
    return {**run.verdict.to_plain(), "applied": run.applied, "note": run.note}
