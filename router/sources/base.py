"""The one interface every flag store implements, with the validation held once here.

Like Powertools' idempotency persistence layers: the base turns what a store read into a
validated `Snapshot`, each store only says how to read (`_read`). A store that cannot be read
raises `FlagSourceError`; one that holds a bad value raises `FlagError` naming the flag; either
way the caller keeps what it had (`router.live_flags`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping

from router.flags import Snapshot, validate_values


class FlagSource(ABC):
    #: Shown to operators as where a flag's value came from (``env``, ``ssm:/name``, ...).
    label: str

    def fetch(self) -> Snapshot | None:
        """The source's validated values, or None when it sets no flag at all."""
        read = self._read()
        if read is None:
            return None
        values, version = read
        return Snapshot(self.label, validate_values(values), version)

    @abstractmethod
    def _read(self) -> tuple[Mapping[str, Any], str] | None:
        """The raw values and a version that changes whenever they do."""
