"""The migration router: the Railway backend's one call to send a job to Lambda or to Celery.

    from router import dispatch
    decision = dispatch(request)   # after the job row is written; raises DispatchError

`decide` is the pure rule set (`router.decide`), `dispatch` adds the I/O: the job row record,
the async Lambda invoke or the Celery message, the fallback (`router.dispatch`). Flags come
from ``ROUTER_*`` variables over an SSM parameter over safe defaults (`router.live_flags`).
`progress_events` feeds the backend's progress stream from Redis and the job row (`router.progress`).
"""

from router.counters import metrics, prometheus_text
from router.decide import Decision, decide
from router.dispatch import Router, dispatch
from router.errors import DispatchError, FlagError, InvalidRequestError, RecordError, RowMissingError
from router.flags import RouterFlags
from router.live_flags import LiveFlags
from router.progress import progress_events

__all__ = [
    "Decision", "DispatchError", "FlagError", "InvalidRequestError", "LiveFlags", "RecordError", "Router",
    "RouterFlags", "RowMissingError", "decide", "dispatch", "metrics", "progress_events", "prometheus_text",
]
