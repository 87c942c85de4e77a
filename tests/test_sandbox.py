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


def test_racing_conditional_claims_on_one_row_let_exactly_one_win(backend_world):
    """DynamoDB's guarantee the job claim rests on, kept by the sandbox's moto (`sandbox.moto_launcher`):
    a plain threaded moto server lets two of these win now and then."""
    import threading

    table = boto3.resource("dynamodb").Table(backend_world.table)
    barrier = threading.Barrier(4)

    def claim(job: str, winners: list[int], attempt: int) -> None:
        barrier.wait()
        try:
            table.update_item(Key={"video_id": job}, UpdateExpression="SET #status = :processing, attempt = :attempt",
                              ConditionExpression="#status = :queued", ExpressionAttributeNames={"#status": "status"},
                              ExpressionAttributeValues={":processing": "PROCESSING", ":queued": "QUEUED",
                                                         ":attempt": attempt})
            winners.append(attempt)
        except table.meta.client.exceptions.ConditionalCheckFailedException:
            pass

    for trial in range(40):
        job = f"race-{trial}"
        backend.put_job_row(job, "uploads/u/v.mp4")
        winners: list[int] = []
        threads = [threading.Thread(target=claim, args=(job, winners, attempt)) for attempt in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1, f"trial {trial}: {len(winners)} claims won"
        assert backend.get_job_row(job)["attempt"] == winners[0]
