"""The migration router: the Railway backend's one call to send a job to Lambda or to Celery.

    from router import DispatchError, check_environment, dispatch as dispatch_video

    check_environment()               # at the app's startup: raises naming every bad variable
    decision = dispatch_video(request)   # after the job row is written; raises DispatchError

Imported by name, never as ``import router``: the backend's ``main.py`` binds ``router`` to its
FastAPI ``APIRouter``. `decide` is the pure rule set (`router.decide`), `dispatch` adds the I/O:
the job row record, the async Lambda invoke or the Celery message, the fallback
(`router.dispatch`). Flags come from ``ROUTER_*`` variables over an SSM parameter over safe
defaults (`router.live_flags`).
`progress_events` feeds the backend's progress stream from Redis and the job row (`router.progress`).
Operators compare the backends and guard the rollout with ``python -m router report`` and
``guard`` (`router.report`, `router.guard`; on a schedule, `router.scheduled`).
"""

from router.counters import metrics, prometheus_text
from router.decide import Decision, decide
from router.dispatch import Router, dispatch
from router.errors import (ConfigurationError, DispatchError, FlagError, InvalidRequestError, RecordError,
                           RowMissingError)
from router.flags import RouterFlags
from router.live_flags import LiveFlags
from router.progress import progress_events
from router.settings import check_environment

__all__ = [
    "ConfigurationError", "Decision", "DispatchError", "FlagError", "InvalidRequestError", "LiveFlags", "RecordError",
    "Router", "RouterFlags", "RowMissingError", "check_environment", "decide", "dispatch", "metrics",
    "progress_events", "prometheus_text",
]
