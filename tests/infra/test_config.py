"""The stack configuration: defaults, accepted forms, and one error naming its key per bad value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, Settings, load

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
    assert loaded.function_name == "easy-video-share-video-processor"
    assert loaded.flags_parameter_name == "/easy-video-share/dev/router-flags"


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
    sweep = settings(sweep={"enabled": "false", "rateMinutes": "1", "olderThanMinutes": 10080, "action": "markFailed",
                            "maxRedispatches": 0}).sweep
    assert (sweep.enabled, sweep.rate_minutes, sweep.older_than_minutes, sweep.mode, sweep.max_redispatches) == (
        False, 1, 10080, "mark_failed", 0)


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
    ({"sweep": "daily"}, f"{NS}:sweep"),
    ({"sweep": {"every": 5}}, f"{NS}:sweep.every"),
    ({"sweep": {"enabled": "sometimes"}}, f"{NS}:sweep.enabled"),
    ({"sweep": {"enabled": 1}}, f"{NS}:sweep.enabled"),
    ({"sweep": {"rateMinutes": 0}}, f"{NS}:sweep.rateMinutes"),
    ({"sweep": {"rateMinutes": 1441}}, f"{NS}:sweep.rateMinutes"),
    ({"sweep": {"olderThanMinutes": 0}}, f"{NS}:sweep.olderThanMinutes"),
    ({"sweep": {"action": "mark_failed"}}, f"{NS}:sweep.action"),
    ({"sweep": {"maxRedispatches": 11}}, f"{NS}:sweep.maxRedispatches"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD, ids=[f"{key}-{index}" for index, (_, key) in enumerate(BAD)])
def test_bad_configuration_names_its_key(overrides: dict[str, Any], key: str):
    with pytest.raises(ConfigError) as raised:
        settings(**overrides)
    assert raised.value.key == key
    assert str(raised.value).startswith(f"configuration {key}: ")


def test_default_tags_are_allowed_when_nothing_is_adopted():
    loaded = settings(adoptExisting="false", aws__defaultTags=json.dumps({"tags": {"team": "video"}}))
    assert loaded.adopt_existing is False
