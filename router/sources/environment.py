"""``ROUTER_<FLAG>`` variables: the backend's Railway variables, and the emergency override.

They take precedence over the live source, so an operator can force ``ROUTER_KILL_SWITCH=true``
or ``ROUTER_PHASE=celery`` even when SSM is unreachable. An empty variable counts as unset (a
Railway variable cleared in the dashboard); ``[]`` empties a list.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Mapping

from router.flags import ENV_PREFIX, FLAG_NAMES, env_name
from router.settings import SETTING_VARIABLES
from router.sources.base import FlagSource


class EnvironmentSource(FlagSource):
    label = "env"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def _variables(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _read(self) -> tuple[Mapping[str, Any], str] | None:
        variables = self._variables()
        values = {flag: variables[env_name(flag)] for flag in FLAG_NAMES
                  if variables.get(env_name(flag), "").strip()}
        if not values:
            return None
        digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
        return values, f"env:{digest}"

    def unknown_variables(self) -> list[str]:
        """``ROUTER_*`` names that are no flag: most likely a typo an operator should see."""
        known = {env_name(flag) for flag in FLAG_NAMES} | set(SETTING_VARIABLES)
        return sorted(name for name in self._variables() if name.startswith(ENV_PREFIX) and name not in known)
