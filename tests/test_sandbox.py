"""The stand-ins themselves: a real moto endpoint answering boto3, the backend's table shape."""

import boto3
import pytest

from infra import job_table
from sandbox import backend


def test_backend_world_has_the_backends_table_and_bucket(backend_world):
    table = boto3.client("dynamodb").describe_table(TableName=backend_world.table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "video_id", "KeyType": "HASH"}]
    assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == {
        name for name, _, _ in job_table.INDEXES}
    versioning = boto3.client("s3").get_bucket_versioning(Bucket=backend_world.bucket)
    assert versioning["Status"] == "Enabled"


def test_job_row_is_written_like_the_backend_writes_it(backend_world, job_id):
    backend.put_job_row(job_id, "uploads/u/v.mp4", file_size=123)
    row = backend.get_job_row(job_id)
    assert row["status"] == "QUEUED"
    assert row["bucket_location"] == "uploads/u/v.mp4"
    assert row["created_at"].endswith("Z")
    assert row["file_size"] == 123


def test_without_a_running_redis_a_private_redis_server_is_started():
    import redis

    from sandbox.servers import free_port, redis_server

    nobody = ("127.0.0.1", free_port())
    with redis_server(system=nobody) as url:
        assert url != f"redis://{nobody[0]}:{nobody[1]}"
        client = redis.Redis.from_url(url)
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
    with pytest.raises(redis.ConnectionError):
        client.ping()
