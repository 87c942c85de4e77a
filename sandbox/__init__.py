"""Local stand-ins for the backend's world, shared by the tests, the demo and the benchmarks.

A moto server on loopback plays AWS (boto3 reaches it through ``AWS_ENDPOINT_URL``, the same
variable a real deployment leaves unset), a Redis server plays the broker, and
`sandbox.backend` creates the bucket, table and job rows the way the running backend does.
Nothing here is imported by the processor or the router.
"""
