"""The function's secrets, as SecureString parameters: the progress Redis URL and the Gemini API key.

Both carry a credential (the Redis password, a key that does not expire). An environment
variable would put them in the function's configuration, which every principal allowed
``lambda:GetFunctionConfiguration`` reads in clear text (console viewers, CI roles), and in any
output that lists the environment. Instead the stack keeps each a Pulumi secret (encrypted in
the stack file and in the state) and writes it to a SecureString parameter (encrypted at rest
with the account's ``aws/ssm`` key); the function gets only the parameter's name and
``ssm:GetParameter`` on those parameters, and reads each value once per cold start. Changing
one is a `pulumi up` that the next cold start picks up.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import Settings


@dataclass(frozen=True)
class Secret:
    variable: str  # the function's environment variable that names the parameter
    logical_name: str
    parameter_name: str
    value: str
    description: str


def wanted(settings: Settings) -> list[Secret]:
    """The secrets this stack's settings hold (none by default)."""
    secrets = []
    if settings.progress_redis_url is not None:
        secrets.append(Secret(
            "PROGRESS_REDIS_PARAMETER", "progress-redis-url", settings.progress_redis_parameter_name,
            settings.progress_redis_url,
            f"The Redis URL {settings.function_name} publishes job progress to (backend's REDIS_URL)"))
    if settings.text_variations.api_key is not None:
        secrets.append(Secret(
            "GOOGLE_API_KEY_PARAMETER", "text-variations-api-key", settings.text_variations_api_key_parameter_name,
            settings.text_variations.api_key,
            f"The Gemini API key {settings.function_name} asks for base_vary's text variations with"))
    return secrets


def declare(settings: Settings) -> list[aws.ssm.Parameter]:
    return [aws.ssm.Parameter(secret.logical_name, name=secret.parameter_name, type="SecureString",
                              value=pulumi.Output.secret(secret.value), description=secret.description)
            for secret in wanted(settings)]
