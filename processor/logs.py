"""One structured JSON log line per stage, with the job id, for CloudWatch Logs Insights.

Lambda sends stdout/stderr to CloudWatch; the Celery worker and the local command write to a
terminal. A JSON line per event reads well in both and is queryable by ``job_id``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from processor.contract import utc_timestamp

_logger = logging.getLogger("processor")


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time: Celery, pytest and tools swap it."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _configure() -> None:
    if _logger.handlers:
        return
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    _logger.addHandler(handler)
    _logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    # Lambda's runtime installs its own root handler; without this every line would appear twice.
    _logger.propagate = False


def log(event: str, *, job_id: str | None, level: int = logging.INFO, **fields: Any) -> None:
    """Write one JSON line: ``{"timestamp", "level", "event", "job_id", ...fields}``."""
    _configure()
    if not _logger.isEnabledFor(level):
        return
    record = {"timestamp": utc_timestamp(), "level": logging.getLevelName(level), "event": event,
              "job_id": job_id, **fields}
    _logger.log(level, json.dumps(record, default=str, ensure_ascii=False))
