"""Flags held in memory: for tests, for `decide` callers, and for proposals on the command line."""

from __future__ import annotations

from typing import Any, Mapping

from router.flags import validate_values
from router.sources.base import FlagSource


class StaticSource(FlagSource):
    def __init__(self, values: Mapping[str, Any] | None = None, *, label: str = "static") -> None:
        self.label = label
        self._generation = 0
        self.set(values or {})

    def set(self, values: Mapping[str, Any]) -> None:
        """Replace the values; a bad value is rejected here, before anything changes."""
        self._values = validate_values(values)
        self._generation += 1

    def _read(self) -> tuple[Mapping[str, Any], str]:
        return self._values, f"{self.label}:{self._generation}"
