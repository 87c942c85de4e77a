"""The job contract: today's event, the legacy payload, and every bound the backend does not check."""

import pytest

from processor.contract import (FixedCut, RandomCut, TextInput, celery_job_id, make_job, parse_celery_call,
                                parse_event, validate_s3_key)
from processor.errors import InvalidJobError

BUCKET = "easy-video-share-videos"


def event(**overrides):
    base = {
        "s3_bucket": BUCKET, "s3_key": "uploads/u1/video.mp4", "job_id": "0b7d1c9e-5f1a-4c1e-9a55-1c6f4e8f2d10",
        "user_id": "u1", "cutting_options": {"type": "fixed", "duration_seconds": 30},
        "text_strategy": "one_for_all",
        "text_input": {"strategy": "one_for_all", "base_text": "Hi", "context": None, "unique_texts": []},
        "file_size": 1234, "source": "router",
    }
    base.update(overrides)
    return base


def test_todays_event_round_trips_through_the_job():
    job = parse_event(event(), expected_bucket=BUCKET)
    assert job.cut == FixedCut(30)
    assert job.text_input == TextInput("one_for_all", "Hi", None, ())
    assert job.to_event() == event(text_input={"strategy": "one_for_all", "base_text": "Hi",
                                               "context": None, "unique_texts": []})


def test_celery_args_keep_todays_positional_order():
    job = parse_event(event(), expected_bucket=BUCKET)
    assert job.celery_args() == ["uploads/u1/video.mp4", job.job_id, {"type": "fixed", "duration_seconds": 30},
                                 "one_for_all", job.text_input.to_dict(), "u1"]


def test_a_celery_call_with_todays_arguments_is_the_job_the_router_sends():
    job = parse_event(event(), expected_bucket=BUCKET)
    parsed = parse_celery_call(tuple(job.celery_args()), {}, bucket=BUCKET)
    assert (parsed.job_id, parsed.s3_key, parsed.cut, parsed.text_input, parsed.user_id, parsed.source) == \
        (job.job_id, job.s3_key, job.cut, job.text_input, "u1", "celery")
    by_keyword = parse_celery_call(("uploads/u1/video.mp4",), {"job_id": job.job_id, "user_id": "u2"})
    assert (by_keyword.job_id, by_keyword.user_id, by_keyword.cut) == (job.job_id, "u2", FixedCut(30))


@pytest.mark.parametrize("args, kwargs, problem", [
    (("k", "job-1", None, None, None, "u1", "extra"), {}, "too many positional arguments"),
    (("k",), {}, "missing a required argument: 'job_id'"),
    ((), {}, "missing a required argument: 's3_input_key'"),
    (("k", "job-1"), {"segment_length": 5}, "got an unexpected keyword argument 'segment_length'"),
    (("k", "job-1"), {"job_id": "job-2"}, "multiple values for argument 'job_id'"),
])
def test_a_celery_call_that_does_not_bind_names_the_mismatch_and_the_signature(args, kwargs, problem):
    with pytest.raises(InvalidJobError) as raised:
        parse_celery_call(args, kwargs)
    assert raised.value.field == "task arguments"
    assert problem in raised.value.problem
    assert "expected (s3_input_key, job_id, cutting_options, text_strategy, text_input, user_id)" in raised.value.problem


def test_a_celery_call_with_wrong_types_fails_on_the_field():
    with pytest.raises(InvalidJobError) as raised:
        parse_celery_call(("k", "job-1", "ten seconds"), {})
    assert raised.value.field == "cutting_options"


@pytest.mark.parametrize("args, kwargs, task_id, expected", [
    (("k", "job-1", None, None, None, "u1", "extra"), {}, "task-9", "job-1"),
    (("k",), {"job_id": "job-2"}, "task-9", "job-2"),
    (("k",), {}, "job-3", "job-3"),
    (("k", "not a job id!"), {}, "job-4", "job-4"),
    ((), {}, None, None),
])
def test_the_job_of_a_delivery_is_found_even_when_its_arguments_do_not_bind(args, kwargs, task_id, expected):
    assert celery_job_id(args, kwargs, task_id) == expected


def test_absent_cutting_options_mean_fixed_thirty_seconds():
    assert parse_event(event(cutting_options=None)).cut == FixedCut(30)


def test_random_cut_and_fractional_seconds():
    job = parse_event(event(cutting_options={"type": "random", "min_duration": 2.5, "max_duration": 7}))
    assert job.cut == RandomCut(2.5, 7.0)
    assert job.cut.to_dict() == {"type": "random", "min_duration": 2.5, "max_duration": 7}


