"""The README's first command, run as a user runs it (`make demo` calls this module)."""

import subprocess
import sys

from PIL import Image


def test_the_demo_routes_one_job_to_each_backend_fans_one_out_and_completes_all(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sandbox.demo", "--output-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = [line.split() for line in result.stdout.splitlines()
             if line.split()[1:2] in (["alice"], ["bob"], ["carol"])]
    assert [(row[1], row[2], row[4], row[5]) for row in table] == [
        ("alice", "lambda", "COMPLETED", "3"), ("bob", "celery", "COMPLETED", "3"), ("carol", "lambda", "COMPLETED", "6")]
    # Carol's 3-minute job fanned out: one item invocation per 30 s segment, each succeeded.
    items = result.stdout.split("items of carol's job", 1)[1].splitlines()[2:8]
    assert [line.split()[0] for line in items] == [f"{i}-{i}" for i in range(6)]
    assert all(line.split()[-1] == "succeeded" for line in items)
    # The stages each job went through, as the backend's stream endpoint saw them: in today's order,
    # from queued to completed. A row poll may overtake a message still in flight on the channel,
    # and the helper then drops that older message rather than go backwards, so an intermediate
    # stage can be absent on a loaded machine (tests/e2e/test_progress.py checks every message).
    order = ["queued", "downloading_video", "analyzing_duration", "processing_segment", "segment_uploaded",
             "uploading_results", "completed"]
    seen = {line.split()[0]: line.split()[2::2] for line in result.stdout.split("stages seen", 1)[1].splitlines()[1:4]}
    assert set(seen) == {"alice", "bob", "carol"}
    for user, stages in seen.items():
        assert stages[0] == "queued" and stages[-1] == "completed", (user, stages)
        assert all(stage in order for stage in stages), (user, stages)
        assert [order.index(stage) for stage in stages] == sorted({order.index(stage) for stage in stages}), (user, stages)
        assert "processing_segment" in stages, (user, stages)
    with Image.open(tmp_path / "contact-sheet.png") as sheet:
        assert sheet.width > 1000 and sheet.height > 500
    assert len(list((tmp_path / "segments").rglob("segment_*.mp4"))) == 12
