"""Flags for the request path: layered sources, cached, refreshed off the request path.

Stale-while-revalidate: a request always gets the cached flags at once; when they are older
than the cache time it also wakes the refresher thread, whose result the following requests
see. Only the very first request waits, and at most ``first_load_timeout``: if the live source
has not answered by then, the flags from the sources that did (the environment) and the
defaults apply until it does. A source that fails or holds a bad value keeps its last good
values and the failure is logged; with none ever loaded, its flags keep their safe defaults
(everything on Celery). The refresher is one long-lived thread woken by an Event, so a stale
read costs an Event.set, not a thread start (which can take milliseconds); a forked child,
where the thread does not exist, starts its own on its first stale read.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Sequence

from router.counters import count_flag_failure
from router.flags import RouterFlags, Snapshot
from router.log import log_event
from router.sources import FlagSource

DEFAULT_TTL_SECONDS = 15.0
DEFAULT_FIRST_LOAD_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class _State:
    flags: RouterFlags
    loaded_at: float


class LiveFlags:
    """``sources`` from lowest to highest precedence, for example ``[ssm, environment]``."""

    def __init__(self, sources: Sequence[FlagSource], *, ttl: float = DEFAULT_TTL_SECONDS,
                 first_load_timeout: float = DEFAULT_FIRST_LOAD_TIMEOUT_SECONDS) -> None:
        self._sources = tuple(sources)
        self._ttl = ttl
        self._first_load_timeout = first_load_timeout
        self._last_good: dict[int, Snapshot] = {}
        self._state: _State | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._refresher: threading.Thread | None = None
        self._first_refresh_done = threading.Event()

    def current(self) -> RouterFlags:
        state = self._state
        if state is None:
            return self._first_load().flags
        if time.monotonic() - state.loaded_at >= self._ttl:
            self._request_refresh()
        return state.flags

    def _first_load(self) -> _State:
        self._request_refresh()
        self._first_refresh_done.wait(self._first_load_timeout)
        with self._lock:
            if self._state is None:
                # The slow source's values apply when its refresh completes.
                self._state = self._build_state()
            return self._state

    def _request_refresh(self) -> None:
        self._wake.set()
        refresher = self._refresher
        if refresher is None or not refresher.is_alive():
            self._start_refresher()

    def _start_refresher(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another request is starting it
        try:
            if self._refresher is None or not self._refresher.is_alive():
                self._refresher = threading.Thread(target=self._run, name="router-flags-refresh", daemon=True)
                self._refresher.start()
        finally:
            self._lock.release()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._refresh()
            # Cleared after the refresh: requests that saw the old flags meanwhile asked for this one.
            self._wake.clear()

    def _refresh(self) -> None:
        try:
            # Highest precedence first: the environment answers at once, so a slow live source
            # cannot delay an emergency override on the first load.
            for index in reversed(range(len(self._sources))):
                self._fetch(index)
            with self._lock:
                previous = self._state
                self._state = state = self._build_state()
            if previous is None or previous.flags.version != state.flags.version:
                log_event(logging.INFO, "router.flags_loaded", flags_version=state.flags.version)
        finally:
            self._first_refresh_done.set()

    def _fetch(self, index: int) -> None:
        source = self._sources[index]
        try:
            snapshot = source.fetch()
        # Any failure of a flag store (network, permissions, bad JSON, a bad value, a bug in a
        # custom source) must leave routing on the last good flags, never break a request.
        except Exception as error:  # noqa: BLE001
            kept = self._last_good.get(index)
            count_flag_failure(source.label)
            log_event(logging.WARNING, "router.flags_refresh_failed", source=source.label, error=str(error),
                      keeping=kept.version if kept else "defaults")
            return
        with self._lock:
            if snapshot is None:
                self._last_good.pop(index, None)
            else:
                self._last_good[index] = snapshot

    def _build_state(self) -> _State:
        """Called with the lock held: the refresh thread may be storing a snapshot."""
        flags, _ = RouterFlags.layered(self._last_good[index] for index in sorted(self._last_good))
        return _State(flags, time.monotonic())
