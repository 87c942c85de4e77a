"""Structured log lines: one JSON object per line, which CloudWatch and Railway both index."""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger("router")


def log_event(level: int, event: str, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, json.dumps({"event": event, **fields}, default=str, separators=(",", ":")))
