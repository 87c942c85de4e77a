"""The real google-genai (and google-auth) against a local Gemini that answers as the model would.

Nothing here reaches the internet: the base URL, the token endpoints and the federation's STS
all point at `sandbox.gemini.FakeGemini` on loopback. No test measures time: a slow model is
asserted through the fallback and the number of requests.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import unquote

import pytest
from processor.text_model import DEFAULT_ATTEMPTS, DEFAULT_MODEL, TextModelSettings, generate_texts
from processor.variations import FALLBACK, MODEL
from sandbox.gemini import (API_KEY, FEDERATED_TOKEN, IMPERSONATED_TOKEN, SERVICE_ACCOUNT_TOKEN, FakeGemini,
                            external_account_config, service_account_key)

GOOGLE_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_API_KEY", "GEMINI_API_KEY",
                    "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CREDENTIAL_CONFIG", "TEXT_VARIATIONS_MODEL",
                    "TEXT_VARIATIONS_BASE_URL", "TEXT_VARIATIONS_TIMEOUT_SECONDS", "TEXT_VARIATIONS_ATTEMPTS")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No Google variable from the machine; no gcloud configuration to find."""
    for name in GOOGLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))


@pytest.fixture
def gemini():
    with FakeGemini(slow_seconds=3.0) as server:
        yield server


def api_key_settings(gemini: FakeGemini, **variables: str) -> TextModelSettings:
    return TextModelSettings.from_env({"GOOGLE_API_KEY": API_KEY, "TEXT_VARIATIONS_BASE_URL": gemini.url,
                                       "TEXT_VARIATIONS_TIMEOUT_SECONDS": "1", **variables})


