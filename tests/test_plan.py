"""Segment planning: exact coverage, bounds and determinism (property tests), and texts."""

import pytest
from hypothesis import given, settings, strategies as st

from processor.contract import FixedCut, RandomCut, TextInput, make_job
from processor.plan import MIN_TAIL_SECONDS, plan, plan_boundaries, segment_texts

durations = st.floats(min_value=0.05, max_value=4 * 3600, allow_nan=False)
seconds = st.integers(min_value=1000, max_value=3_600_000).map(lambda ms: ms / 1000)


def assert_covers(boundaries, duration):
    assert boundaries[0][0] == 0
    assert boundaries[-1][1] == pytest.approx(duration, abs=0.0005)
    for (_, end), (start, _) in zip(boundaries, boundaries[1:]):
        assert start == end
    assert all(end > start for start, end in boundaries)


@settings(max_examples=300, deadline=None)
@given(duration=durations, step=seconds)
def test_fixed_segments_cover_the_video_in_order(duration, step):
    boundaries = plan_boundaries(duration, FixedCut(step), "job")
    assert_covers(boundaries, duration)
    lengths = [round(end - start, 3) for start, end in boundaries]
    assert all(length == pytest.approx(step, abs=0.0015) for length in lengths[:-2])
    if duration <= step:
        assert len(lengths) == 1
    assert lengths[-1] <= step + MIN_TAIL_SECONDS + 0.001


@settings(max_examples=300, deadline=None)
@given(duration=durations, low=seconds, spread=st.integers(0, 600_000), job_id=st.text(min_size=1, max_size=40))
def test_random_segments_cover_the_video_within_bounds(duration, low, spread, job_id):
    high = low + spread / 1000
    boundaries = plan_boundaries(duration, RandomCut(low, high), job_id)
    assert_covers(boundaries, duration)
    lengths = [end - start for start, end in boundaries]
    for length in lengths[:-2]:
        assert low - 0.0015 <= length <= high + 0.0015
    assert lengths[-1] <= high + MIN_TAIL_SECONDS + 0.001
    # A retry of the same job plans the same segments.
    assert plan_boundaries(duration, RandomCut(low, high), job_id) == boundaries


def test_random_plans_differ_between_jobs():
    cut = RandomCut(2, 9)
    assert plan_boundaries(300, cut, "job-a") != plan_boundaries(300, cut, "job-b")


def test_fixed_cut_examples():
    assert plan_boundaries(65, FixedCut(30), "j") == [(0, 30), (30, 60), (60, 65)]
    assert plan_boundaries(60, FixedCut(30), "j") == [(0, 30), (30, 60)]
    # A video shorter than one segment gives one segment of its own length, not an error.
    assert plan_boundaries(12.345, FixedCut(30), "j") == [(0, 12.345)]
    # A tail of a few milliseconds (audio slightly longer than video) joins the previous segment.
    assert plan_boundaries(60.02, FixedCut(30), "j") == [(0, 30), (30, 60.02)]


def test_zero_duration_is_refused():
    with pytest.raises(ValueError):
        plan_boundaries(0, FixedCut(30), "j")


TEXT = TextInput(base_text="Base", unique_texts=("one", "two"))


@pytest.mark.parametrize("strategy, text, expected", [
    (None, TEXT, [None, None, None]),
    ("one_for_all", None, [None, None, None]),
    ("one_for_all", TEXT, ["Base", "Base", "Base"]),
    ("unique_for_all", TEXT, ["one", "two", "two"]),
    # base_vary plans base_text everywhere (the model's variations replace it later), whatever unique_texts say.
    ("base_vary", TEXT, ["Base", "Base", "Base"]),
    ("base_vary", TextInput(base_text="Base"), ["Base", "Base", "Base"]),
    ("unique_for_all", TextInput(base_text="Base"), ["Base", "Base", "Base"]),
    ("one_for_all", TextInput(base_text="   "), [None, None, None]),
    ("unique_for_all", TextInput(unique_texts=("a", " ", "c", "d", "e")), ["a", None, "c"]),
])
def test_texts_per_strategy(strategy, text, expected):
    assert segment_texts(3, strategy, text) == expected


def test_plan_attaches_texts_to_segments():
    job = make_job(job_id="j", s3_key="k", cutting_options={"type": "fixed", "duration_seconds": 10},
                   text_strategy="unique_for_all", text_input={"unique_texts": ["a", "b"]})
    segments = plan(job, 25)
    assert [(s.index, s.start, s.end, s.text) for s in segments] == [(0, 0, 10, "a"), (1, 10, 20, "b"), (2, 20, 25, "b")]
    assert [s.duration for s in segments] == [10, 10, 5]
