"""base_vary in a whole job (the Lambda handler in-process, moto, the pinned ffmpeg, the local Gemini):
the texts are stored on the row before encoding, reused by any later attempt, and a failing
model never fails the job.
"""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from processor.handler import lambda_handler
from processor.jobs import JobStore
from processor.variations import TextVariations
from sandbox.gemini import API_KEY, FakeGemini
from sandbox.media import make_video
from tests.jobworld import LambdaContext, queue_job

BASE_VARY = {"strategy": "base_vary", "base_text": "Buy now", "context": "sales"}
MODEL_TEXTS = ["Buy now", "Buy now (take 1)", "Buy now (take 2)"]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("media") / "clip.mp4", duration=5.0)


@pytest.fixture
def gemini(monkeypatch):
    with FakeGemini(slow_seconds=3.0) as server:
        monkeypatch.setenv("GOOGLE_API_KEY", API_KEY)
        monkeypatch.setenv("TEXT_VARIATIONS_BASE_URL", server.url)
        monkeypatch.setenv("TEXT_VARIATIONS_TIMEOUT_SECONDS", "1")
        for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CREDENTIAL_CONFIG", "GEMINI_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        yield server


@pytest.fixture
def queued(backend_world, video, job_id):
    return queue_job(backend_world, video, job_id)


def log_lines(capfd) -> list[dict]:
    return [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]


def test_the_models_texts_are_asked_for_once_and_stored_before_encoding(queued, gemini, capfd):
    result = lambda_handler(queued.event(text_strategy="base_vary", text_input=BASE_VARY), LambdaContext())
    assert result["status"] == "completed"
    row = queued.row()
    assert row["text_variations"] == MODEL_TEXTS
    assert row["text_variations_source"] == "model" and "text_variations_reason" not in row
    [call] = gemini.model_calls()
    assert "exactly 2 strings" in call.prompt and '"sales"' in call.prompt
    events = [(line["event"], line.get("stage")) for line in log_lines(capfd) if line["job_id"] == queued.job_id]
    # Asked once, stored, then encoded: the generating_text stage and the stored texts come before processing.
    assert events.index(("stage", "generating_text")) < events.index(("text_variations", None)) \
        < events.index(("stage", "processing_segment"))


@pytest.mark.parametrize("behaviour, reason", [("error500", "unavailable"), ("garbage", "unusable_answer"),
                                               ("slow", "timeout")])
def test_a_failing_model_pads_with_base_text_records_why_and_logs_once(queued, gemini, capfd, behaviour, reason):
    gemini.behaviour = behaviour
    result = lambda_handler(queued.event(text_strategy="base_vary", text_input=BASE_VARY), LambdaContext())
    assert result["status"] == "completed"
    row = queued.row()
    assert row["status"] == "COMPLETED" and row["segments_created"] == 3
    assert row["text_variations"] == ["Buy now"] * 3
    assert row["text_variations_source"] == "fallback"
    assert row["text_variations_reason"].startswith(f"{reason}:")
    [logged] = [line for line in log_lines(capfd) if line["event"] == "text_variations"]
    assert logged["level"] == logging.getLevelName(logging.WARNING)
    assert (logged["source"], logged["reason"]) == ("fallback", row["text_variations_reason"])


def test_a_text_no_caption_font_draws_gives_way_to_base_text(queued, gemini):
    gemini.behaviour = "undrawable"
    result = lambda_handler(queued.event(text_strategy="base_vary", text_input=BASE_VARY), LambdaContext())
    assert result["status"] == "completed"
    row = queued.row()
    assert row["text_variations"] == ["Buy now", "Buy now", "Buy now (take 2)"]
    assert row["text_variations_source"] == "fallback"
    assert row["text_variations_reason"].startswith("undrawable: 1 of the model's texts")


def test_an_attempt_after_a_dead_one_reuses_its_stored_texts_and_never_asks(queued, gemini, capfd):
    store = JobStore(queued.table, boto3.resource("dynamodb"))
    # What an attempt killed after storing its texts leaves behind: PROCESSING, texts on the row, lease given up.
    assert store.claim(queued.job_id, "dead-attempt", "celery").claimed
    stored = TextVariations(("Buy now", "Stored one", "Stored two"), "model")
    store.save_text_variations(queued.job_id, "dead-attempt", stored)
    store.release(queued.job_id, "dead-attempt", "worker killed")
    result = lambda_handler(queued.event(text_strategy="base_vary", text_input=BASE_VARY), LambdaContext())
    assert result["status"] == "completed"
    row = queued.row()
    assert row["processing_attempts"] == 2 and row["processed_by"] == "lambda"
    assert row["text_variations"] == ["Buy now", "Stored one", "Stored two"]
    assert gemini.requests == []
    assert [line["source"] for line in log_lines(capfd) if line["event"] == "text_variations_reused"] == ["model"]


def test_a_stored_fallback_is_reused_too_the_segments_never_change_between_attempts(queued, gemini):
    store = JobStore(queued.table, boto3.resource("dynamodb"))
    assert store.claim(queued.job_id, "dead-attempt", "lambda").claimed
    stored = TextVariations(("Buy now",) * 3, "fallback", "timeout: x")
    store.save_text_variations(queued.job_id, "dead-attempt", stored)
    store.release(queued.job_id, "dead-attempt", "throttled")
    assert lambda_handler(queued.event(text_strategy="base_vary", text_input=BASE_VARY), LambdaContext())["status"] \
        == "completed"
    row = queued.row()
    assert (row["text_variations"], row["text_variations_reason"]) == (["Buy now"] * 3, "timeout: x")
    assert gemini.requests == []


def test_only_the_attempt_holding_the_job_may_store_texts(queued):
    store = JobStore(queued.table, boto3.resource("dynamodb"))
    assert store.claim(queued.job_id, "holder", "lambda").claimed
    with pytest.raises(Exception) as raised:
        store.save_text_variations(queued.job_id, "intruder", TextVariations(("a", "b"), "model"))
    assert type(raised.value).__name__ == "ClaimLostError"
    assert "text_variations" not in queued.row()


@pytest.mark.parametrize("strategy, text_input", [
    ("one_for_all", {"base_text": "Buy now"}),
    ("unique_for_all", {"unique_texts": ["a", "b"]}),
    ("base_vary", {"base_text": "   "}),
    (None, None),
])
def test_other_strategies_never_ask_the_model(queued, gemini, strategy, text_input):
    result = lambda_handler(queued.event(text_strategy=strategy, text_input=text_input), LambdaContext())
    assert result["status"] == "completed"
    assert gemini.requests == []
    assert "text_variations" not in queued.row()


def test_without_a_model_configured_the_job_completes_with_base_text(queued, monkeypatch):
    for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CREDENTIAL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    result = lambda_handler(queued.event(text_strategy="base_vary", text_input=BASE_VARY), LambdaContext())
    assert result["status"] == "completed"
    row = queued.row()
    assert row["text_variations"] == ["Buy now"] * 3
    assert row["text_variations_reason"].startswith("not_configured:")
