"""processor.fanout: items, each item's share of the single pass's frames, names and failures;
and an item encoded by the real ffmpeg against the single pass on the same input."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.command import cut_frames, encode_command, output_rate
from processor.engine import EncodeSettings, cut, cut_item
from processor.fanout import (EXECUTION_NAME_LIMIT, INLINE_MAX_ITEMS, FanoutSettings, Item, execution_name,
                              failure_of, inline, item_cut, plan_items, state_machine_arn)
from processor.plan import Segment
from processor.probe import MediaInfo, probe
from sandbox.media import gray_frame, make_video, mean_abs_diff

MEDIA = MediaInfo(duration=10.0, width=640, height=360, rotation=0, has_audio=True, fps=Fraction(30),
                  video_codec="h264", pix_fmt="yuv420p", audio_codec="aac")


def segments_of(edges: list[float], texts: list[str | None] | None = None) -> list[Segment]:
    texts = texts or [None] * (len(edges) - 1)
    return [Segment(i, a, b, texts[i]) for i, (a, b) in enumerate(zip(edges, edges[1:]))]


lengths = st.lists(st.integers(min_value=250, max_value=40_000), min_size=1, max_size=60)


def from_lengths(ms: list[int]) -> list[Segment]:
    edges = [0.0]
    for length in ms:
        edges.append(round(edges[-1] + length / 1000, 3))
    return segments_of(edges)


@given(lengths, st.sampled_from([5.0, 10.0, 30.0]))
def test_items_cover_every_segment_once_in_order(ms: list[int], minimum: float):
    segments = from_lengths(ms)
    items = plan_items(segments, minimum)
    covered = [i for item in items for i in range(item.first, item.first + item.count)]
    assert covered == list(range(len(segments)))
    for item in items[:-1]:
        assert segments[item.first + item.count - 1].end - segments[item.first].start >= minimum
        # Not longer than needed: without its last segment the item would be too short.
        assert item.count == 1 or segments[item.first + item.count - 2].end - segments[item.first].start < minimum


def test_long_segments_are_one_item_each_and_short_ones_are_grouped():
    assert plan_items(from_lengths([30_000] * 4)) == [Item(0, 1), Item(1, 1), Item(2, 1), Item(3, 1)]
    assert plan_items(from_lengths([2_000] * 12)) == [Item(0, 5), Item(5, 7)]
    assert plan_items(from_lengths([3_000])) == [Item(0, 1)]


@settings(max_examples=200)
@given(lengths, st.sampled_from([Fraction(30), Fraction(25), Fraction(30000, 1001), Fraction(60)]))
def test_each_item_gets_exactly_its_segments_frames(ms: list[int], rate: Fraction):
    segments = from_lengths(ms)
    whole = [0, *cut_frames(segments, rate)]
    for item in plan_items(segments, 10.0):
        part = item_cut(segments, item, rate)
        assert part.first_frame == whole[item.first]
        local = [0, *cut_frames(part.segments, rate)]
        assert [part.first_frame + frame for frame in local] == whole[item.first:item.first + item.count]
        stop = item.first + item.count
        assert part.frames == (whole[stop] - whole[item.first] if stop < len(segments) else None)


def test_an_item_keeps_its_segments_texts():
    segments = segments_of([0, 4, 8, 12], ["a", "b", None])
    part = item_cut(segments, Item(1, 2), Fraction(30))
    assert [s.text for s in part.segments] == ["b", None]
    assert [s.index for s in part.segments] == [0, 1]
    with pytest.raises(ValueError, match="beyond"):
        item_cut(segments, Item(2, 2), Fraction(30))


def test_an_item_command_seeks_before_the_input_and_counts_frames():
    part = item_cut(segments_of([0, 4, 8, 12]), Item(1, 1), Fraction(30))
    argv = encode_command("ffmpeg", Path("/in.mp4"), MEDIA, part.segments, Path("/out"), preset="veryfast", crf=23,
                          first_frame=part.first_frame, frames=part.frames)
    assert argv.index("-ss") < argv.index("-i")
    # Half a frame before frame 120, so rounding can never drop the item's first frame.
    assert argv[argv.index("-ss") + 1] == f"{(120 - 0.5) / 30:.6f}"
    assert argv[argv.index("-frames:v") + 1] == "120" and argv[argv.index("-t") + 1] == "4.000000"
    assert "setpts=PTS-STARTPTS" in argv[argv.index("-filter_complex") + 1]
    single = encode_command("ffmpeg", Path("/in.mp4"), MEDIA, segments_of([0, 4, 8, 12]), Path("/out"),
                            preset="veryfast", crf=23)
    assert "-ss" not in single and "-frames:v" not in single and "setpts" not in " ".join(single)


def test_item_list_goes_to_s3_above_an_inline_maps_concurrency():
    assert inline([Item(i, 1) for i in range(INLINE_MAX_ITEMS)])
    assert not inline([Item(i, 1) for i in range(INLINE_MAX_ITEMS + 1)])
    # Measured: what one item weighs in the Map's input.
    assert len(json.dumps([Item(999, 1).to_dict()])) < 30


@pytest.mark.parametrize("value", [None, {"first": 0}, {"first": -1, "count": 1}, {"first": 0, "count": 0},
                                   {"first": True, "count": 1}, {"first": "0", "count": 1}])
def test_items_from_a_payload_are_checked(value):
    with pytest.raises(ValueError):
        Item.from_dict(value)


def test_execution_names_are_one_per_claim_and_within_the_limit():
    assert execution_name("3f0c-uuid", 2) == "3f0c-uuid-2"
    long_a, long_b = "a" * 100 + "x", "a" * 100 + "y"
    names = {execution_name(long_a, 1), execution_name(long_b, 1), execution_name(long_a, 2)}
    assert len(names) == 3 and all(len(name) <= EXECUTION_NAME_LIMIT for name in names)


def test_the_state_machine_arn_follows_the_functions():
    assert (state_machine_arn("arn:aws:lambda:eu-central-1:111122223333:function:clips-video-processor", "m")
            == "arn:aws:states:eu-central-1:111122223333:stateMachine:m")
    with pytest.raises(ValueError):
        state_machine_arn("arn:aws:sqs:eu-central-1:111122223333:q", "m")


@pytest.mark.parametrize(("error", "expected"), [
    ({"Error": "StepFailed", "Cause": json.dumps({"errorType": "StepFailed",
                                                  "errorMessage": "ffmpeg_error: ffmpeg exited with status 1: x"})},
     ("ffmpeg_error", "ffmpeg exited with status 1: x")),
    ({"Error": "Runtime.ExitError", "Cause": json.dumps({"errorType": "Runtime.ExitError",
                                                         "errorMessage": "signal: killed"})},
     ("processing_error", "fan-out step failed with Runtime.ExitError: signal: killed")),
    ({"Error": "States.Timeout", "Cause": ""}, ("timeout", "a fan-out step ran out of time (States.Timeout)")),
    ({"Error": "Lambda.ServiceException", "Cause": "not json"},
     ("processing_error", "fan-out step failed with Lambda.ServiceException: not json")),
    ("garbage", ("processing_error", "fan-out step failed: 'garbage'")),
])
def test_the_reason_a_step_failed(error, expected):
    assert failure_of(error) == expected


@pytest.mark.parametrize(("segments", "duration", "container", "expected"), [
    (4, 120.0, "mov", True),
    (3, 600.0, "mov", False),  # too few segments
    (12, 119.9, "mov", False),  # too short
    (12, 600.0, "flv", False),  # a container an item cannot seek in over HTTP
    (12, 600.0, None, False),
])
def test_a_job_fans_out_above_both_thresholds_in_a_seekable_container(segments, duration, container, expected):
    assert FanoutSettings("machine", min_segments=4, min_duration_seconds=120).qualifies(
        segments, duration, container) is expected


def test_an_items_kept_reason_replaces_only_a_states_error():
    kept = {"attempt": "a", "error_type": "ffmpeg_error", "message": "ffmpeg exited with status 1: x"}
    threshold = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "threshold exceeded"}
    assert failure_of(threshold, kept) == ("ffmpeg_error", "ffmpeg exited with status 1: x")
    assert failure_of(threshold) == (
        "processing_error", "fan-out step failed with States.ExceedToleratedFailureThreshold: threshold exceeded")
    prepare_failed = {"Error": "StepFailed", "Cause": json.dumps({"errorMessage": "input_too_large: too long"})}
    assert failure_of(prepare_failed, kept) == ("input_too_large", "too long")


def test_items_encoded_apart_equal_the_single_pass(tmp_path: Path):
    """Frame for frame: the same count per segment, within a frame in duration, the same captions."""
    source = make_video(tmp_path / "in.mp4", duration=7.0, fps=25)
    media = probe(source)
    segments = segments_of([0.0, 1.3, 2.9, 4.1, 5.5, media.duration], ["one", "two", "two", None, "five"])
    single = cut(source, segments, tmp_path / "single", EncodeSettings(), media=media)
    parts = []
    for item in plan_items(segments, 2.5):
        part = item_cut(segments, item, output_rate(media))
        parts += cut_item(source, part, tmp_path / f"item-{item.first}", EncodeSettings(), media=media)
    assert len(plan_items(segments, 2.5)) > 1
    assert len(parts) == len(single)
    for ours, theirs in zip(parts, single):
        assert abs(ours.duration - theirs.duration) <= 1 / 25 + 1e-6
        for index in (0, 10):
            width, _, pixels = gray_frame(ours.path, index=index)
            band = width * 60  # the captions' band at the top
            assert mean_abs_diff(pixels[:band], gray_frame(theirs.path, index=index)[2][:band]) < 3
