"""Secrets the function reads at cold start: SecureString parameters named by its environment.

The stack never puts a credential in the function's environment, which anyone allowed
``lambda:GetFunctionConfiguration`` reads in clear text (infra/secret_parameters.py); it names
a parameter instead. Each value is read once per process: a rotated value reaches the function
at its next cold start.
"""

from __future__ import annotations

from functools import cache

# Bounded: a slow SSM must cost a job seconds, not botocore's default minute.
CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 2.0


def read_parameter(name: str) -> str:
    """The decrypted value of a SecureString parameter (uncached)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS,
                    retries={"mode": "standard", "total_max_attempts": 2})
    return boto3.client("ssm", config=config).get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


@cache
def secret(name: str) -> str:
    """``read_parameter`` once per process; a failed read is not remembered, so it is tried again."""
    return read_parameter(name)
