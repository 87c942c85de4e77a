"""Which AWS failures a retry can fix.

Throttling, 5xx and broken connections are transient: the handler raises them so Lambda's
async retry (or Celery's autoretry) runs the job again. Anything else from AWS (access denied,
missing table) would fail the same way on every retry.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from processor.errors import ProcessorError, TransientError

TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "ProvisionedThroughputExceededException", "RequestThrottled", "SlowDown", "TooManyRequestsException",
    "InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable",
    "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
    "TransactionConflictException",
})


class AwsError(ProcessorError):
    """An AWS call failed in a way a retry would not fix."""

    error_type = "aws_error"


def is_transient(error: Exception) -> bool:
    if isinstance(error, ClientError):
        response = error.response
        code = response.get("Error", {}).get("Code", "")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500 or status == 429
    return isinstance(error, (BotoConnectionError, HTTPClientError))


@contextlib.contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Translate botocore failures into TransientError or AwsError, naming the operation."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        if is_transient(error):
            raise TransientError(f"{what}: {error}") from error
        raise AwsError(f"{what}: {error}") from error
