"""`dispatch`: decide, record, send; the only part of the router that does I/O per job."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.client import BaseClient

from processor.contract import Job, make_job
from processor.errors import InvalidJobError
from router.backends import CeleryBackend, LambdaBackend
from router.counters import count_dispatch, count_failure
from router.decide import Decision, decide, size_decides
from router.errors import DispatchError, InvalidRequestError, RecordError, SendError
from router.flags import RouterFlags
from router.live_flags import LiveFlags
from router.log import log_event
from router.record import JobTable
from router.request import request_fields
from router.settings import Settings
from router.sources import EnvironmentSource, FlagSource, SSMParameterSource
from router.uploads import UploadSizes

if TYPE_CHECKING:
    from celery import Celery


@dataclass(frozen=True)
class Router:
    """The configured pieces; `dispatch` builds one from the environment and caches it."""

    flags: LiveFlags | RouterFlags
    lambda_backend: LambdaBackend
    celery_backend: CeleryBackend
    table: JobTable
    bucket: str | None = None
    uploads: UploadSizes | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Router:
        region = settings.region
        sources: list[FlagSource] = ([SSMParameterSource(settings.flags_parameter, region=region)]
                                     if settings.flags_parameter else [])
        return cls(
            flags=LiveFlags([*sources, EnvironmentSource()]),
            lambda_backend=LambdaBackend(settings.function_name, region=region),
            celery_backend=CeleryBackend(settings.broker_url, queue=settings.celery_queue),
            table=JobTable(name=settings.table_name, region=region),
            bucket=settings.bucket,
            uploads=UploadSizes(settings.bucket, region=region),
        )

    def with_overrides(self, *, flags: LiveFlags | RouterFlags | None = None, lambda_client: BaseClient | None = None,
                       celery_app: Celery | None = None, job_table: Any = None) -> Router:
        """The same router with some pieces supplied by the caller (its own clients, app or table)."""
        if job_table is not None and not isinstance(job_table, JobTable):
            job_table = JobTable(name=job_table) if isinstance(job_table, str) else JobTable(job_table)
        return replace(
            self,
            flags=self.flags if flags is None else flags,
            lambda_backend=self.lambda_backend if lambda_client is None
            else LambdaBackend(self.lambda_backend.function_name, lambda_client, self.lambda_backend.region),
            celery_backend=self.celery_backend if celery_app is None
            else CeleryBackend(app=celery_app, queue=self.celery_backend.queue),
            table=self.table if job_table is None else job_table,
        )

    def current_flags(self) -> RouterFlags:
        return self.flags if isinstance(self.flags, RouterFlags) else self.flags.current()

    def dispatch(self, request: Any) -> Decision:
        """Hand one job to a backend, in an order that never loses a job silently.

        1. Decide (pure) and validate the request against the job contract. An invalid request
           is refused before anything is sent; its row, if there is one, is marked ``FAILED``.
           A request without ``file_size`` whose backend depends on the size gets it from one
           bounded S3 HeadObject; only when that fails does ``unknown_size`` decide.
        2. Record the decision on the row: one UpdateItem conditional on the row existing. It is
           also the existence check, so a job without a row is refused before anything is sent
           (no worker could claim it, and the backend's late PutItem would overwrite the
           worker's ``PROCESSING``). If the table cannot be written, nothing is sent either: the
           caller gets the error and the row still says ``QUEUED``.
        3. Send. A Lambda invoke that does not answer 202 falls back to Celery when Celery exists
           and ``fallback_to_celery`` is on: the row is corrected first (``celery``,
           ``fallback``, ``fell_back``), then the task is published, so the row always names
           the last backend tried. If the correction cannot be written the task is published
           anyway: a job on Celery with a stale routing note beats a lost job.
        4. When no backend took the job, the row is marked ``FAILED`` with the reason (unless a
           worker already claimed it: an invoke that timed out may still have been delivered)
           and `DispatchError` is raised.

        A job that reached both backends runs once: the processor claims the row first.
        """
        fields = request_fields(request)
        flags = self.current_flags()
        decision = decide(fields, flags)
        try:
            job = self._job(fields)
            if job.file_size is None and self.uploads is not None and size_decides(fields, flags):
                size = self.uploads.size_of(job)
                if size is not None:
                    job, fields = replace(job, file_size=size), {**fields, "file_size": size}
                    decision = decide(fields, flags)
            self.table.record(job.job_id, decision, json.dumps(job.to_event(), ensure_ascii=False))
            decision = self._send(job, decision, flags)
        except DispatchError as error:
            count_failure(error.kind)
            log_event(logging.ERROR, "router.dispatch_failed", job_id=fields["job_id"], kind=error.kind,
                      backend=decision.backend, reason=decision.reason, flags_version=decision.flags_version,
                      error=str(error))
            raise
        count_dispatch(decision.backend, decision.reason, decision.fell_back)
        log_event(logging.INFO, "router.dispatch", job_id=job.job_id, backend=decision.backend,
                  reason=decision.reason, fell_back=decision.fell_back, flags_version=decision.flags_version,
                  error=decision.error)
        return decision

    def _job(self, fields: dict[str, Any]) -> Job:
        try:
            return make_job(**fields, bucket=self.bucket, source="router")
        except InvalidJobError as error:
            job_id = fields["job_id"]
            message = f"invalid job request: {error}"
            if isinstance(job_id, str) and job_id:
                message = self._mark_failed(job_id, message)
            raise InvalidRequestError(message, job_id=job_id if isinstance(job_id, str) else None) from error

    def _send(self, job: Job, decision: Decision, flags: RouterFlags) -> Decision:
        if decision.backend == "lambda":
            try:
                self.lambda_backend.send(job)
                return decision
            except SendError as error:
                lambda_error = str(error)
            if not (flags.celery_exists and flags.fallback_to_celery):
                raise DispatchError(self._mark_failed(
                    job.job_id, f"Lambda did not take the job and no fallback is allowed (phase {flags.phase}, "
                                f"fallback_to_celery {str(flags.fallback_to_celery).lower()}): {lambda_error}"),
                    job_id=job.job_id)
            decision = replace(decision, backend="celery", reason="fallback", fell_back=True, error=lambda_error)
            try:
                self.table.record(job.job_id, decision)
            except DispatchError as error:
                log_event(logging.WARNING, "router.fallback_not_recorded", job_id=job.job_id, error=str(error))
        try:
            self.celery_backend.send(job)
        except SendError as error:
            problem = str(error) if not decision.fell_back else f"{decision.error}; then {error}"
            raise DispatchError(self._mark_failed(job.job_id, f"no backend took the job: {problem}"),
                                job_id=job.job_id) from error
        return decision

    def _mark_failed(self, job_id: str, message: str) -> str:
        """Mark the row FAILED; returns the message, completed with what happened to the row."""
        try:
            if not self.table.mark_failed(job_id, message):
                return f"{message} (row not marked FAILED: it is missing or a worker has claimed the job)"
        except RecordError as error:
            return f"{message} (and the row could not be marked FAILED: {error})"
        return message


@functools.lru_cache(maxsize=8)
def _router_for(settings: Settings) -> Router:
    return Router.from_settings(settings)


def dispatch(request: Any, *, flags: LiveFlags | RouterFlags | None = None, lambda_client: BaseClient | None = None,
             celery_app: Celery | None = None, job_table: Any = None) -> Decision:
    """Route one job; with only the request, everything comes from the environment.

    The environment's router (its clients, its cached flags) is built on the first call and
    reused; changing the wiring variables builds a new one.
    """
    router = _router_for(Settings.from_environment())
    if flags is not None or lambda_client is not None or celery_app is not None or job_table is not None:
        router = router.with_overrides(flags=flags, lambda_client=lambda_client, celery_app=celery_app,
                                       job_table=job_table)
    return router.dispatch(request)
