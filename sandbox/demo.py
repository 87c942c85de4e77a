"""``make demo``: the whole migration on one machine, no AWS account.

A moto server plays AWS (the backend's bucket and job table, the router's flags parameter),
a sample video is uploaded and two job rows are written as the backend writes them, the
operators' flags are set with ``python -m router``, and ``router.dispatch`` sends one job to
Lambda and one to Celery. The Lambda job runs from the built function zip and layer zip in a
Lambda-shaped process (`sandbox.lambda_invoker`); the Celery job runs on a real worker. It
ends with a table and a contact sheet, and exits non-zero if any job did not complete.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3

from sandbox import backend
from sandbox.lambda_invoker import FunctionSpec, LocalLambda
from sandbox.media import make_video
from sandbox.servers import moto_server, redis_server
from sandbox.workers import celery_worker

ROOT = Path(__file__).resolve().parent.parent
FLAGS_PARAMETER = "/easy-video-share/dev/router-flags"
JOB_TIMEOUT_SECONDS = 300
DEMO_JOBS = (
    ("alice", ["Alice's job ran on Lambda", "第二段 🎬", "مرحبا بالعالم"]),
    ("bob", ["Bob's job ran on Celery", "Ещё Celery 👍", "नमस्ते दुनिया"]),
)


@dataclass
class DemoJob:
    job_id: str
    user: str
    backend: str
    reason: str
    dispatched: float
    finished: float | None = None
    row: dict | None = None


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def router_cli(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "router", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SystemExit(f"python -m router {' '.join(args)} failed: {result.stderr.strip()}")


def follow(jobs: list[DemoJob], timeout: float) -> None:
    """Poll the job rows, printing each stage change, until every job has finished."""
    seen: dict[str, tuple] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in jobs:
            row = backend.get_job_row(job.job_id) or {}
            state = (row.get("status"), row.get("processing_stage"), row.get("progress_percentage"))
            if state != seen.get(job.job_id):
                seen[job.job_id] = state
                print(f"    {job.user:6} {job.backend:7} {state[0] or '?':10} {state[1] or '':12} "
                      f"{int(state[2] or 0):3d}%", flush=True)
            if job.finished is None and row.get("status") in ("COMPLETED", "FAILED"):
                job.finished, job.row = time.monotonic(), row
        if all(job.finished is not None for job in jobs):
            return
        time.sleep(0.25)


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
    say("reading the function's declared settings from the Pulumi program (run under mocks)")
    declared = run_program(MINIMAL_CONFIG)
    function = declared.named("video-processor").inputs

    with moto_server() as moto, redis_server() as redis_url:
        os.environ.update(moto.environment())
        say(f"AWS is a moto server at {moto.endpoint}; Redis at {redis_url}")
        bucket, table = backend.create_bucket(), backend.create_table()
        boto3.client("ssm").put_parameter(Name=FLAGS_PARAMETER, Type="String", Value=json.dumps({"phase": "celery"}))
        sample = make_video(out / "sample.mp4", duration=12.0, width=640, height=360)
        say(f"sample video: {sample} (12 s, 640x360, with audio)")

        queue = f"demo-{uuid.uuid4().hex[:8]}"
        worker_env = {**os.environ, "CELERY_BROKER_URL": redis_url, "REDIS_URL": redis_url,
                      "S3_BUCKET_NAME": bucket, "DYNAMODB_TABLE_NAME": table}
        spec = FunctionSpec(function["name"], code_zip, (layer_zip,), function["handler"],
                            declared.function_environment, timeout_seconds=function["timeout"],
                            memory_mb=function["memorySize"])
        with LocalLambda(spec, moto.environment(), out / "lambda") as local_lambda, \
                celery_worker(worker_env, out / "celery-worker.log", queue=queue):
            # The backend's Railway variables, as docs/router.md lists them.
            os.environ.update({
                "VIDEO_PROCESSOR_FUNCTION_NAME": function["name"], "DYNAMODB_TABLE_NAME": table,
                "S3_BUCKET_NAME": bucket, "CELERY_BROKER_URL": redis_url, "VIDEO_PROCESSOR_CELERY_QUEUE": queue,
                "ROUTER_FLAGS_PARAMETER": FLAGS_PARAMETER, "AWS_ENDPOINT_URL_LAMBDA": local_lambda.endpoint,
            })
            say("operator: python -m router flags set phase=canary lambda_percent=0 lambda_users=alice")
            router_cli("flags", "set", "phase=canary", "lambda_percent=0", "lambda_users=alice")

            import router

            jobs: list[DemoJob] = []
            for user, texts in DEMO_JOBS:
                job_id = str(uuid.uuid4())
                key = backend.upload_video(str(sample), f"uploads/{user}/{job_id}.mp4", bucket)
                backend.put_job_row(job_id, key, table=table, user_id=user, file_size=sample.stat().st_size)
                decision = router.dispatch({
                    "job_id": job_id, "s3_key": key, "user_id": user, "file_size": sample.stat().st_size,
                    "cutting_options": {"type": "fixed", "duration_seconds": 4},
                    "text_strategy": "unique_for_all",
                    "text_input": {"strategy": "unique_for_all", "unique_texts": texts}})
                say(f"router.dispatch: {user}'s job {job_id[:8]} -> {decision.backend} ({decision.reason})")
                jobs.append(DemoJob(job_id, user, decision.backend, decision.reason, time.monotonic()))
            follow(jobs, JOB_TIMEOUT_SECONDS)
        return 0 if report(jobs, out, bucket) else 1


if __name__ == "__main__":
    sys.exit(main())
