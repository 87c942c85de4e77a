"""processor.limits: the pre-encode estimate and its refusals, pure (calibrated in bench/memory_bench.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from processor.limits import TooLargeError, check, estimate
from processor.probe import MediaInfo

LAMBDA_3008_CORES = 3008 / 1769  # Lambda's vCPU share at the default memory


def media(width: int, height: int, fps: int = 30) -> MediaInfo:
    return MediaInfo(duration=600.0, width=width, height=height, rotation=0, has_audio=True, fps=Fraction(fps),
                     video_codec="h264", pix_fmt="yuv420p", audio_codec="aac")


@pytest.mark.parametrize(("size", "long_side", "fits"), [
    ((7680, 4320), 7680, False),  # 8K kept at full size peaked at 3.6 GB
    ((7680, 4320), 1920, True),   # the same input capped at 1920: about 0.6 GB
    ((3840, 2160), 7680, True),
    ((1920, 1080), 1920, True),
])
def test_memory_refusal_at_the_default_function(size, long_side, fits):
    needed = estimate(media(*size), 10.0, long_side)
    if fits:
        check(needed, memory_mb=3008, seconds_left=None, cores=LAMBDA_3008_CORES)
    else:
        with pytest.raises(TooLargeError, match=r"needs about 3,[67]\d\d MB, more than the 3008 MB of this function; "
                                                r"raise function.memoryMb or lower function.maxOutputLongSide"):
            check(needed, memory_mb=3008, seconds_left=None, cores=LAMBDA_3008_CORES)


def test_a_long_4k_video_cannot_finish_in_15_minutes_at_full_size_but_can_capped():
    """The issue's figure: at full size a 4K video longer than about 8 minutes cannot finish."""
    ten_minutes = media(3840, 2160)
    with pytest.raises(TooLargeError, match=r"at 3840x2160 takes about [\d,]+ s on 1.7\d* cores, more than the "
                                            r"880 s left; raise function.memoryMb \(more cores\)"):
        check(estimate(ten_minutes, 600.0, 7680), memory_mb=3008, seconds_left=880.0, cores=LAMBDA_3008_CORES)
    check(estimate(ten_minutes, 600.0, 1920), memory_mb=3008, seconds_left=880.0, cores=LAMBDA_3008_CORES)


def test_outside_lambda_the_worker_settings_are_named_and_memory_is_not_checked():
    needed = estimate(media(7680, 4320), 600.0, 7680)
    check(needed, memory_mb=None, seconds_left=None, cores=2)  # no memory limit known, no deadline
    with pytest.raises(TooLargeError, match="give the worker more cores, lower VIDEO_MAX_LONG_SIDE, or upload shorter"):
        check(needed, memory_mb=None, seconds_left=60.0, cores=2)


def test_faster_presets_lower_the_time_estimate_only():
    veryfast, ultrafast = (estimate(media(1920, 1080), 60.0, 1920, preset) for preset in ("veryfast", "ultrafast"))
    assert ultrafast.cpu_seconds < veryfast.cpu_seconds / 2
    assert ultrafast.peak_mb == veryfast.peak_mb
    assert estimate(media(1920, 1080), 60.0, 1920, "slow").cpu_seconds == veryfast.cpu_seconds  # still a lower bound
