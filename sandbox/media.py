"""Real test videos made with the pinned ffmpeg, shaped like the uploads that break pipelines.

Phones upload files without audio, portrait, with odd dimensions, with a rotation display
matrix instead of rotated pixels, and with variable frame rate; each is one keyword here. The
videos are tiny and encoded with ``ultrafast`` so that a test suite on two cores stays fast.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from processor.binaries import tool

# One keyframe a second, as phone encoders roughly do: stream-copy cuts land near the plan.
KEYFRAMES_PER_SECOND = 1


def _ffmpeg(args: list[str]) -> None:
    # Without the layer, tool() raises ToolNotFoundError saying how to build it: a test
    # using these videos fails with that message, it is never skipped.
    command = [tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"making a test video failed: {' '.join(command)}\n{result.stderr}")


def make_video(path: Path, *, duration: float = 4.0, width: int = 320, height: int = 240,
               fps: int = 30, audio: bool = True, rotation: int | None = None, vfr: bool = False,
               codec: str = "libx264", keyframe_every: int | None = None) -> Path:
    """A testsrc2 video (moving pattern with a frame counter) with an optional sine tone.

    ``rotation`` writes a display matrix (counter-clockwise degrees, as ffprobe reports it)
    over unrotated pixels, which is how phones store portrait video. ``vfr`` drops every fifth
    frame and keeps the gaps, so frame intervals vary. Odd dimensions need 4:4:4 because
    H.264 4:2:0 requires even ones. ``keyframe_every`` frames (default: the rate over
    KEYFRAMES_PER_SECOND); more than the frame count gives a single keyframe.
    """
    path = Path(path)
    odd = width % 2 or height % 2
    # testsrc2 rounds its size down to even numbers; crop to an odd size after going 4:4:4.
    source = f"testsrc2=size={width + width % 2}x{height + height % 2}:rate={fps}:duration={duration}"
    filters = ["format=yuv444p", f"crop={width}:{height}:0:0"] if odd else ["format=yuv420p"]
    if vfr:
        filters.append(r"select='not(eq(mod(n\,5)\,2))'")
    args = ["-f", "lavfi", "-i", source]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration}"]
    args += ["-vf", ",".join(filters), "-c:v", codec, "-g", str(keyframe_every or fps // KEYFRAMES_PER_SECOND)]
    if codec == "libx264":
        args += ["-preset", "ultrafast"]
    if vfr:
        args += ["-fps_mode", "vfr"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    if rotation is None:
        _ffmpeg([*args, str(path)])
        return path
    # ffmpeg's encoder side cannot set a display matrix; a stream copy with an input-side
    # -display_rotation can, exactly as a phone's container carries it.
    plain = path.with_name(f"{path.stem}.unrotated{path.suffix}")
    _ffmpeg([*args, str(plain)])
    _ffmpeg(["-display_rotation", str(rotation), "-i", str(plain), "-c", "copy", str(path)])
    plain.unlink()
    return path


def make_truncated(path: Path, source: Path, fraction: float) -> Path:
    """The first ``fraction`` of ``source`` rewritten with its index first (faststart): an
    upload cut short, whose header still promises the whole duration."""
    whole = path.with_name(f"{path.stem}.whole{path.suffix}")
    _ffmpeg(["-i", str(source), "-c", "copy", "-movflags", "+faststart", str(whole)])
    data = whole.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    whole.unlink()
    return path


def make_not_a_video(path: Path) -> Path:
    """A file with an .mp4 name that holds no media at all (a renamed document)."""
    path = Path(path)
    path.write_bytes(b"%PDF-1.4\nthis is not a video, whatever its name says\n" * 64)
    return path


def make_audio_only(path: Path, *, duration: float = 2.0) -> Path:
    """Valid media with no video stream: it probes, but there is nothing to cut."""
    path = Path(path)
    _ffmpeg(["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration}",
             "-c:a", "aac", "-b:a", "64k", str(path)])
    return path


def streams(path: Path) -> dict[str, Any]:
    """ffprobe's streams and format of a file, with the display-matrix rotation if any."""
    result = subprocess.run(
        [tool("ffprobe"), "-v", "error", "-show_entries",
         "format=duration:stream=codec_type,codec_name,profile,pix_fmt,width,height,"
         "avg_frame_rate,r_frame_rate,duration,has_b_frames:stream_side_data=rotation",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def gray_frame(path: Path, *, index: int = 0) -> tuple[int, int, bytes]:
    """Frame ``index`` of a video as 8-bit gray pixels: (width, height, bytes)."""
    info = next(s for s in streams(path)["streams"] if s["codec_type"] == "video")
    width, height = info["width"], info["height"]
    rotation = (info.get("side_data_list") or [{}])[0].get("rotation", 0)
    if rotation in (90, -90, 270, -270):
        width, height = height, width
    result = subprocess.run(
        [tool("ffmpeg"), "-v", "error", "-i", str(path), "-vf", f"select=eq(n\\,{index})",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True)
    assert len(result.stdout) == width * height, f"no frame {index} in {path}"
    return width, height, result.stdout


def mean_abs_diff(a: bytes, b: bytes) -> float:
    assert len(a) == len(b), "frames of different sizes"
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)