def test_legacy_payload_of_the_first_lambda_attempt():
    legacy = {"s3_key": "uploads/a.mp4", "job_id": "job-1", "segment_duration": 15,
              "processing_type": "full_video_processing"}
    job = parse_event(legacy, expected_bucket=BUCKET)
    assert job.cut == FixedCut(15)
    assert job.bucket == BUCKET


@pytest.mark.parametrize("options, field", [
    ({"type": "fixed", "duration_seconds": 0}, "cutting_options.duration_seconds"),
    ({"type": "fixed", "duration_seconds": -5}, "cutting_options.duration_seconds"),
    ({"type": "fixed", "duration_seconds": 3601}, "cutting_options.duration_seconds"),
    ({"type": "fixed", "duration_seconds": float("nan")}, "cutting_options.duration_seconds"),
    ({"type": "fixed", "duration_seconds": float("inf")}, "cutting_options.duration_seconds"),
    ({"type": "fixed", "duration_seconds": "30"}, "cutting_options.duration_seconds"),
    ({"type": "fixed", "duration_seconds": True}, "cutting_options.duration_seconds"),
    ({"type": "fixed"}, "cutting_options.duration_seconds"),
    ({"type": "random", "min_duration": 10, "max_duration": 5}, "cutting_options.min_duration"),
    ({"type": "random", "min_duration": 0.5, "max_duration": 5}, "cutting_options.min_duration"),
    ({"type": "random", "min_duration": 1, "max_duration": 10 ** 9}, "cutting_options.max_duration"),
    ({"type": "sliding", "duration_seconds": 5}, "cutting_options.type"),
    ("fixed", "cutting_options"),
])
def test_bad_cutting_options_name_the_field(options, field):
    with pytest.raises(InvalidJobError) as caught:
        parse_event(event(cutting_options=options))
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ":")


@pytest.mark.parametrize("overrides, field", [
    ({"text_strategy": "shout"}, "text_strategy"),
    ({"text_input": {"unique_texts": ["x"] * 1001}}, "text_input.unique_texts"),
    ({"text_input": {"unique_texts": "not a list"}}, "text_input.unique_texts"),
    ({"text_input": {"unique_texts": ["ok", "x" * 501]}}, "text_input.unique_texts[1]"),
    ({"text_input": {"unique_texts": ["ok", 7]}}, "text_input.unique_texts[1]"),
    ({"text_input": {"base_text": "x" * 501}}, "text_input.base_text"),
    ({"text_input": ["base"]}, "text_input"),
    ({"job_id": "../../etc"}, "job_id"),
    ({"job_id": ""}, "job_id"),
    ({"job_id": None}, "job_id"),
    ({"file_size": -1}, "file_size"),
    ({"file_size": "12"}, "file_size"),
    ({"s3_bucket": "another-bucket"}, "s3_bucket"),
    ({"s3_bucket": "Not_A_Bucket"}, "s3_bucket"),
    ({"user_id": ["u"]}, "user_id"),
    ({"segment_duration": 10, "processing_type": "thumbnail", "cutting_options": None}, "processing_type"),
])
def test_bad_fields_name_the_field(overrides, field):
    with pytest.raises(InvalidJobError) as caught:
        parse_event(event(**overrides), expected_bucket=BUCKET)
    assert caught.value.field == field


def test_event_that_is_not_an_object():
    with pytest.raises(InvalidJobError) as caught:
        parse_event(["not", "an", "event"])
    assert caught.value.field == "event"


def test_texts_at_the_limits_are_accepted():
    job = parse_event(event(text_strategy="unique_for_all",
                            text_input={"unique_texts": ["x" * 500] * 1000, "base_text": "y" * 500}))
    assert len(job.text_input.unique_texts) == 1000


def test_top_level_strategy_wins_and_nested_one_is_used_when_alone():
    assert parse_event(event(text_strategy="base_vary")).text_strategy == "base_vary"
    assert parse_event(event(text_strategy=None)).text_strategy == "one_for_all"


@pytest.mark.parametrize("key", ["uploads/a b/ü.mp4", "a" * 1024, "x/./y.mp4", "uploads/..hidden.mp4"])
def test_keys_s3_allows(key):
    assert validate_s3_key(key) == key


@pytest.mark.parametrize("key, problem", [
    ("", "non-empty"), (None, "non-empty"), ("/etc/passwd", "'/'"), ("uploads/../secrets", "'..'"),
    ("..", "'..'"), ("é" * 513, "1024 bytes"), ("uploads/a\nb", "control"),
])
def test_bad_keys(key, problem):
    with pytest.raises(InvalidJobError, match=problem):
        validate_s3_key(key)


def test_integer_user_ids_become_strings():
    assert make_job(job_id="j", s3_key="k", user_id=42).user_id == "42"
