"""Fan-out on real parts: the state machine the Pulumi program declares, run by moto's own Step
Functions interpreter, its Lambda tasks run by the local Lambda from the built zips."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from infra.mocked import MINIMAL_CONFIG, run_program
from processor.engine import EncodeSettings, cut
from processor.binaries import tool
from processor.contract import make_job, parse_event
from processor.fanout import FanoutSettings
from processor.fanout_steps import FanoutStarter
from processor.jobs import JobStore
from processor.plan import plan
from processor.probe import probe
from sandbox import backend
from sandbox.lambda_invoker import FunctionSpec, InvokerUnavailable, LocalLambda
from sandbox.media import gray_frame, make_video, mean_abs_diff
from sandbox.servers import MotoServer, ServerUnavailable
from sandbox.step_functions import FrontProxy, moto_with_step_functions
from tests.conftest import BackendWorld
from tests.jobworld import QueuedJob, queue_job
from tests.processes import command_of, descendants, wait_until

FRAME = 1 / 30
TEXTS = ["first part", "second part", "third part", "fourth part", "fifth part", "sixth part"]


@pytest.fixture(scope="module")
def fanout_declared(redis_url):
    return run_program({**MINIMAL_CONFIG, "progressRedisUrl": redis_url,
                        "fanout": {"minSegments": 2, "minDurationSeconds": 0, "maxConcurrency": 3}},
                       secrets=["progressRedisUrl"])


@dataclass(frozen=True)
class FanoutWorld:
    local: LocalLambda
    arn: str  # the state machine's
    proxy: FrontProxy
    server: MotoServer


# The backend's default names, which the declared function uses.
TABLES = BackendWorld(backend.DEFAULT_BUCKET, backend.DEFAULT_TABLE)


@pytest.fixture(scope="module")
def world(fanout_declared, shipped_zips, tmp_path_factory):
    """moto running state machines, the declared machine created in it, the local Lambda behind it."""
    with contextlib.ExitStack() as stack:
        try:
            server, proxy = stack.enter_context(moto_with_step_functions())
        except ServerUnavailable as error:
            pytest.fail(f"moto server could not start: {error}")
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in server.environment().items():
            patch.setenv(name, value)
        backend.create_bucket()
        backend.create_table()
        machine = fanout_declared.named("video-processor-fanout").inputs
        role = fanout_declared.named("fanout-role").inputs["name"]
        arn = boto3.client("stepfunctions").create_state_machine(
            name=machine["name"], definition=machine["definition"], type=machine["type"],
            roleArn=f"arn:aws:iam::123456789012:role/{role}")["stateMachineArn"]
        layer_zip, code_zip = shipped_zips
        spec = FunctionSpec.declared(fanout_declared.named("video-processor").inputs,
                                     fanout_declared.function_environment, code_zip, layer_zip,
                                     timeout_seconds=120, retry_delays=(0.5, 0.5))
        try:
            local = stack.enter_context(
                LocalLambda(spec, server.environment(), tmp_path_factory.mktemp("fanout-lambda")))
        except InvokerUnavailable as error:
            pytest.fail(f"cannot run the function as Lambda does: {error}")
        proxy.lambda_endpoint = local.endpoint
        yield FanoutWorld(local, arn, proxy, server)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("fanout-media") / "clip.mp4", duration=24.0)


def start_job(local: LocalLambda, video: Path, job_id: str, **event) -> tuple[QueuedJob, str]:
    queued = queue_job(TABLES, video, job_id)
    return queued, local.invoke_async(queued.event(cutting_options={"type": "fixed", "duration_seconds": 4}, **event))


def executions(arn: str) -> list[dict]:
    return boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]


def finished(arn: str, job_id: str, timeout: float = 240) -> dict:
    client = boto3.client("stepfunctions")

    def done():
        mine = [e for e in executions(arn) if e["name"].startswith(job_id)]
        return mine and mine[0]["status"] != "RUNNING" and client.describe_execution(
            executionArn=mine[0]["executionArn"])
    return wait_until(done, timeout, lambda: f"no finished execution for {job_id}: {executions(arn)}", interval=0.5)


def history(execution: dict) -> list[dict]:
    """The execution's events, for an assertion's message."""
    return boto3.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])["events"]


def test_a_fanned_out_job_matches_the_single_pass(world, long_clip, job_id, tmp_path):
    local, arn = world.local, world.arn
    queued, request_id = start_job(local, long_clip, job_id, text_strategy="unique_for_all",
                                   text_input={"unique_texts": TEXTS})
    execution = finished(arn, job_id)
    assert execution["status"] == "SUCCEEDED", json.dumps(history(execution), default=str, indent=1)
    assert local.invocations[request_id].result["status"] == "fanned_out"
    # It probed the upload's index over HTTP and never downloaded it.
    assert "downloading_video" not in local.invocations[request_id].logs[-1].read_text()
    row = queued.wait_for("COMPLETED")
    assert row["processed_by"] == "lambda" and len(row["segments_done"]) == 6
    keys = [f"processed/{job_id}/segment_{i:03d}.mp4" for i in range(6)]
    assert row["output_s3_urls"] == keys and queued.segment_keys() == keys and row["segments_created"] == 6
    # The report's figures, as the single pass records them: the video's length, claim to finish.
    assert float(row["input_duration_seconds"]) == pytest.approx(24.0, abs=0.05)
    assert 0 < float(row["processing_seconds"]) < 240
    # What the report costs it by (router.report): the start, prepare, two items and finish each
    # added their billed seconds; 4 + 2 items state transitions (processor.fanout.state_transitions).
    assert (row["lambda_invocations"], row["state_transitions"]) == (5, 6)
    assert 0 < float(row["lambda_billed_seconds"]) < 5 * 120

    # The single pass on the same input, as the engine cuts it.
    job = make_job(job_id=job_id, s3_key="x.mp4", cutting_options={"type": "fixed", "duration_seconds": 4},
                   text_strategy="unique_for_all", text_input={"unique_texts": TEXTS})
    single = cut(long_clip, plan(job, probe(long_clip).duration), tmp_path / "single", EncodeSettings())
    assert len(single) == len(row["segment_durations"])
    s3 = boto3.client("s3")
    for segment, stored in zip(single, row["segment_durations"]):
        fanned = tmp_path / f"fanned-{segment.index}.mp4"
        s3.download_file(TABLES.bucket, keys[segment.index], str(fanned))
        assert abs(float(stored) - segment.duration) <= FRAME + 1e-6
        assert abs(probe(fanned).duration - segment.duration) <= FRAME + 1e-6
        # The same caption on the same frames: the top band, where it is drawn, matches.
        for index in (0, 60):
            width, _, ours = gray_frame(fanned, index=index)
            theirs = gray_frame(segment.path, index=index)[2]
            band = width * 60
            assert mean_abs_diff(ours[:band], theirs[:band]) < 3, (segment.index, index)
    # Each item read the upload over HTTP (processor.ranged_input), not by downloading it; on an
    # input this small the socket buffers hold all of it (tests/test_ranged_input.py reads in part).
    items = [i for i in local.invocations.values() if i.event.get("fanout") == "item"
             and i.event["job"]["job_id"] == job_id]
    assert len(items) == 2
    for item in items:
        done = [json.loads(line) for line in item.logs[-1].read_text().splitlines()
                if line.startswith("{") and '"fanout_item_done"' in line]
        assert done and done[0]["bytes_read"] > 0, done
        assert "downloading" not in item.logs[-1].read_text()
    # The item list never went to S3 (an inline Map).
    assert not [k for k in boto3.client("s3").list_objects_v2(Bucket=TABLES.bucket, Prefix="fanout-items/")
                .get("Contents", [])]


def test_an_item_killed_once_is_retried_and_the_job_completes(world, long_clip, job_id):
    local, arn = world.local, world.arn
    queued, _ = start_job(local, long_clip, job_id)

    def item_encoding():
        return next((pid for pid in descendants(os.getpid())
                     if command_of(pid).startswith(("ffmpeg", "/opt/bin/ffmpeg"))
                     and " -ss " in command_of(pid)), None)
    ffmpeg = wait_until(item_encoding, 120, lambda: "no item ever encoded")
    parent = next(pid for pid in descendants(os.getpid()) if ffmpeg in descendants(pid)
                  and "bootstrap.py" in command_of(pid))
    os.kill(parent, signal.SIGKILL)
    os.kill(ffmpeg, signal.SIGKILL)
    execution = finished(arn, job_id)
    assert execution["status"] == "SUCCEEDED", json.dumps(history(execution), default=str, indent=1)
    row = queued.wait_for("COMPLETED")
    assert queued.segment_keys() == row["output_s3_urls"] and len(row["output_s3_urls"]) == 6
    killed = [i for i in local.invocations.values() if i.event.get("job", {}).get("job_id") == job_id
              and i.error and i.error["errorType"] == "Runtime.ExitError"]
    assert killed, "the kill did not reach an item"


def test_an_item_failing_for_good_fails_the_job_and_leaves_no_keys(world, long_clip, job_id, tmp_path):
    """The upload's tail is cut off behind a moov box at the front: it probes whole and decodes
    to 14.4 s, so the last item (12-24 s) runs out of frames and fails the job. The first item
    (0-12 s) would encode whole: its ffmpeg is held stopped until the fail step has run, so it
    ends after the job's keys were removed, and must not leave its own behind."""
    local, arn = world.local, world.arn
    whole = tmp_path / "whole.mp4"
    subprocess.run([tool("ffmpeg"), "-v", "error", "-i", str(long_clip), "-c", "copy", "-movflags", "+faststart",
                    str(whole)], check=True)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[:int(whole.stat().st_size * 0.6)])
    queued, _ = start_job(local, truncated, job_id)

    def first_item_encoding():
        return next((pid for pid in descendants(os.getpid())
                     if command_of(pid).startswith(("ffmpeg", "/opt/bin/ffmpeg"))
                     and "http://127.0.0.1" in command_of(pid) and " -ss " not in command_of(pid)), None)
    ffmpeg = wait_until(first_item_encoding, 120, lambda: "the first item never encoded", interval=0.01)
    os.kill(ffmpeg, signal.SIGSTOP)
    try:
        execution = finished(arn, job_id)
        row = queued.wait_for("FAILED")
    finally:
        os.kill(ffmpeg, signal.SIGCONT)
    assert execution["status"] == "FAILED", execution
    assert row["error_type"] == "invalid_input", row
    assert "input is truncated or corrupt" in row["error_message"], row["error_message"]
    first = next(i for i in local.invocations.values() if i.event.get("fanout") == "item"
                 and i.event["job"]["job_id"] == job_id and i.event["item"]["first"] == 0)
    wait_until(lambda: first.status in ("succeeded", "failed"), 120, lambda: "the first item never ended")
    assert first.status == "failed" and "is no longer held" in first.error["errorMessage"], first.error
    assert queued.segment_keys() == []


