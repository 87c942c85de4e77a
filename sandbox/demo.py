"""``make demo``: the whole migration on one machine, no AWS account.

A moto server plays AWS (the backend's bucket and job table, the router's flags parameter),
a sample video is uploaded and two job rows are written as the backend writes them, the
operators' flags are set with ``python -m router``, and ``router.dispatch`` sends one job to
Lambda and one to Celery, and a third, a 3-minute video, to Lambda, which fans it out: the
function starts the Step Functions state machine the Pulumi program declares, run here by moto's
own interpreter (`sandbox.step_functions`), which invokes the function once per item. The Lambda
jobs run from the built function zip and layer zip in a Lambda-shaped process
(`sandbox.lambda_invoker`); the Celery job runs on a real worker. All
publish progress on Redis (the function through the secret ``progressRedisUrl``, as deployed),
and the demo follows each job as the backend's stream endpoint would, with
``router.progress_events``, printing every message. It ends with a table, the stages seen for
each job, the fan-out's items and a contact sheet, and exits non-zero if any job did not complete.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from sandbox import backend
from sandbox.lambda_invoker import FunctionSpec, Invocation, LocalLambda
from sandbox.media import make_video
from sandbox.servers import redis_server
from sandbox.step_functions import moto_with_step_functions
from sandbox.workers import celery_worker

ROOT = Path(__file__).resolve().parent.parent
FLAGS_PARAMETER = "/easy-video-share/dev/router-flags"
JOB_TIMEOUT_SECONDS = 300
# user, texts, seconds of video, segment length: carol's job qualifies for fan-out (the stack's
# defaults: at least 4 segments and 120 s).
DEMO_JOBS = (
    ("alice", ["Alice's job ran on Lambda", "第二段 🎬", "مرحبا بالعالم"], 12, 4),
    ("bob", ["Bob's job ran on Celery", "Ещё Celery 👍", "नमस्ते दुनिया"], 12, 4),
    ("carol", ["Carol's job fanned out", "one item per segment", "all at once"], 180, 30),
)


@dataclass
class DemoJob:
    job_id: str
    user: str
    backend: str
    reason: str
    dispatched: float = 0.0
    finished: float | None = None
    row: dict | None = None
    stages: list[str] = field(default_factory=list)
    items: list[Invocation] = field(default_factory=list)  # a fanned-out job's item invocations


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def router_cli(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "router", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SystemExit(f"python -m router {' '.join(args)} failed: {result.stderr.strip()}")


class ProgressStream:
    """One job followed as the backend's stream endpoint follows it: `router.progress_events`
    (its Redis channel and its row), each message printed as it comes."""

    def __init__(self, job: DemoJob, redis_url: str, table: str) -> None:
        self.job = job
        self._thread = threading.Thread(target=self._run, args=(redis_url, table), daemon=True)
        self._thread.start()
        import redis

        counter, deadline = redis.Redis.from_url(redis_url), time.monotonic() + 10
        while counter.pubsub_numsub(f"job_progress_{job.job_id}")[0][1] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # subscribed before the job is sent, so no message is missed

    def _run(self, redis_url: str, table: str) -> None:
        import redis.asyncio as aioredis

        from router import progress_events

        async def follow() -> None:
            client = aioredis.Redis.from_url(redis_url)
            try:
                async for update in progress_events(self.job.job_id, redis=client, table=table):
                    self.job.stages.append(update["stage"])
                    segment = (f"segment {update['current_segment']}/{update['total_segments']}"
                               if update["current_segment"] else "")
                    print(f"    {self.job.user:6} {update['stage']:20} {update['progress_percentage']:5.1f}%  "
                          f"{segment}", flush=True)
            finally:
                await client.connection_pool.disconnect()
            self.job.finished = time.monotonic()

        try:
            asyncio.run(asyncio.wait_for(follow(), JOB_TIMEOUT_SECONDS))
        except (TimeoutError, asyncio.TimeoutError):
            print(f"    {self.job.user:6} no completed or failed message within {JOB_TIMEOUT_SECONDS} s", flush=True)

    def wait(self) -> None:
        self._thread.join(JOB_TIMEOUT_SECONDS + 5)
        self.job.row = backend.get_job_row(self.job.job_id)


def contact_sheet(segment_paths: list[Path], output: Path) -> Path:
    """One frame from the middle of each segment (its text burned in), tiled into one PNG."""
    from processor.binaries import tool

    frames = output.parent / "frames"
    frames.mkdir(parents=True, exist_ok=True)
    for old in frames.glob("*.png"):
        old.unlink()
    for index, path in enumerate(segment_paths):
        subprocess.run([tool("ffmpeg"), "-v", "error", "-y", "-ss", "1", "-i", str(path), "-frames:v", "1",
                        "-vf", "scale=480:-2", str(frames / f"frame_{index:03d}.png")], check=True)
    columns = min(3, len(segment_paths))
    rows = -(-len(segment_paths) // columns)
    subprocess.run([tool("ffmpeg"), "-v", "error", "-y", "-framerate", "1", "-i", str(frames / "frame_%03d.png"),
                    "-vf", f"tile={columns}x{rows}:padding=6:margin=6:color=white", "-frames:v", "1",
                    "-update", "1", str(output)], check=True)
    return output


def report(jobs: list[DemoJob], out: Path, bucket: str) -> bool:
    s3 = boto3.client("s3")
    print(f"\n{'job':10} {'user':6} {'backend':8} {'reason':12} {'status':10} {'segments':>8} {'seconds':>8}  durations")
    segments: list[Path] = []
    for job in jobs:
        row = job.row or backend.get_job_row(job.job_id) or {}
        durations = " ".join(f"{float(d):.2f}" for d in row.get("segment_durations", []))
        seconds = f"{job.finished - job.dispatched:.1f}" if job.finished else "-"
        print(f"{job.job_id[:8]:10} {job.user:6} {job.backend:8} {job.reason:12} {row.get('status', 'MISSING'):10} "
              f"{row.get('segments_created', 0):>8} {seconds:>8}  {durations}")
        if row.get("status") != "COMPLETED":
            print(f"{'':10} {row.get('error_type')}: {row.get('error_message')}")
        for key in row.get("output_s3_urls", []):
            local = out / "segments" / key
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(local))
            segments.append(local)
    for job in jobs:
        if job.items:
            print(f"\nitems of {job.user}'s job: {len(job.items)} invocations of the function, run together by "
                  "the state machine's Map")
            print(f"  {'segments':10} {'attempts':>8} {'seconds':>8}  status")
            for item in job.items:
                event = item.event["item"]
                span = f"{event['first']}-{event['first'] + event['count'] - 1}"
                print(f"  {span:10} {item.attempts:>8} {item.seconds:>8.1f}  {item.status}")
    print("\nstages seen (router.progress_events: the Redis channel and the job row)")
    for job in jobs:
        print(f"  {job.user:6} {job.backend:7} {' > '.join(dict.fromkeys(job.stages)) or 'none'}")
    if segments:
        print(f"\nsegments:      {out / 'segments'}")
        print(f"contact sheet: {contact_sheet(segments, out / 'contact-sheet.png')}")
    return all((job.row or {}).get("status") == "COMPLETED" for job in jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=ROOT / "demo-output", help="default: %(default)s")
    out = parser.parse_args(argv).output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)

    from infra import function_package
    from infra.mocked import MINIMAL_CONFIG, run_program
    from layers.ffmpeg import build as layer_build

    say("building the layer zip and the function zip (pinned sources, reproducible bytes)")
    layer_zip, code_zip = layer_build.build(), function_package.build()

    with moto_with_step_functions() as (moto, proxy), redis_server() as redis_url:
        os.environ.update(moto.environment())
        say(f"AWS is a moto server at {moto.endpoint}, running state machines; Redis at {redis_url}")
        say("reading the function's declared settings from the Pulumi program (run under mocks), with "
            "this Redis as the secret progressRedisUrl")
        declared = run_program({**MINIMAL_CONFIG, "progressRedisUrl": redis_url}, secrets=["progressRedisUrl"])
        function = declared.named("video-processor").inputs
        bucket, table = backend.create_bucket(), backend.create_table()
        boto3.client("ssm").put_parameter(Name=FLAGS_PARAMETER, Type="String", Value=json.dumps({"phase": "celery"}))
        # What `pulumi up` writes: the URL as a SecureString; the function knows only its name.
        parameter = declared.named("progress-redis-url").inputs
        boto3.client("ssm").put_parameter(Name=parameter["name"], Type=parameter["type"], Value=parameter["value"])
        machine = declared.named("video-processor-fanout").inputs
        boto3.client("stepfunctions").create_state_machine(
            name=machine["name"], definition=machine["definition"], type=machine["type"],
            roleArn=f"arn:aws:iam::123456789012:role/{declared.named('fanout-role').inputs['name']}")
        say(f"state machine {machine['name']}: the definition the Pulumi program declares")
        samples = {seconds: make_video(out / f"sample-{seconds}s.mp4", duration=float(seconds), width=640, height=360)
                   for seconds in sorted({job[2] for job in DEMO_JOBS})}
        say(f"sample videos: {', '.join(str(path) for path in samples.values())} (640x360, with audio)")

        queue = f"demo-{uuid.uuid4().hex[:8]}"
        worker_env = {**os.environ, "CELERY_BROKER_URL": redis_url, "REDIS_URL": redis_url,
                      "S3_BUCKET_NAME": bucket, "DYNAMODB_TABLE_NAME": table}
        spec = FunctionSpec.declared(function, declared.function_environment, code_zip, layer_zip)
        with LocalLambda(spec, moto.environment(), out / "lambda") as local_lambda, \
                celery_worker(worker_env, out / "celery-worker.log", queue=queue):
            proxy.lambda_endpoint = local_lambda.endpoint
            # The backend's Railway variables, as docs/router.md lists them.
            os.environ.update({
                "VIDEO_PROCESSOR_FUNCTION_NAME": function["name"], "DYNAMODB_TABLE_NAME": table,
                "S3_BUCKET_NAME": bucket, "CELERY_BROKER_URL": redis_url, "VIDEO_PROCESSOR_CELERY_QUEUE": queue,
                "ROUTER_FLAGS_PARAMETER": FLAGS_PARAMETER, "AWS_ENDPOINT_URL_LAMBDA": local_lambda.endpoint,
            })
            say("operator: python -m router flags set phase=canary lambda_percent=0 lambda_users=alice,carol")
            router_cli("flags", "set", "phase=canary", "lambda_percent=0", "lambda_users=alice,carol")

            import router

            jobs: list[DemoJob] = []
            streams: list[ProgressStream] = []
            for user, texts, seconds, segment_seconds in DEMO_JOBS:
                job = DemoJob(str(uuid.uuid4()), user, "?", "?")
                job_id = job.job_id
                sample = samples[seconds]
                key = backend.upload_video(str(sample), f"uploads/{user}/{job_id}.mp4", bucket)
                backend.put_job_row(job_id, key, table=table, user_id=user, file_size=sample.stat().st_size)
                streams.append(ProgressStream(job, redis_url, table))
                job.dispatched = time.monotonic()
                decision = router.dispatch({
                    "job_id": job_id, "s3_key": key, "user_id": user, "file_size": sample.stat().st_size,
                    "cutting_options": {"type": "fixed", "duration_seconds": segment_seconds},
                    "text_strategy": "unique_for_all",
                    "text_input": {"strategy": "unique_for_all", "unique_texts": texts}})
                say(f"router.dispatch: {user}'s job {job_id[:8]} -> {decision.backend} ({decision.reason})")
                job.backend, job.reason = decision.backend, decision.reason
                jobs.append(job)
            for stream in streams:
                stream.wait()
            for job in jobs:
                job.items = [invocation for invocation in local_lambda.invocations.values()
                             if isinstance(invocation.event, dict) and invocation.event.get("fanout") == "item"
                             and invocation.event["job"]["job_id"] == job.job_id]
                job.items.sort(key=lambda invocation: invocation.event["item"]["first"])
        return 0 if report(jobs, out, bucket) else 1


if __name__ == "__main__":
    sys.exit(main())
