"""The language model behind base_vary: Gemini through ``google-genai``, the backend's own library.

Two modes, chosen from the environment the way the running backend is configured:

- Vertex AI when ``GOOGLE_CLOUD_PROJECT`` is set (``GOOGLE_CLOUD_LOCATION``, default
  ``global``), with application default credentials: ``GOOGLE_APPLICATION_CREDENTIALS`` on the
  worker, or in Lambda ``GOOGLE_CREDENTIAL_CONFIG``, a workload identity federation
  configuration (``external_account``: no secret in it) that trades the function's own AWS
  credentials for a Google token;
- otherwise the Gemini API with a key (``GOOGLE_API_KEY`` or ``GEMINI_API_KEY``; in Lambda,
  ``GOOGLE_API_KEY_PARAMETER`` names the SecureString parameter holding it).

``TEXT_VARIATIONS_MODEL``, ``TEXT_VARIATIONS_BASE_URL`` (a proxy, or a local server in tests),
``TEXT_VARIATIONS_TIMEOUT_SECONDS`` and ``TEXT_VARIATIONS_ATTEMPTS`` bound each call. Nothing
here raises into a job: every failure becomes a fallback to ``base_text`` with its reason.
``google.genai`` is imported only when a model is asked, so the router's side never needs it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

from processor.parameters import secret
from processor.variations import (TextVariations, UnusableAnswer, assemble, build_prompt, fallback, parse_answer,
                                  response_schema)

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_LOCATION = "global"
DEFAULT_TIMEOUT_SECONDS = 30.0
# Two tries: the job waits at most about twice the timeout, well inside the claim's 120 s lease.
DEFAULT_ATTEMPTS = 2
MAX_ATTEMPTS = 5
MAX_TIMEOUT_SECONDS = 120.0
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# Retried by google-genai (with backoff); a timeout is not retried: it would only wait again.
RETRY_STATUS_CODES = (408, 429, 500, 502, 503, 504)
RETRY_INITIAL_DELAY_SECONDS = 1.0
RETRY_MAX_DELAY_SECONDS = 4.0


class TextModelError(Exception):
    """The model could not give an answer; ``reason`` is the short code stored on the job row."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class TextModelSettings:
    project: str | None = None
    location: str = DEFAULT_LOCATION
    api_key: str | None = None
    # In Lambda: the SecureString parameter holding the key (infra/secret_parameters.py).
    api_key_parameter: str | None = None
    credential_config: str | None = None
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    attempts: int = DEFAULT_ATTEMPTS
    # A bad value is reported on the job row as the fallback's reason: it must not fail jobs.
    problem: str | None = None

    @property
    def mode(self) -> str | None:
        if self.project:
            return "vertexai"
        return "api_key" if self.api_key or self.api_key_parameter else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "TextModelSettings":
        def value(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None

        problems = []

        def number(name: str, default: float, high: float, kind: type) -> Any:
            raw = value(name)
            if raw is None:
                return default
            try:
                parsed = kind(raw)
            except ValueError:
                parsed = None
            if parsed is None or not 1 <= parsed <= high:
                problems.append(f"{name} must be a {'whole ' if kind is int else ''}number from 1 to {high:g}, "
                                f"got {raw!r}")
                return default
            return parsed

        return cls(
            project=value("GOOGLE_CLOUD_PROJECT"),
            location=value("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION,
            api_key=value("GOOGLE_API_KEY") or value("GEMINI_API_KEY"),
            api_key_parameter=value("GOOGLE_API_KEY_PARAMETER"),
            credential_config=value("GOOGLE_CREDENTIAL_CONFIG"),
            model=value("TEXT_VARIATIONS_MODEL") or DEFAULT_MODEL,
            base_url=value("TEXT_VARIATIONS_BASE_URL"),
            timeout_seconds=number("TEXT_VARIATIONS_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS,
                                   float),
            attempts=number("TEXT_VARIATIONS_ATTEMPTS", DEFAULT_ATTEMPTS, MAX_ATTEMPTS, int),
            problem="; ".join(problems) or None,
        )


def _bounded_request_class() -> type:
    import google.auth.transport.requests

    class BoundedRequest(google.auth.transport.requests.Request):
        """google-auth's HTTP transport with every wait capped at ``seconds``."""

        def __init__(self, seconds: float) -> None:
            super().__init__()
            self.seconds = seconds

        def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                     timeout: float | None = None, **kwargs: Any) -> Any:
            return super().__call__(url, method, body, headers, timeout=self.seconds, **kwargs)

    return BoundedRequest


def _credentials(settings: TextModelSettings) -> Any:
    """Vertex AI's credentials, refreshed once here with a bounded wait.

    ``GOOGLE_CREDENTIAL_CONFIG`` must be an ``external_account`` from AWS (the function's role):
    a service-account key in the environment would be a long-lived secret in plain sight, which
    is what federation avoids.
    Without it, application default credentials, as google-genai itself would load them. The
    refresh is done here because google-auth waits up to 120 s per token request by default.
    """
    import google.auth

    if settings.credential_config is None:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    else:
        try:
            info = json.loads(settings.credential_config)
        except ValueError:
            raise TextModelError("misconfigured", "GOOGLE_CREDENTIAL_CONFIG is not JSON") from None
        if not isinstance(info, dict) or info.get("type") != "external_account":
            raise TextModelError("misconfigured", "GOOGLE_CREDENTIAL_CONFIG must be an external_account "
                                                  "(workload identity federation) configuration")
        from google.auth import aws

        # Built directly: google.auth.load_credentials_from_dict would also look the project up
        # (a call to Cloud Resource Manager) although GOOGLE_CLOUD_PROJECT already names it.
        try:
            credentials = aws.Credentials.from_info(info, scopes=list(SCOPES))
        except ValueError as error:
            raise TextModelError("misconfigured", f"GOOGLE_CREDENTIAL_CONFIG: {error}") from None
    credentials.refresh(_bounded_request_class()(settings.timeout_seconds))
    return credentials


def _client(settings: TextModelSettings) -> Any:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(
        base_url=settings.base_url,
        timeout=int(settings.timeout_seconds * 1000),  # milliseconds
        retry_options=types.HttpRetryOptions(
            attempts=settings.attempts, initial_delay=RETRY_INITIAL_DELAY_SECONDS,
            max_delay=RETRY_MAX_DELAY_SECONDS, http_status_codes=list(RETRY_STATUS_CODES)),
    )
    if settings.mode == "vertexai":
        return genai.Client(vertexai=True, project=settings.project, location=settings.location,
                            credentials=_credentials(settings), http_options=options)
    return genai.Client(api_key=settings.api_key or _api_key_from(settings.api_key_parameter), http_options=options)


def _api_key_from(parameter: str | None) -> str | None:
    from botocore.exceptions import BotoCoreError, ClientError

    if parameter is None:
        return None
    try:
        return secret(parameter)
    except (BotoCoreError, ClientError) as error:
        raise TextModelError("credentials", f"GOOGLE_API_KEY_PARAMETER {parameter} could not be read: "
                                            f"{type(error).__name__}") from None


def ask(settings: TextModelSettings, prompt: str) -> str:
    """The model's answer to ``prompt`` as text; TextModelError with a reason code otherwise."""
    import httpx
    from google.auth import exceptions as auth_errors
    from google.genai import errors, types

    try:
        client = _client(settings)
        response = client.models.generate_content(
            model=settings.model, contents=prompt,
            config=types.GenerateContentConfig(response_mime_type="application/json",
                                               response_schema=response_schema()))
    except TextModelError:
        raise
    except errors.APIError as error:
        reason = "unavailable" if error.code in RETRY_STATUS_CODES else "rejected"
        raise TextModelError(reason, f"HTTP {error.code} {error.status or ''} {error.message or ''}".strip()) from None
    except httpx.TimeoutException:
        raise TextModelError("timeout", f"no answer within {settings.timeout_seconds:g} s") from None
    except httpx.HTTPError as error:
        raise TextModelError("unreachable", f"{type(error).__name__}: {error}") from None
    except auth_errors.GoogleAuthError as error:
        raise TextModelError("credentials", f"{type(error).__name__}: {error}") from None
    except ValueError as error:  # google-genai's own checks (missing project, location or key)
        raise TextModelError("misconfigured", str(error)) from None
    try:
        return response.text or ""
    except ValueError as error:  # no text part: a blocked or empty candidate
        raise TextModelError("unusable_answer", str(error)) from None


def generate_texts(base_text: str, count: int, context: str | None, settings: TextModelSettings) -> TextVariations:
    """``count`` texts for the segments of one job: the model's when it can, else ``base_text``."""
    if settings.problem:
        return fallback(base_text, count, f"misconfigured: {settings.problem}")
    if settings.mode is None:
        return fallback(base_text, count, "not_configured: set GOOGLE_CLOUD_PROJECT (Vertex AI) "
                                          "or GOOGLE_API_KEY (Gemini API)")
    try:
        answer = ask(settings, build_prompt(base_text, count - 1, context))
        return assemble(base_text, count, parse_answer(answer))
    except TextModelError as error:
        return fallback(base_text, count, str(error))
    except UnusableAnswer as error:
        return fallback(base_text, count, f"unusable_answer: {error}")
    except Exception as error:  # noqa: BLE001 - a library surprise must not fail the job either
        return fallback(base_text, count, f"error: {type(error).__name__}: {error}")