def test_api_key_mode_asks_once_and_uses_the_models_texts(gemini):
    result = generate_texts("Buy now", 4, "sales", api_key_settings(gemini))
    assert result.source == MODEL and result.reason is None
    assert result.texts == ("Buy now", "Buy now (take 1)", "Buy now (take 2)", "Buy now (take 3)")
    [call] = gemini.model_calls()
    assert call.path == f"/v1beta/models/{DEFAULT_MODEL}:generateContent"
    assert call.headers["x-goog-api-key"] == API_KEY
    config = call.json()["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {"type": "ARRAY", "items": {"type": "STRING"}}
    assert "exactly 3 strings" in call.prompt and '"sales"' in call.prompt


def test_in_lambda_the_api_key_comes_from_its_secure_parameter(gemini, aws):
    """The stack names the parameter (GOOGLE_API_KEY_PARAMETER), never puts the key in the environment."""
    import boto3

    from processor.parameters import secret

    boto3.client("ssm").put_parameter(Name="/video-share/dev/text-variations-api-key", Value=API_KEY,
                                      Type="SecureString")
    secret.cache_clear()
    settings = TextModelSettings.from_env({"GOOGLE_API_KEY_PARAMETER": "/video-share/dev/text-variations-api-key",
                                           "TEXT_VARIATIONS_BASE_URL": gemini.url,
                                           "TEXT_VARIATIONS_TIMEOUT_SECONDS": "1"})
    assert settings.mode == "api_key"
    result = generate_texts("Buy now", 2, None, settings)
    assert result.source == MODEL, result.reason
    [call] = gemini.model_calls()
    assert call.headers["x-goog-api-key"] == API_KEY


def test_an_unreadable_key_parameter_falls_back_and_says_which(gemini, aws):
    from processor.parameters import secret

    secret.cache_clear()
    settings = TextModelSettings.from_env({"GOOGLE_API_KEY_PARAMETER": "/video-share/dev/missing",
                                           "TEXT_VARIATIONS_BASE_URL": gemini.url})
    result = generate_texts("Buy now", 3, None, settings)
    assert (result.source, result.texts) == (FALLBACK, ("Buy now",) * 3)
    assert result.reason == ("credentials: GOOGLE_API_KEY_PARAMETER /video-share/dev/missing could not be read: "
                             "ParameterNotFound")
    assert gemini.model_calls() == []


def test_the_model_is_configurable(gemini):
    generate_texts("Buy now", 2, None, api_key_settings(gemini, TEXT_VARIATIONS_MODEL="gemini-2.5-flash-lite"))
    assert [call.path for call in gemini.model_calls()] == ["/v1beta/models/gemini-2.5-flash-lite:generateContent"]


def test_vertex_ai_with_application_default_credentials_as_the_worker_runs(gemini, tmp_path, monkeypatch):
    """The backend's variables: GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_LOCATION and ADC from a key file."""
    key = service_account_key(tmp_path / "key.json", f"{gemini.url}/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "video-share")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    monkeypatch.setenv("TEXT_VARIATIONS_BASE_URL", gemini.url)
    settings = TextModelSettings.from_env()
    assert settings.mode == "vertexai"
    result = generate_texts("Buy now", 3, None, settings)
    assert result.source == MODEL, result.reason
    assert [request.path for request in gemini.token_requests()] == ["/token"]
    assert gemini.token_requests()[0].form()["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    [call] = gemini.model_calls()
    assert call.path == ("/v1beta1/projects/video-share/locations/europe-west4/publishers/google/models/"
                         f"{DEFAULT_MODEL}:generateContent")
    assert call.headers["authorization"] == f"Bearer {SERVICE_ACCOUNT_TOKEN}"


@pytest.mark.parametrize("impersonate", [True, False])
def test_vertex_ai_through_workload_identity_federation_from_aws_credentials(gemini, monkeypatch, impersonate):
    """Lambda's way: its role's credentials (in the environment, as Lambda sets them) become a Google token."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAFUNCTIONROLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "role-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "role-session")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    account = "captions@video-share.iam.gserviceaccount.com" if impersonate else None
    config = external_account_config(gemini.url, account)
    settings = TextModelSettings.from_env({"GOOGLE_CLOUD_PROJECT": "video-share",
                                           "GOOGLE_CLOUD_LOCATION": "us-central1",
                                           "GOOGLE_CREDENTIAL_CONFIG": json.dumps(config),
                                           "TEXT_VARIATIONS_BASE_URL": gemini.url})
    result = generate_texts("Buy now", 2, None, settings)
    assert result.source == MODEL, result.reason
    exchange, *impersonation = gemini.token_requests()
    assert exchange.path == "/v1/token"
    form = exchange.form()
    assert form["subject_token_type"] == "urn:ietf:params:aws:token-type:aws4_request"
    assert form["audience"] == config["audience"]
    # The subject token is a GetCallerIdentity request signed with the role's own credentials.
    subject = json.loads(unquote(form["subject_token"]))
    assert "Action=GetCallerIdentity" in subject["url"]
    headers = {header["key"]: header["value"] for header in subject["headers"]}
    assert "Credential=ASIAFUNCTIONROLE/" in headers["Authorization"]
    assert headers["x-amz-security-token"] == "role-session"
    # Credentials and region came from the environment: no metadata endpoint was asked.
    assert [request.path for request in impersonation] == (
        ["/v1/projects/-/serviceAccounts/captions@video-share.iam.gserviceaccount.com:generateAccessToken"]
        if impersonate else [])
    [call] = gemini.model_calls()
    assert call.headers["authorization"] == f"Bearer {IMPERSONATED_TOKEN if impersonate else FEDERATED_TOKEN}"


@pytest.mark.parametrize("behaviour, requests, reason", [
    ("too_few", 1, "too_few: the model gave 1 usable text(s) of the 3 asked for"),
    ("garbage", 1, "unusable_answer: the answer is not JSON"),
    ("slow", 1, "timeout: no answer within 1 s"),  # a timeout is not retried: it would only wait again
    ("error500", DEFAULT_ATTEMPTS, "unavailable: HTTP 500 INTERNAL"),
])
def test_a_failing_model_falls_back_to_base_text_with_a_bounded_number_of_requests(gemini, behaviour, requests,
                                                                                   reason):
    gemini.behaviour = behaviour
    result = generate_texts("Buy now", 4, None, api_key_settings(gemini))
    assert result.source == FALLBACK
    assert result.reason.startswith(reason), result.reason
    assert result.texts[0] == "Buy now" and len(result.texts) == 4
    if behaviour != "too_few":
        assert result.texts == ("Buy now",) * 4
    assert len(gemini.model_calls()) == requests


def test_the_number_of_attempts_is_configurable(gemini):
    gemini.behaviour = "error500"
    generate_texts("Buy now", 2, None, api_key_settings(gemini, TEXT_VARIATIONS_ATTEMPTS="3"))
    assert len(gemini.model_calls()) == 3


def test_a_rejected_request_is_not_retried(gemini):
    result = generate_texts("Buy now", 2, None, api_key_settings(gemini, GOOGLE_API_KEY="wrong-key"))
    assert (result.source, result.reason.split(":")[0]) == (FALLBACK, "rejected")
    assert len(gemini.model_calls()) == 1


def test_an_unreachable_model_falls_back():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings = TextModelSettings.from_env({"GOOGLE_API_KEY": API_KEY,
                                           "TEXT_VARIATIONS_BASE_URL": f"http://127.0.0.1:{closed}"})
    result = generate_texts("Buy now", 2, None, settings)
    assert (result.texts, result.source) == (("Buy now", "Buy now"), FALLBACK)
    assert result.reason.startswith("unreachable: ConnectError")


def test_without_configuration_nothing_is_asked(gemini):
    result = generate_texts("Buy now", 3, None, TextModelSettings.from_env({"TEXT_VARIATIONS_BASE_URL": gemini.url}))
    assert (result.texts, result.source) == (("Buy now",) * 3, FALLBACK)
    assert result.reason.startswith("not_configured")
    assert gemini.requests == []


@pytest.mark.parametrize("variables, reason", [
    ({"TEXT_VARIATIONS_TIMEOUT_SECONDS": "soon"}, "TEXT_VARIATIONS_TIMEOUT_SECONDS must be a number from 1 to 120"),
    ({"TEXT_VARIATIONS_ATTEMPTS": "0"}, "TEXT_VARIATIONS_ATTEMPTS must be a whole number from 1 to 5"),
    ({"TEXT_VARIATIONS_ATTEMPTS": "2.5"}, "TEXT_VARIATIONS_ATTEMPTS must be a whole number"),
])
def test_a_bad_setting_falls_back_and_says_which(gemini, variables, reason):
    result = generate_texts("Buy now", 2, None, api_key_settings(gemini, **variables))
    assert result.source == FALLBACK and reason in result.reason
    assert gemini.requests == []


@pytest.mark.parametrize("config, reason", [
    ("{not json", "GOOGLE_CREDENTIAL_CONFIG is not JSON"),
    (json.dumps({"type": "service_account", "private_key": "..."}), "must be an external_account"),
    (json.dumps({"type": "external_account", "audience": "x", "subject_token_type": "y", "token_url": "z",
                 "credential_source": {"file": "/nowhere"}}), "GOOGLE_CREDENTIAL_CONFIG:"),
])
def test_only_a_federation_configuration_is_taken_from_the_environment(gemini, config, reason):
    settings = TextModelSettings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CREDENTIAL_CONFIG": config,
                                           "TEXT_VARIATIONS_BASE_URL": gemini.url})
    result = generate_texts("Buy now", 2, None, settings)
    assert result.source == FALLBACK
    assert result.reason.startswith("misconfigured") and reason in result.reason
    assert gemini.requests == []


def test_settings_read_the_backends_variables():
    assert TextModelSettings.from_env({}).mode is None
    vertex = TextModelSettings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_LOCATION": "us-central1",
                                         "GOOGLE_API_KEY": "k"})
    assert (vertex.mode, vertex.project, vertex.location) == ("vertexai", "p", "us-central1")  # as the backend: Vertex
    assert TextModelSettings.from_env({"GOOGLE_CLOUD_PROJECT": "p"}).location == "global"
    assert TextModelSettings.from_env({"GEMINI_API_KEY": "k"}).mode == "api_key"
    defaults = TextModelSettings.from_env({"GOOGLE_API_KEY": "k", "TEXT_VARIATIONS_MODEL": "  "})
    assert (defaults.model, defaults.timeout_seconds, defaults.attempts, defaults.problem) == (
        DEFAULT_MODEL, 30.0, DEFAULT_ATTEMPTS, None)
