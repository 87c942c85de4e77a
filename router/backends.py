"""The two ways a job leaves the backend: an async Lambda invoke and a Celery message.

Each `send` either hands the job over positively or raises `SendError`, quickly: a request
thread waits on these calls, so every network step is bounded (a few seconds at most, even with
the broker or the Lambda endpoint down). Neither adapter imports worker code: the router only
needs the event shape and the task name from `processor.contract`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from processor.contract import CELERY_TASK_NAME, Job
from router.errors import SendError

if TYPE_CHECKING:
    from celery import Celery

# Short timeouts and at most one retry: a slow Lambda endpoint must turn into a fallback to
# Celery within seconds, not hold the upload request for a minute (botocore's defaults).
# botocore's ``max_attempts`` counts retries (2 would mean 3 calls); ``total_max_attempts`` counts calls.
LAMBDA_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2})
# Lambda's async payload limit (DESIGN section 4): 1 MB since October 2025.
ASYNC_PAYLOAD_LIMIT = 1024 * 1024

# Celery's publish waits forever on a broker that accepts connections but never answers, and
# retries a refused connection 3 times: bound both so a dead broker fails in a few seconds.
PUBLISH_SETTINGS: dict[str, Any] = {
    "broker_connection_timeout": 2.0,
    "broker_pool_acquire_timeout": 2.0,
    "broker_transport_options": {"socket_connect_timeout": 2.0, "socket_timeout": 2.0},
    "task_publish_retry": True,
    "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
}


def lambda_client(region: str | None = None, **config: Any) -> BaseClient:
    """A Lambda client with the router's bounded settings (``config`` overrides some of them)."""
    return boto3.session.Session().client("lambda", region_name=region, config=LAMBDA_CONFIG.merge(Config(**config)))


def celery_app(broker_url: str) -> Celery:
    """A publishing-only app: it knows the broker, never the processor's tasks."""
    # Imported here, not at the top: the guard's function (infra/guard.py) imports the router
    # without Celery, which only sending a task needs.
    from celery import Celery

    app = Celery("router", broker=broker_url, set_as_current=False)
    app.conf.update(PUBLISH_SETTINGS)
    return app


class LambdaBackend:
    name = "lambda"

    def __init__(self, function_name: str | None, client: BaseClient | None = None, region: str | None = None) -> None:
        self.function_name = function_name
        self.region = region
        self._client = client

    def send(self, job: Job) -> None:
        if not self.function_name:
            raise SendError("no Lambda function configured (set VIDEO_PROCESSOR_FUNCTION_NAME)")
        payload = json.dumps(job.to_event(), ensure_ascii=False, separators=(",", ":")).encode()
        if len(payload) > ASYNC_PAYLOAD_LIMIT:
            raise SendError(f"the event is {len(payload)} bytes, over Lambda's async payload limit of "
                            f"{ASYNC_PAYLOAD_LIMIT} bytes")
        if self._client is None:
            self._client = lambda_client(self.region)
        try:
            response = self._client.invoke(FunctionName=self.function_name, InvocationType="Event",
                                           Payload=payload)
        except (BotoCoreError, ClientError) as error:
            raise SendError(f"Lambda invoke failed: {error}") from error
        response["Payload"].close()
        # 202 is the only answer that means the event was queued.
        if response["StatusCode"] != 202:
            raise SendError(f"Lambda answered {response['StatusCode']}, not 202")


class CeleryBackend:
    name = "celery"

    def __init__(self, broker_url: str | None = None, app: Celery | None = None, queue: str | None = None) -> None:
        self.broker_url = broker_url
        self.queue = queue
        self._app = app

    def send(self, job: Job) -> None:
        if self._app is None:
            if not self.broker_url:
                raise SendError("no Celery broker configured (set CELERY_BROKER_URL or REDIS_URL)")
            self._app = celery_app(self.broker_url)
        options = {"queue": self.queue} if self.queue else {}
        try:
            # The task id is the job id, so a task, its row and its progress channel share one id.
            self._app.send_task(CELERY_TASK_NAME, args=job.celery_args(), task_id=job.job_id, **options)
        # kombu, redis-py and the socket layer each raise their own types; whatever it is, the
        # job was not handed over and the caller must know.
        except Exception as error:  # noqa: BLE001
            raise SendError(f"Celery publish failed: {type(error).__name__}: {error}") from error
