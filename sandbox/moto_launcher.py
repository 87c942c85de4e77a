"""The moto server as the sandbox runs it: moto's own app, with DynamoDB's item-level atomicity.

DynamoDB applies each write to an item atomically, condition included: of two conditional
UpdateItems racing on one row, exactly one succeeds. moto's threaded server checks the
condition and then writes, without a lock, so two duplicate deliveries claiming the same job
at the same instant can both win there. The job claim (processor/jobs.py) relies on the real
service's guarantee; this launcher restores it by letting one DynamoDB write run at a time.
Everything else is moto's server unchanged (same arguments as ``python -m moto.server``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto import server

_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_TARGET_PREFIX = "DynamoDB_20120810."


def atomic_dynamodb_writes(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: DynamoDB write operations run one at a time, response included."""
    lock = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not (target.startswith(_TARGET_PREFIX) and target[len(_TARGET_PREFIX):] in _WRITES):
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))

    return serialised


class AtomicDispatcher(server.DomainDispatcherApplication):  # type: ignore[misc]
    """moto's request dispatcher, with DynamoDB writes serialised."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._serialised = atomic_dynamodb_writes(super().__call__)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self._serialised(environ, start_response)


def main(argv: list[str] | None = None) -> None:
    # moto's main() builds its dispatcher by this module-level name.
    server.DomainDispatcherApplication = AtomicDispatcher
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