def test_a_duplicate_delivery_during_the_execution_neither_starts_nor_encodes(world, long_clip, job_id):
    local, arn = world.local, world.arn
    queued, request_id = start_job(local, long_clip, job_id)
    wait_until(lambda: executions(arn) and any(e["name"].startswith(job_id) for e in executions(arn)), 60,
               lambda: "the execution never started")
    duplicate = local.redeliver(request_id)
    assert finished(arn, job_id)["status"] == "SUCCEEDED"
    queued.wait_for("COMPLETED")
    local.wait_idle(240)
    assert duplicate.result["status"] == "skipped", duplicate.result
    assert len([e for e in executions(arn) if e["name"].startswith(job_id)]) == 1


def test_a_job_whose_item_cannot_finish_in_time_fails_at_prepare(world, job_id, tmp_path, tmp_path_factory):
    """The same function with a 36 s timeout: prepare has 16 s, less the 15 s an item needs
    besides encoding, and a 30 s segment of 720p takes longer than that second."""
    local, arn, proxy = world.local, world.arn, world.proxy
    short = dataclasses.replace(local.spec, timeout_seconds=36)
    big = make_video(tmp_path / "big.mp4", duration=60.0, width=1280, height=720, audio=False)
    queued = queue_job(TABLES, big, job_id)
    with LocalLambda(short, world.server.environment(), tmp_path_factory.mktemp("short-lambda")) as limited:
        proxy.lambda_endpoint = limited.endpoint
        try:
            limited.invoke_async(queued.event(cutting_options={"type": "fixed", "duration_seconds": 30}))
            execution = finished(arn, job_id)
        finally:
            proxy.lambda_endpoint = local.endpoint
    assert execution["status"] == "FAILED"
    row = queued.wait_for("FAILED")
    assert row["error_type"] == "input_too_large", row
    assert row["error_message"].startswith("segments 1 to 1 (30 s) cannot be encoded by one invocation: "
                                           "encoding this video at 1280x720 takes about"), row["error_message"]
    assert queued.segment_keys() == []
    entered = [e["stateEnteredEventDetails"]["name"] for e in history(execution) if "stateEnteredEventDetails" in e]
    assert entered[:1] == ["Prepare"] and "EncodeInline" not in entered and "Fail" in entered


