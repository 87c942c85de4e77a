"""Scratch space: an upload that cannot fit in /tmp with its segments is refused up front."""

from pathlib import Path

import pytest

from processor.errors import InsufficientSpaceError, TransientError
from processor.storage import SPACE_FACTOR, SPACE_MARGIN_BYTES, ensure_fits

GB = 1_000_000_000


def test_an_input_that_fits_with_its_segments_passes_and_one_byte_less_does_not():
    needed = int(4 * GB * SPACE_FACTOR) + SPACE_MARGIN_BYTES
    ensure_fits(4 * GB, needed, Path("/tmp"))
    with pytest.raises(InsufficientSpaceError):
        ensure_fits(4 * GB, needed - 1, Path("/tmp"))


def test_an_input_too_large_for_scratch_space_is_refused_with_the_sizes():
    # Lambda's /tmp at its 10,240 MB maximum cannot take a 5 GB upload and its segments.
    with pytest.raises(InsufficientSpaceError) as caught:
        ensure_fits(5 * GB, 10_240 * 1024 * 1024, Path("/tmp"))
    message = str(caught.value)
    assert "input is 5000 MB" in message and "/tmp has 10737 MB free" in message
    assert caught.value.error_type == "insufficient_space"
    assert not isinstance(caught.value, TransientError)  # no retry could make it fit
