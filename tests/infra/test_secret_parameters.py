"""``progressRedisUrl`` and ``textVariationsApiKey``: each reaches the function, and nowhere is it plain text.

The program runs under mocks; the state would hold what the engine receives, so a value the
engine receives as a secret is stored encrypted, and every other input and output is searched
for the password.
"""

from __future__ import annotations

import json
from functools import cache

import pytest

from infra.config import ConfigError, load
from infra.mocked import MINIMAL_CONFIG, Declaration, ProgramError, run_program

ACCOUNT = "123456789012"
PASSWORD = "pw-Zq81xK"
URL = f"rediss://default:{PASSWORD}@shuttle.proxy.rlwy.net:38211"
PARAMETER = "/easy-video-share/dev/progress-redis-url"
NS = "lambda-video-processor"


@cache
def with_progress() -> Declaration:
    return run_program({**MINIMAL_CONFIG, "progressRedisUrl": URL}, secrets=["progressRedisUrl"])


def test_the_url_is_a_secure_parameter_whose_value_the_state_keeps_encrypted():
    parameter = with_progress().named("progress-redis-url")
    assert parameter.type == "aws:ssm/parameter:Parameter"
    assert (parameter.inputs["name"], parameter.inputs["type"], parameter.inputs["value"]) == (
        PARAMETER, "SecureString", URL)
    assert parameter.secret_inputs == ("value",)


def test_the_function_gets_the_parameters_name_and_nothing_holds_the_password_in_clear():
    declaration = with_progress()
    assert declaration.function_environment["PROGRESS_REDIS_PARAMETER"] == PARAMETER
    for resource in declaration.resources:
        plain = {key: value for key, value in resource.inputs.items() if key not in resource.secret_inputs}
        assert PASSWORD not in json.dumps(plain), resource.name
    assert PASSWORD not in json.dumps(declaration.outputs)
    assert declaration.outputs["functionEnvironment"]["PROGRESS_REDIS_PARAMETER"] == PARAMETER


def test_the_function_may_read_that_one_parameter_and_no_other():
    document = json.loads(with_progress().named("video-processor-policy").inputs["policy"])
    reads = [s for s in document["Statement"] if any(a.startswith(("ssm:", "kms:")) for a in s["Action"])]
    assert reads == [{"Sid": "ReadFunctionSecrets", "Effect": "Allow", "Action": ["ssm:GetParameter"],
                      "Resource": [f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{PARAMETER}"]}]


def test_without_the_settings_there_is_no_parameter_and_no_permission():
    declaration = run_program(MINIMAL_CONFIG)
    assert not [r for r in declaration.resources if r.type == "aws:ssm/parameter:Parameter"
                and r.name not in ("router-flags", "router-guard-verdict")]
    assert not {"PROGRESS_REDIS_PARAMETER", "GOOGLE_API_KEY_PARAMETER"} & set(declaration.function_environment)
    assert "ssm:" not in declaration.named("video-processor-policy").inputs["policy"]


API_KEY = "AIza-not-in-outputs"
KEY_PARAMETER = "/easy-video-share/dev/text-variations-api-key"


@cache
def with_both() -> Declaration:
    return run_program({**MINIMAL_CONFIG, "progressRedisUrl": URL, "textVariationsApiKey": API_KEY},
                       secrets=["progressRedisUrl", "textVariationsApiKey"])


def test_the_api_key_is_a_secure_parameter_too_and_the_function_reads_both():
    declaration = with_both()
    parameter = declaration.named("text-variations-api-key")
    assert (parameter.inputs["name"], parameter.inputs["type"], parameter.inputs["value"]) == (
        KEY_PARAMETER, "SecureString", API_KEY)
    assert parameter.secret_inputs == ("value",)
    function = declaration.named("video-processor")
    assert function.secret_inputs == ()  # nothing secret in its configuration: names only
    assert function.inputs["environment"]["variables"]["GOOGLE_API_KEY_PARAMETER"] == KEY_PARAMETER
    assert "GOOGLE_API_KEY" not in function.inputs["environment"]["variables"]
    for resource in declaration.resources:
        plain = {key: value for key, value in resource.inputs.items() if key not in resource.secret_inputs}
        assert API_KEY not in json.dumps(plain), resource.name
    assert API_KEY not in json.dumps(declaration.outputs)
    document = json.loads(declaration.named("video-processor-policy").inputs["policy"])
    [reads] = [s for s in document["Statement"] if s["Sid"] == "ReadFunctionSecrets"]
    assert reads["Resource"] == [f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{PARAMETER}",
                                 f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{KEY_PARAMETER}"]


def test_a_url_set_without_secret_stops_the_program_without_printing_it():
    with pytest.raises(ProgramError) as raised:
        run_program({**MINIMAL_CONFIG, "progressRedisUrl": URL})
    assert raised.value.type_name == "ConfigError"
    assert "pulumi config set --secret progressRedisUrl" in raised.value.message
    assert PASSWORD not in raised.value.message


def raw(url: str):
    return {"aws:region": "us-east-1", f"{NS}:existing": json.dumps({"bucketName": "videos-bucket"}),
            f"{NS}:progressRedisUrl": url}.get


@pytest.mark.parametrize("url", [URL, "redis://10.0.0.5:6379/0", "rediss://:p%40ss@host.example:6380",
                                 "rediss://host.example:6380"])
def test_redis_urls_are_accepted(url: str):
    settings = load(raw(url), is_secret=lambda key: True)
    assert settings.progress_redis_url == url
    assert settings.progress_redis_parameter_name == PARAMETER
    assert url not in repr(settings)


@pytest.mark.parametrize("url", ["https://host.example", f"rediss://default:{PASSWORD}@", "rediss://a b@host:1",
                                 f"rediss://default:{PASSWORD}@host:6380/db0", ""])
def test_a_bad_url_names_the_key_and_not_the_value(url: str):
    with pytest.raises(ConfigError) as raised:
        load(raw(url), is_secret=lambda key: True)
    assert raised.value.key == f"{NS}:progressRedisUrl"
    assert PASSWORD not in str(raised.value)
