"""In-process counters, readable as a plain dict or as Prometheus text.

Counters rather than a metrics client: the backend already runs whatever exporter it has
(Prometheus scrape, CloudWatch embedded metrics), and both read a dict of totals.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

_lock = threading.Lock()
_dispatches: Counter[tuple[str, str, bool]] = Counter()
_failures: Counter[str] = Counter()
_flag_failures: Counter[str] = Counter()


def count_dispatch(backend: str, reason: str, fell_back: bool) -> None:
    with _lock:
        _dispatches[backend, reason, fell_back] += 1


def count_failure(kind: str) -> None:
    with _lock:
        _failures[kind] += 1


def count_flag_failure(source: str) -> None:
    with _lock:
        _flag_failures[source] += 1


def metrics() -> dict[str, Any]:
    """Totals since the process started, JSON-serialisable."""
    with _lock:
        return {
            "dispatches": [{"backend": backend, "reason": reason, "fell_back": fell_back, "count": count}
                           for (backend, reason, fell_back), count in sorted(_dispatches.items())],
            "failures": dict(sorted(_failures.items())),
            "flag_refresh_failures": dict(sorted(_flag_failures.items())),
        }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text() -> str:
    """The counters in Prometheus' text exposition format."""
    snapshot = metrics()
    lines = ["# HELP router_dispatches_total Jobs handed to a backend, by backend, reason and fallback.",
             "# TYPE router_dispatches_total counter"]
    lines += [f'router_dispatches_total{{backend="{row["backend"]}",reason="{row["reason"]}",'
              f'fell_back="{str(row["fell_back"]).lower()}"}} {row["count"]}' for row in snapshot["dispatches"]]
    lines += ["# HELP router_dispatch_failures_total Jobs no backend took, by kind.",
              "# TYPE router_dispatch_failures_total counter"]
    lines += [f'router_dispatch_failures_total{{kind="{kind}"}} {count}' for kind, count in snapshot["failures"].items()]
    lines += ["# HELP router_flag_refresh_failures_total Failed reads of a flag source (last good flags kept).",
              "# TYPE router_flag_refresh_failures_total counter"]
    lines += [f'router_flag_refresh_failures_total{{source="{_escape(source)}"}} {count}'
              for source, count in snapshot["flag_refresh_failures"].items()]
    return "\n".join(lines) + "\n"
