"""The rule order (kill switch, phase, user lists, size, rollout) and the request's shapes."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.decide import REASONS, Decision, decide, size_decides
from router.flags import MB, PHASES, RouterFlags, UNKNOWN_SIZE_POLICIES
from router.rollout import in_rollout
from tests.router.backend_models import CompleteUploadRequest

SMALL, LARGE = 10 * MB, 300 * MB  # either side of the default 250 MB limit


def job(user="u1", size=SMALL, job_id="job-1"):
    return {"job_id": job_id, "user_id": user, "file_size": size}


def canary(**flags):
    return RouterFlags(**{"phase": "canary", "lambda_percent": 100, **flags})


@pytest.mark.parametrize(("request_", "flags", "backend", "reason"), [
    # 1. the kill switch beats everything, even lambda_only and the allow list
    (job(), RouterFlags(phase="lambda_only", kill_switch=True, lambda_users=["u1"]), "celery", "kill_switch"),
    # 2. phase
    (job(), RouterFlags(phase="celery", lambda_users=["u1"]), "celery", "phase"),
    (job(size=LARGE), RouterFlags(phase="lambda_only", celery_users=["u1"]), "lambda", "phase"),
    (job(size=None), RouterFlags(phase="lambda_only"), "lambda", "phase"),
    # 3. user lists beat size and rollout; the deny list beats the allow list
    (job(size=LARGE), canary(lambda_users=["u1"]), "lambda", "user_allow"),
    (job(), canary(celery_users=["u1"], lambda_users=["u1"]), "celery", "user_deny"),
    (job(), RouterFlags(phase="lambda", celery_users=["u1"]), "celery", "user_deny"),
    # 4. size beats rollout
    (job(size=LARGE), canary(), "celery", "size_limit"),
    (job(size=LARGE), RouterFlags(phase="lambda"), "celery", "size_limit"),
    (job(size=None), canary(), "celery", "unknown_size"),
    (job(size=None), canary(unknown_size="rollout"), "lambda", "rollout_in"),
    (job(size=250 * MB), canary(), "lambda", "rollout_in"),
    # 5. rollout
    (job(), canary(lambda_percent=0), "celery", "rollout_out"),
    (job(), RouterFlags(phase="lambda"), "lambda", "phase"),
])
def test_rule_order(request_, flags, backend, reason):
    assert decide(request_, flags) == Decision(backend, reason, flags_version=flags.version)


flag_sets = st.builds(
    RouterFlags,
    phase=st.sampled_from(PHASES),
    lambda_percent=st.integers(0, 10_000).map(lambda steps: steps / 100),
    sticky_key=st.sampled_from(["user_id", "job_id"]),
    lambda_users=st.sets(st.sampled_from(["u1", "u2"])),
    celery_users=st.sets(st.sampled_from(["u1", "u3"])),
    max_lambda_file_size_mb=st.sampled_from([1, 250, 10_240]),
    unknown_size=st.sampled_from(UNKNOWN_SIZE_POLICIES),
    kill_switch=st.booleans(),
)
requests = st.fixed_dictionaries({
    "job_id": st.uuids().map(str),
    "user_id": st.one_of(st.none(), st.sampled_from(["u1", "u2", "u3", "u4"])),
    "file_size": st.one_of(st.none(), st.integers(0, 20_000 * MB)),
})


@given(requests, flag_sets)
def test_the_first_matching_rule_decides(request_, flags):
    """The rule order restated independently of `decide`, checked on every combination."""
    decision = decide(request_, flags)
    user, size = request_["user_id"], request_["file_size"]
    if flags.kill_switch:
        expected = ("celery", "kill_switch")
    elif flags.phase in ("celery", "lambda_only"):
        expected = ("celery" if flags.phase == "celery" else "lambda", "phase")
    elif user in flags.celery_users:
        expected = ("celery", "user_deny")
    elif user in flags.lambda_users:
        expected = ("lambda", "user_allow")
    elif size is not None and size > flags.max_lambda_file_size_mb * MB:
        expected = ("celery", "size_limit")
    elif size is None and flags.unknown_size == "celery":
        expected = ("celery", "unknown_size")
    elif flags.phase == "lambda":
        expected = ("lambda", "phase")
    else:
        key = request_[flags.sticky_key] or request_["job_id"]
        expected = ("lambda", "rollout_in") if in_rollout(flags.salt, key, flags.lambda_percent) else ("celery", "rollout_out")
    assert (decision.backend, decision.reason) == expected
    assert decision.reason in REASONS  # the stable codes dashboards and the job row use
    assert not decision.fell_back and decision.error is None


def test_lambda_only_never_picks_celery_without_the_kill_switch():
    flags = RouterFlags(phase="lambda_only", celery_users=["u1"], max_lambda_file_size_mb=1, fallback_to_celery=True)
    assert decide(job(size=LARGE), flags).backend == "lambda"


def test_a_job_without_a_user_is_bucketed_by_its_job_id():
    flags = canary(lambda_percent=50, salt="s")
    for job_id in ("a", "b", "c", "d", "e", "f"):
        expected = in_rollout("s", job_id, 50)
        assert (decide(job(user=None, job_id=job_id), flags).reason == "rollout_in") == expected


@dataclasses.dataclass
class DataclassRequest:
    job_id: str
    s3_key: str
    user_id: str | None
    file_size: int | None


def test_every_request_shape_gets_the_same_decision():
    fields = {"job_id": "job-9", "s3_key": "uploads/u7/v.mp4", "user_id": "u7", "file_size": SMALL}
    flags = canary(lambda_percent=50, salt="shape")
    shapes = [fields, CompleteUploadRequest(**fields), SimpleNamespace(**fields), DataclassRequest(**fields)]
    decisions = {decide(shape, flags) for shape in shapes}
    assert len(decisions) == 1


def test_a_numeric_user_id_matches_the_list_as_text():
    assert decide(job(user=42), canary(lambda_users=["42"])).reason == "user_allow"


@pytest.mark.parametrize(("flags", "user", "decides"), [
    (RouterFlags(phase="celery"), "u1", False),
    (RouterFlags(phase="lambda_only"), "u1", False),
    (RouterFlags(phase="lambda", kill_switch=True), "u1", False),
    (RouterFlags(phase="lambda"), "u1", True),  # the phase that must not keep size-less jobs on Celery
    (RouterFlags(phase="lambda", celery_users=["u1"]), "u1", False),
    (canary(lambda_users=["u1"]), "u1", False),
    (canary(), "u1", True),  # in the rollout: a large file must still go to Celery
    (canary(lambda_percent=0), "u1", False),  # out of the rollout: Celery whatever the size
])
def test_the_size_is_looked_up_only_when_it_can_change_the_backend(flags, user, decides):
    assert size_decides(job(user=user, size=None), flags) is decides


@given(requests, flag_sets, st.lists(st.integers(0, 20_000 * MB), min_size=1, max_size=5))
def test_when_the_size_does_not_decide_no_size_changes_the_backend(request_, flags, sizes):
    unknown = {**request_, "file_size": None}
    backends = {decide({**unknown, "file_size": size}, flags).backend for size in sizes}
    if not size_decides(unknown, flags):
        assert backends == {decide({**unknown, "file_size": 0}, flags).backend}
