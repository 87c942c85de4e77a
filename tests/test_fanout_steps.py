"""The fan-out's row writes on a real moto server: the atomic count of segments done, and
nothing written under a claim that is not the step's."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from processor.contract import make_job
from processor.errors import ProcessorError
from processor.jobs import ClaimLostError, JobStore
from sandbox import backend

@pytest.fixture
def claimed(backend_world, job_id):
    key = f"uploads/user-1/{job_id}.mp4"
    backend.put_job_row(job_id, key, table=backend_world.table)
    store = JobStore(backend_world.table)
    claim = store.claim(job_id, uuid.uuid4().hex, "lambda")
    assert claim.claimed
    return store, claim, make_job(job_id=job_id, s3_key=key, bucket=backend_world.bucket)


def test_segments_done_are_counted_atomically_and_once(claimed):
    store, claim, job = claimed
    store.start_counting(job.job_id, claim.attempt_id, 40)
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(lambda first: store.count_done(job.job_id, claim.attempt_id, range(first, first + 4), 40),
                               range(0, 40, 4)))
    assert sorted(counts)[-1] == 40 and len(set(counts)) == len(counts)
    # A retried item counts its segments again: nothing changes.
    assert store.count_done(job.job_id, claim.attempt_id, range(0, 4), 40) == 40
    row = store.get(job.job_id)
    assert row["segments_done"] == set(range(40)) and row["total_segments"] == row["segments_planned"] == 40
    # The row's progress reached the last count, whatever order the writes landed in.
    assert (row["current_segment"], row["progress_percentage"], row["processing_stage"]) == (
        40, 90, "processing_segment")


def test_a_step_under_a_lost_claim_writes_nothing(claimed):
    store, claim, job = claimed
    with pytest.raises(ClaimLostError):
        store.held(job.job_id, "another-attempt")
    with pytest.raises(ClaimLostError):
        store.count_done(job.job_id, "another-attempt", [0], 1)
    with pytest.raises(ClaimLostError):
        store.renew(job.job_id, "another-attempt")
    assert "segments_done" not in store.get(job.job_id)
    assert issubclass(ClaimLostError, ProcessorError)
