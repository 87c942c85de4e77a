"""File sizes as operators type them (``120MB``, ``1.5GB``, plain bytes).

Units are binary (MB = 1,048,576 bytes), as Lambda counts /tmp and as
``max_lambda_file_size_mb`` is compared.
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "kb": 1024, "kib": 1024, "mb": 1024**2, "mib": 1024**2, "gb": 1024**3, "gib": 1024**3,
          "tb": 1024**4, "tib": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")


def parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else None
    if unit not in _UNITS:
        raise ValueError(f"not a file size: {text!r} (use bytes, or a number with KB, MB, GB or TB)")
    return round(float(match.group(1)) * _UNITS[unit])


def format_size(size: int) -> str:
    for unit in ("TB", "GB", "MB", "KB"):
        if size >= _UNITS[unit.lower()]:
            return f"{size / _UNITS[unit.lower()]:.1f} {unit}"
    return f"{size} bytes"
