"""The stack configuration: defaults, accepted forms, and one error naming its key per bad value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, Settings, TextVariationsSettings, load

NS = "lambda-video-processor"
BASE = {"aws:region": "eu-west-1", f"{NS}:existing": json.dumps({"bucketName": "videos-bucket"})}


def settings(**overrides: Any) -> Settings:
    raw = dict(BASE)
    for key, value in overrides.items():
        full = key.replace("__", ":") if "__" in key else f"{NS}:{key}"
        if value is None:
            raw.pop(full, None)
        else:
            raw[full] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return load(raw.get)


def test_defaults_are_the_issues():
    loaded = settings()
    assert (loaded.project_name, loaded.environment, loaded.region, loaded.adopt_existing) == (
        "easy-video-share", "dev", "eu-west-1", True)
    assert loaded.existing.bucket_name == "videos-bucket"
    assert loaded.existing.table_name == "easy-video-share-video-metadata"
    assert loaded.existing.role_name == "easy-video-share-lambda-execution-role"
    assert loaded.existing.policy_name == "easy-video-share-lambda-policy"
    assert loaded.existing.upload_prefix == "uploads/"
    function = loaded.function
    assert (function.memory_mb, function.timeout_seconds, function.ephemeral_storage_mb, function.architecture,
            function.reserved_concurrency, function.log_retention_days, function.max_retry_attempts,
            function.max_event_age_seconds) == (3008, 900, 10240, "x86_64", None, 30, 2, 21600)
    assert loaded.railway_user_name is None
    sweep = loaded.sweep
    assert (sweep.enabled, sweep.rate_minutes, sweep.older_than_minutes, sweep.action, sweep.mode,
            sweep.max_redispatches) == (True, 15, 15, "redispatch", "redispatch", 2)
    assert (loaded.guard.enabled, loaded.guard.rate_minutes, loaded.guard.window_minutes) == (True, 15, 60)
    assert loaded.function_name == "easy-video-share-video-processor"
    assert loaded.flags_parameter_name == "/easy-video-share/dev/router-flags"
    fanout = loaded.fanout
    assert (fanout.enabled, fanout.min_segments, fanout.min_duration_seconds, fanout.max_concurrency) == (
        True, 4, 120, 60)
    assert loaded.state_machine_name == "easy-video-share-video-processor-fanout"


def test_defaults_follow_the_project_name():
    loaded = settings(projectName="clips", environment="prod")
    assert loaded.existing.table_name == "clips-video-metadata"
    assert loaded.existing.role_name == "clips-lambda-execution-role"
    assert loaded.existing.policy_name == "clips-lambda-policy"
    assert loaded.function_name == "clips-video-processor"
    assert loaded.flags_parameter_name == "/clips/prod/router-flags"


def test_accepts_every_key_and_the_cli_forms_of_numbers_and_booleans():
    loaded = settings(
        adoptExisting="False",
        railwayUserName="railway-backend",
        existing={"bucketName": "videos.example-1", "tableName": "Jobs_v2", "roleName": "role+x",
                  "policyName": "policy@x", "uploadPrefix": "incoming/raw/"},
        function={"memoryMb": "10240", "timeoutSeconds": 1, "ephemeralStorageMb": 512, "architecture": "x86_64",
                  "reservedConcurrency": 0, "logRetentionDays": 3653, "maxRetryAttempts": 0,
                  "maxEventAgeSeconds": 60},
    )
    assert loaded.adopt_existing is False
    assert loaded.railway_user_name == "railway-backend"
    assert loaded.existing.upload_prefix == "incoming/raw/"
    assert (loaded.function.memory_mb, loaded.function.reserved_concurrency, loaded.function.max_event_age_seconds) == (
        10240, 0, 60)
    assert settings().function.max_output_long_side is None  # the processor's own default, 1920
    assert settings(function={"maxOutputLongSide": "1280"}).function.max_output_long_side == 1280
    sweep = settings(sweep={"enabled": "false", "rateMinutes": "1", "olderThanMinutes": 10080, "action": "markFailed",
                            "maxRedispatches": 0}).sweep
    assert (sweep.enabled, sweep.rate_minutes, sweep.older_than_minutes, sweep.mode, sweep.max_redispatches) == (
        False, 1, 10080, "mark_failed", 0)
    fanout = settings(fanout={"enabled": "false", "minSegments": "2", "minDurationSeconds": 0,
                              "maxConcurrency": 10000}).fanout
    assert (fanout.enabled, fanout.min_segments, fanout.min_duration_seconds, fanout.max_concurrency) == (
        False, 2, 0, 10000)
    guard = settings(guard={"enabled": "false", "rateMinutes": "1", "windowMinutes": 10080}).guard
    assert (guard.enabled, guard.rate_minutes, guard.window_minutes) == (False, 1, 10080)


BAD = [
    # (overrides, key named in the message)
    ({"existing": None}, f"{NS}:existing.bucketName"),
    ({"existing": {"tableName": "t-able"}}, f"{NS}:existing.bucketName"),
    ({"existing": {"bucketName": "Not_A_Bucket"}}, f"{NS}:existing.bucketName"),
    ({"existing": "videos-bucket"}, f"{NS}:existing"),
    ({"existing": {"bucketName": "videos-bucket", "bucket": "x"}}, f"{NS}:existing.bucket"),
    ({"existing": {"bucketName": "videos-bucket", "tableName": "no spaces"}}, f"{NS}:existing.tableName"),
    ({"existing": {"bucketName": "videos-bucket", "roleName": "r" * 65}}, f"{NS}:existing.roleName"),
    ({"existing": {"bucketName": "videos-bucket", "policyName": "a/b"}}, f"{NS}:existing.policyName"),
    ({"existing": {"bucketName": "videos-bucket", "uploadPrefix": "*"}}, f"{NS}:existing.uploadPrefix"),
    ({"existing": {"bucketName": "videos-bucket", "uploadPrefix": "uploads"}}, f"{NS}:existing.uploadPrefix"),
    ({"existing": {"bucketName": "videos-bucket", "uploadPrefix": ""}}, f"{NS}:existing.uploadPrefix"),
    ({"aws__region": None}, "aws:region"),
    ({"aws__region": "Europe"}, "aws:region"),
    ({"aws__defaultTags": json.dumps({"tags": {"team": "video"}})}, "aws:defaultTags"),
    ({"projectName": "Easy_Video"}, f"{NS}:projectName"),
    ({"projectName": "p" * 41}, f"{NS}:projectName"),
    ({"projectName": ""}, f"{NS}:projectName"),
    ({"environment": "-dev"}, f"{NS}:environment"),
    ({"adoptExisting": "yes"}, f"{NS}:adoptExisting"),
    ({"railwayUserName": "a user"}, f"{NS}:railwayUserName"),
    ({"function": [3008]}, f"{NS}:function"),
    ({"function": {"memory": 3008}}, f"{NS}:function.memory"),
    ({"function": {"memoryMb": 127}}, f"{NS}:function.memoryMb"),
    ({"function": {"memoryMb": 10241}}, f"{NS}:function.memoryMb"),
    ({"function": {"memoryMb": 3008.5}}, f"{NS}:function.memoryMb"),
    ({"function": {"memoryMb": True}}, f"{NS}:function.memoryMb"),
    ({"function": {"timeoutSeconds": 901}}, f"{NS}:function.timeoutSeconds"),
    ({"function": {"timeoutSeconds": 0}}, f"{NS}:function.timeoutSeconds"),
    ({"function": {"ephemeralStorageMb": 511}}, f"{NS}:function.ephemeralStorageMb"),
    ({"function": {"ephemeralStorageMb": 10241}}, f"{NS}:function.ephemeralStorageMb"),
    ({"function": {"architecture": "arm64"}}, f"{NS}:function.architecture"),
    ({"function": {"reservedConcurrency": -1}}, f"{NS}:function.reservedConcurrency"),
    ({"function": {"logRetentionDays": 31}}, f"{NS}:function.logRetentionDays"),
    ({"function": {"maxRetryAttempts": 3}}, f"{NS}:function.maxRetryAttempts"),
    ({"function": {"maxEventAgeSeconds": 59}}, f"{NS}:function.maxEventAgeSeconds"),
    ({"function": {"maxEventAgeSeconds": 21601}}, f"{NS}:function.maxEventAgeSeconds"),
    ({"function": {"maxOutputLongSide": 239}}, f"{NS}:function.maxOutputLongSide"),
    ({"function": {"maxOutputLongSide": 7681}}, f"{NS}:function.maxOutputLongSide"),
    ({"sweep": "daily"}, f"{NS}:sweep"),
    ({"sweep": {"every": 5}}, f"{NS}:sweep.every"),
    ({"sweep": {"enabled": "sometimes"}}, f"{NS}:sweep.enabled"),
    ({"sweep": {"enabled": 1}}, f"{NS}:sweep.enabled"),
    ({"sweep": {"rateMinutes": 0}}, f"{NS}:sweep.rateMinutes"),
    ({"guard": {"enabled": "maybe"}}, f"{NS}:guard.enabled"),
    ({"guard": {"windowMinutes": 4}}, f"{NS}:guard.windowMinutes"),
    ({"guard": {"rateMinutes": 1441}}, f"{NS}:guard.rateMinutes"),
    ({"guard": {"every": 5}}, f"{NS}:guard.every"),
    ({"sweep": {"rateMinutes": 1441}}, f"{NS}:sweep.rateMinutes"),
    ({"sweep": {"olderThanMinutes": 0}}, f"{NS}:sweep.olderThanMinutes"),
    ({"sweep": {"action": "mark_failed"}}, f"{NS}:sweep.action"),
    ({"sweep": {"maxRedispatches": 11}}, f"{NS}:sweep.maxRedispatches"),
    ({"fanout": "yes"}, f"{NS}:fanout"),
    ({"fanout": {"concurrency": 5}}, f"{NS}:fanout.concurrency"),
    ({"fanout": {"enabled": "maybe"}}, f"{NS}:fanout.enabled"),
    ({"fanout": {"minSegments": 1}}, f"{NS}:fanout.minSegments"),
    ({"fanout": {"minDurationSeconds": -1}}, f"{NS}:fanout.minDurationSeconds"),
    ({"fanout": {"maxConcurrency": 0}}, f"{NS}:fanout.maxConcurrency"),
    ({"fanout": {"maxConcurrency": 10001}}, f"{NS}:fanout.maxConcurrency"),
    ({"function": {"reservedConcurrency": 60}}, f"{NS}:fanout.maxConcurrency"),  # the default 60
    ({"function": {"reservedConcurrency": 50}, "fanout": {"maxConcurrency": 60}}, f"{NS}:fanout.maxConcurrency"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD, ids=[f"{key}-{index}" for index, (_, key) in enumerate(BAD)])
def test_bad_configuration_names_its_key(overrides: dict[str, Any], key: str):
    with pytest.raises(ConfigError) as raised:
        settings(**overrides)
    assert raised.value.key == key
    assert str(raised.value).startswith(f"configuration {key}: ")


def test_fanout_concurrency_stays_below_the_functions_reserved_concurrency():
    assert settings(function={"reservedConcurrency": 61}).fanout.max_concurrency == 60
    # 0 stops the function; without fan-out no job takes the Map's share.
    assert settings(function={"reservedConcurrency": 0}).function.reserved_concurrency == 0
    assert settings(function={"reservedConcurrency": 10}, fanout={"enabled": False}).fanout.enabled is False
    with pytest.raises(ConfigError) as raised:
        settings(function={"reservedConcurrency": 60})
    assert str(raised.value) == (f"configuration {NS}:fanout.maxConcurrency: must be below "
                                 "function.reservedConcurrency (60), got 60")


def test_default_tags_are_allowed_when_nothing_is_adopted():
    loaded = settings(adoptExisting="false", aws__defaultTags=json.dumps({"tags": {"team": "video"}}))
    assert loaded.adopt_existing is False


# --- base_vary's text variations ---------------------------------------------------------------

FEDERATION = {"type": "external_account",
              "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/aws/providers/aws",
              "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
              "token_url": "https://sts.googleapis.com/v1/token",
              "credential_source": {"environment_id": "aws1",
                                    "regional_cred_verification_url": "https://sts.{region}.amazonaws.com"
                                                                      "?Action=GetCallerIdentity&Version=2011-06-15"}}


def with_text_variations(text_variations: Any = None, api_key: str | None = None, secret: bool = True) -> Settings:
    raw = dict(BASE)
    if text_variations is not None:
        raw[f"{NS}:textVariations"] = json.dumps(text_variations)
    if api_key is not None:
        raw[f"{NS}:textVariationsApiKey"] = api_key
    return load(raw.get, lambda key: secret and key == f"{NS}:textVariationsApiKey")


def test_text_variations_are_off_by_default():
    assert settings().text_variations == TextVariationsSettings()


def test_text_variations_through_vertex_ai_with_federation():
    loaded = with_text_variations({"project": "video-share", "location": "us-central1", "credentialConfig": FEDERATION,
                                   "model": "gemini-2.5-flash", "baseUrl": "https://proxy.example.com",
                                   "timeoutSeconds": "20", "attempts": 3}).text_variations
    assert loaded == TextVariationsSettings(project="video-share", location="us-central1", credential_config=FEDERATION,
                                            model="gemini-2.5-flash", base_url="https://proxy.example.com",
                                            timeout_seconds=20, attempts=3)


def test_text_variations_through_an_api_key_held_as_a_secret():
    assert with_text_variations(api_key="AIza-secret").text_variations == TextVariationsSettings(api_key="AIza-secret")


TEXT_BAD = [
    ({"project": "video-share"}, None, "textVariations.credentialConfig", "is required with project"),
    ({"credentialConfig": FEDERATION}, None, "textVariations.project", "is required with credentialConfig"),
    ({"project": "video-share", "credentialConfig": {**FEDERATION, "type": "service_account"}}, None,
     "textVariations.credentialConfig", "never a service-account key"),
    ({"project": "video-share", "credentialConfig": {k: v for k, v in FEDERATION.items() if k != "audience"}}, None,
     "textVariations.credentialConfig", "lacks audience"),
    ({"project": "video-share", "credentialConfig": {**FEDERATION, "credential_source": {"file": "/token"}}}, None,
     "textVariations.credentialConfig.credential_source", "must be AWS's"),
    ({"project": "Video_Share", "credentialConfig": FEDERATION}, None, "textVariations.project", "must be a Google"),
    ({"model": "gemini 2.5"}, None, "textVariations.model", "must be a model name"),
    ({"baseUrl": "proxy:8080"}, None, "textVariations.baseUrl", "must be an http(s) URL"),
    ({"timeoutSeconds": 0}, None, "textVariations.timeoutSeconds", "must be a whole number from 1 to 120"),
    ({"attempts": 6}, None, "textVariations.attempts", "must be a whole number from 1 to 5"),
    ({"apiKey": "AIza"}, None, "textVariations.apiKey", "unknown key"),
    ({"project": "video-share", "credentialConfig": FEDERATION}, "AIza", "textVariationsApiKey", "set one"),
]


@pytest.mark.parametrize(("text_variations", "api_key", "key", "problem"), TEXT_BAD)
def test_bad_text_variations_name_their_key(text_variations: Any, api_key: str | None, key: str, problem: str):
    with pytest.raises(ConfigError) as raised:
        with_text_variations(text_variations, api_key)
    assert raised.value.key == f"{NS}:{key}"
    assert problem in raised.value.problem


def test_an_api_key_that_is_not_a_secret_is_refused():
    with pytest.raises(ConfigError) as raised:
        with_text_variations(api_key="AIza-in-plain-text", secret=False)
    assert raised.value.key == f"{NS}:textVariationsApiKey"
    assert "pulumi config set --secret textVariationsApiKey" in raised.value.problem
