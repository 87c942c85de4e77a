"""How the Redis broker hands a dead worker's task to a live one: the worker's transport options.

With ``acks_late`` a task stays unacknowledged in Redis while it runs. When its worker is
killed (SIGKILL, out of memory, a redeploy that does not wait) nobody acknowledges or rejects
it: kombu's Redis transport puts it back on its queue only once it has been unacknowledged for
``visibility_timeout`` seconds, and only when a consumer sweeps for such messages (once when a
worker starts, then every ``unacked_restore_interval`` seconds). kombu's default of an hour
stranded a killed job for that long.

The broker is not what prevents double work here: the job claim is (`processor.jobs`). A
redelivered copy of a task that is still running finds the holder's live lease, and the task
retries after the lease (`JobBusyError`), so the visibility timeout can be short. It must only
exceed the longest time a healthy worker holds a task it has not started: a retry waiting for
its countdown, which is at most one lease (`processor.tasks`). Otherwise each sweep would copy
the waiting retry again, and the copies would multiply.

So: twice the lease plus a margin. A job whose worker died is back on its queue within about
two leases and a sweep, and its retry claims it as soon as the dead attempt's lease has lapsed.

The unacknowledged messages live under keys of the processor's own: a consumer restores every
message in its unacked set that is older than *its* visibility timeout, and the backend's other
tasks, on a worker with kombu's hour-long default, must not be redelivered by this worker's
short one.
"""

from __future__ import annotations

from typing import Any

VISIBILITY_MARGIN_SECONDS = 10
# How often a consumer looks for messages past their visibility timeout. kombu 5.6 and later
# honour it (with the throttle at 1); older kombu sweeps every 100 s whatever is set here.
RESTORE_SWEEP_SECONDS = 10
UNACKED_KEY_PREFIX = "video_processor_unacked"


def visibility_timeout(lease_seconds: int) -> int:
    return 2 * lease_seconds + VISIBILITY_MARGIN_SECONDS


def transport_options(lease_seconds: int) -> dict[str, Any]:
    """The Celery app's ``broker_transport_options`` for a job lease of ``lease_seconds``."""
    return {
        "visibility_timeout": visibility_timeout(lease_seconds),
        "unacked_restore_interval": RESTORE_SWEEP_SECONDS,
        "unacked_restore_throttle": 1,
        "unacked_key": UNACKED_KEY_PREFIX,
        "unacked_index_key": f"{UNACKED_KEY_PREFIX}_index",
        "unacked_mutex_key": f"{UNACKED_KEY_PREFIX}_mutex",
    }