def test_a_second_start_of_the_same_claim_makes_no_second_execution(world, long_clip, job_id):
    """Step Functions keys an execution by its name, derived from the job and its claim: a second
    start is refused (or, in AWS, answered with the running one), and the job completes once."""
    local, arn = world.local, world.arn
    queued = queue_job(TABLES, long_clip, job_id)
    store = JobStore(TABLES.table)
    claim = store.claim(job_id, uuid.uuid4().hex, "lambda")
    job = parse_event(queued.event(cutting_options={"type": "fixed", "duration_seconds": 4}))
    starter = FanoutStarter(FanoutSettings(arn.rsplit(":", 1)[1], 2, 0), local.arn)
    assert starter.arn == arn
    media = probe(long_clip)
    assert starter.start(job, claim, media) is True
    starter.start(job, claim, media)
    other_input = dataclasses.replace(media, duration=media.duration - 1)
    assert starter.start(job, claim, other_input) is False
    execution = finished(arn, job_id)
    assert execution["status"] == "SUCCEEDED", json.dumps(history(execution), default=str, indent=1)
    assert [e["name"] for e in executions(arn) if e["name"].startswith(job_id)] == [f"{job_id}-1"]
    assert len(queued.wait_for("COMPLETED")["output_s3_urls"]) == 6


