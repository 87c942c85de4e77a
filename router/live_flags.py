"""Flags for the request path: layered sources, cached for a short time, refreshed when due.

The guarantee: a dispatch that starts more than the cache time (``ttl``) after a flag change
sees the change. Within the cache time a request gets the cached flags at once. A request that
finds them due wakes the refresher thread and waits for a refresh that began after it asked,
at most ``refresh_timeout`` (about a second; ``first_load_timeout`` for the very first one): a
source that does not answer by then, or that fails or holds a bad value, leaves its last good
values in force, and that is logged. With none ever loaded, its flags keep their safe defaults
(everything on Celery).

Serving stale flags until a background refresh landed would break the guarantee after an idle
period: the first request after a quiet spell would route on flags of any age.

A state's age counts from when its refresh began reading, not when it finished: a read that
began before a change and ended after it does not hold the change. The refresher is one
long-lived thread woken by an Event (a thread start can take milliseconds); a forked child,
where the thread does not exist, starts its own on its first due read.
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
DEFAULT_REFRESH_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class _State:
    flags: RouterFlags
    loaded_at: float  # time.monotonic() when the refresh that built it began reading


class LiveFlags:
    """``sources`` from lowest to highest precedence, for example ``[ssm, environment]``."""

    def __init__(self, sources: Sequence[FlagSource], *, ttl: float = DEFAULT_TTL_SECONDS,
                 first_load_timeout: float = DEFAULT_FIRST_LOAD_TIMEOUT_SECONDS,
                 refresh_timeout: float = DEFAULT_REFRESH_TIMEOUT_SECONDS) -> None:
        self._sources = tuple(sources)
        self._ttl = ttl
        self._first_load_timeout = first_load_timeout
        self._refresh_timeout = refresh_timeout
        self._last_good: dict[int, Snapshot] = {}
        self._state: _State | None = None
        self._lock = threading.Lock()
        self._refreshed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._refresher: threading.Thread | None = None
        self._generation = 0  # refreshes begun
        self._reading: str | None = None  # the source the running refresh waits on
        self._slow_logged = 0  # the refresh whose slowness was last logged (once per refresh)

    def current(self) -> RouterFlags:
        asked_at = time.monotonic()
        state = self._state
        if state is not None and asked_at - state.loaded_at < self._ttl:
            return state.flags
        timeout = self._first_load_timeout if state is None else self._refresh_timeout
        return self._refreshed_since(asked_at, timeout).flags

    def _refreshed_since(self, asked_at: float, timeout: float) -> _State:
        """A state whose reading began at or after ``asked_at``, waiting at most ``timeout`` for it."""
        self._request_refresh()
        deadline = asked_at + timeout
        with self._refreshed:
            while self._state is None or self._state.loaded_at < asked_at:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._late(asked_at, timeout)
                self._refreshed.wait(remaining)
            return self._state

    def _late(self, asked_at: float, timeout: float) -> _State:
        """The refresh did not finish in time (called with the lock held): the last good flags apply."""
        if self._state is None:
            # The first load: the sources that answered (the environment answers at once) and the
            # defaults apply until the slow one does.
            self._state = _State(self._layered(), asked_at)
        if self._slow_logged != self._generation:
            self._slow_logged = self._generation
            log_event(logging.WARNING, "router.flags_refresh_failed", source=self._reading,
                      error=f"no answer within {timeout:g} s", keeping=self._state.flags.version)
        return self._state

    def _request_refresh(self) -> None:
        self._wake.set()
        refresher = self._refresher
        if refresher is None or not refresher.is_alive():
            self._start_refresher()

    def _start_refresher(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another request is starting it, or a refresh is being stored
        try:
            if self._refresher is None or not self._refresher.is_alive():
                self._refresher = threading.Thread(target=self._run, name="router-flags-refresh", daemon=True)
                self._refresher.start()
        finally:
            self._lock.release()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Cleared before reading: a request that asks while this refresh runs needs the next one.
            self._wake.clear()
            self._refresh()

    def _refresh(self) -> None:
        started = time.monotonic()
        with self._lock:
            self._generation += 1
        # Highest precedence first: the environment answers at once, so a slow live source
        # cannot delay an emergency override on the first load.
        for index in reversed(range(len(self._sources))):
            self._fetch(index)
        with self._refreshed:
            previous = self._state
            self._state = state = _State(self._layered(), started)
            self._reading = None
            self._refreshed.notify_all()
        if previous is None or previous.flags.version != state.flags.version:
            log_event(logging.INFO, "router.flags_loaded", flags_version=state.flags.version)

    def _fetch(self, index: int) -> None:
        source = self._sources[index]
        self._reading = source.label
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

    def _layered(self) -> RouterFlags:
        """Called with the lock held: the refresh thread may be storing a snapshot."""
        flags, _ = RouterFlags.layered(self._last_good[index] for index in sorted(self._last_good))
        return flags
