"""The scheduled sweep as the shipped function runs it: its schedule's event, a Lambda-shaped
process, and a stranded job re-dispatched by the function invoking itself."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from infra.mocked import MINIMAL_CONFIG, run_program
from sandbox import backend
from tests.jobworld import queue_job


def schedule_event() -> dict:
    """The event the Pulumi program's schedule sends, as declared."""
    schedule = run_program(MINIMAL_CONFIG).named("video-processor-sweep")
    return json.loads(schedule.inputs["target"]["input"])


def test_the_scheduled_sweep_redispatches_a_stranded_job_by_invoking_the_function_itself(
        backend_world, local_lambda, clip, job_id):
    queued = queue_job(backend_world, clip, job_id, with_row=False)
    # A row the router dispatched to Lambda an hour ago, whose event was then lost.
    stale = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    backend.put_job_row(job_id, queued.s3_key, table=backend_world.table, updated_at=stale,
                        dispatch_event=json.dumps(queued.event(source="router")))
    event = schedule_event()
    assert event["action"] == "sweep"

    sweep = local_lambda.invoke_sync(event)
    assert sweep.status == "succeeded", (sweep.error, sweep.logs[-1].read_text()[-3000:])
    assert sweep.result == {"action": "sweep", "mode": "redispatch", "stuck": 1,
                            "jobs": [{"job_id": job_id, "status": "QUEUED", "action": "re-dispatched (1 of 2)"}]}
    local_lambda.wait_idle(180)
    row = queued.wait_for("COMPLETED")
    assert (row["processed_by"], row["sweep_redispatches"]) == ("lambda", 1)
    assert row["output_s3_urls"] == [f"processed/{job_id}/segment_{i:03d}.mp4" for i in range(3)]
    rerun = [i for i in local_lambda.invocations.values() if isinstance(i.event, dict) and i.event.get("job_id") == job_id]
    assert [i.event for i in rerun] == [queued.event(source="router")]


def test_a_sweep_event_that_makes_no_sense_is_refused_and_changes_nothing(backend_world, local_lambda, job_id, clip):
    queued = queue_job(backend_world, clip, job_id)
    before = queued.row()
    sweep = local_lambda.invoke_sync({"action": "sweep", "mode": "delete_everything"})
    assert sweep.status == "succeeded", (sweep.error, sweep.logs[-1].read_text()[-3000:])
    assert sweep.result == {"action": "sweep",
                            "error": "mode must be one of report, redispatch, mark_failed, got 'delete_everything'"}
    assert queued.row() == before