def test_more_items_than_an_inline_map_runs_go_through_s3_to_a_distributed_map(world, job_id, tmp_path):
    """41 items of 10 s (tiny frames, no audio): prepare writes the list to S3 and the
    distributed Map reads it with its item reader."""
    local, arn = world.local, world.arn
    tiny = make_video(tmp_path / "tiny.mp4", duration=410.0, width=96, height=64, audio=False)
    queued = queue_job(TABLES, tiny, job_id)
    local.invoke_async(queued.event(cutting_options={"type": "fixed", "duration_seconds": 10}))
    execution = finished(arn, job_id, timeout=600)
    assert execution["status"] == "SUCCEEDED", json.dumps(history(execution)[-5:], default=str, indent=1)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history(execution) if "stateEnteredEventDetails" in e]
    assert "EncodeDistributed" in entered and "EncodeInline" not in entered
    row = queued.wait_for("COMPLETED")
    assert len(row["output_s3_urls"]) == 41 and queued.segment_keys() == row["output_s3_urls"]
    assert all(abs(float(d) - 10) <= FRAME + 1e-6 for d in row["segment_durations"])
    # finish removed the item list.
    listed = boto3.client("s3").list_objects_v2(Bucket=TABLES.bucket, Prefix=f"fanout-items/{job_id}/")
    assert not listed.get("Contents")
