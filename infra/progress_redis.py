"""Where the function publishes progress: the backend's Redis URL, as a SecureString parameter.

The URL carries the Redis password. An environment variable would put it in the function's
configuration, which every principal allowed ``lambda:GetFunctionConfiguration`` reads in clear
text (console viewers, CI roles), and in any output that lists the environment. Instead the
stack keeps it a Pulumi secret (encrypted in the stack file and in the state) and writes it to a
SecureString parameter (encrypted at rest with the account's ``aws/ssm`` key); the function gets
only the parameter's name and ``ssm:GetParameter`` on that one parameter, and reads the value
once per cold start. Changing the URL is a `pulumi up` that the next cold start picks up.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.config import Settings


def declare(settings: Settings) -> aws.ssm.Parameter | None:
    """The parameter, or None when ``progressRedisUrl`` is unset (progress then goes to the row only)."""
    if settings.progress_redis_url is None:
        return None
    return aws.ssm.Parameter(
        "progress-redis-url",
        name=settings.progress_redis_parameter_name,
        type="SecureString",
        value=pulumi.Output.secret(settings.progress_redis_url),
        description=f"The Redis URL {settings.function_name} publishes job progress to (backend's REDIS_URL)",
    )
