"""What ffprobe says about an input: the facts the cut plan and the ffmpeg command depend on.

Phones store portrait video as landscape pixels plus a display matrix, so the size a viewer
sees (``display_width`` x ``display_height``) is not the coded size; both are kept.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from processor.binaries import tool
from processor.errors import NotAVideoError

# Uploads are local files; refusing every other protocol stops a crafted playlist (HLS,
# concat) inside an "mp4" from making ffprobe or ffmpeg fetch URLs or splice other files.
INPUT_OPTIONS = {"protocol_whitelist": "file"}
# Demuxers that turn a single picture into a "video stream": a renamed photo is not a video.
_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "gif_pipe", "bmp_pipe",
                  "tiff_pipe", "svg_pipe")
# A frame rate field ffprobe cannot fill is "0/0"; rates above this are timestamp resolutions
# of variable-frame-rate files (e.g. 90000/1), not frame rates.
_MAX_PLAUSIBLE_FPS = 240
# r_frame_rate is the exact rate of constant-rate video, but for variable-rate phone video it
# is often the finest timestamp step (120, 600): above this the average says more.
_MAX_TRUSTED_BASE_RATE = 60
PROBE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class MediaInfo:
    duration: float
    width: int
    height: int
    rotation: int
    """Clockwise degrees (0, 90, 180, 270) a player turns the coded picture to show it."""
    has_audio: bool
    fps: Fraction
    video_codec: str
    pix_fmt: str
    audio_codec: str | None = None
    container: str | None = None
    """The demuxer ffprobe chose (its first name, e.g. ``mov``): a fan-out item forces it when
    it reads the upload over HTTP (processor.ranged_input)."""

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height


def _ffprobe(path: Path | str, **options: str) -> dict[str, Any]:
    """ffprobe's JSON for a local file, through ffmpeg.probe.

    ffmpeg.probe always asks for ``-show_format -show_streams``; a ``show_entries`` option
    narrows those sections to the named fields (their tags stay: ffprobe replaces invalid
    UTF-8 in them, so the JSON always decodes). It waits for ffprobe without a time limit,
    hence the watchdog.
    """
    target = path if isinstance(path, str) else str(Path(path).absolute())
    options = {**INPUT_OPTIONS, **options}
    binary = tool("ffprobe")
    stopped = threading.Event()
    watchdog = threading.Timer(PROBE_TIMEOUT_SECONDS, _stop_ffprobe, (binary, target, stopped))
    watchdog.daemon = True
    watchdog.start()
    try:
        return ffmpeg.probe(target, cmd=binary, v="error", **options)
    except ffmpeg.Error as error:
        if stopped.is_set():
            raise NotAVideoError(f"{Path(path).name} could not be read: ffprobe was stopped after "
                                 f"{PROBE_TIMEOUT_SECONDS} s") from None
        reason = error.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["unreadable"]
        raise NotAVideoError(f"{Path(path).name} is not a readable media file: {reason[0]}") from None
    finally:
        watchdog.cancel()


def _stop_ffprobe(binary: str, target: str, stopped: threading.Event) -> None:
    """Kill this process's ffprobe that reads ``target``.

    ffmpeg.probe does not expose its process, so it is found in /proc (Linux, as in Lambda
    and the worker's image): a child of this process whose argv starts with the binary and
    ends with the file.
    """
    wanted = [os.fsencode(binary), os.fsencode(target)]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")[:-1]
            if parent == os.getpid() and argv[:1] + argv[-1:] == wanted:
                stopped.set()
                os.kill(int(stat.parent.name), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read


def _rate(text: str | None) -> Fraction | None:
    try:
        rate = Fraction(text or "")
    except (ValueError, ZeroDivisionError):
        return None
    return rate if 0 < rate <= _MAX_PLAUSIBLE_FPS else None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _rotation(stream: dict[str, Any]) -> int:
    """ffprobe reports the display matrix counter-clockwise in [-180, 180]; normalise it."""
    for side_data in stream.get("side_data_list") or []:
        if "rotation" in side_data:
            counter_clockwise = float(side_data["rotation"])
            return int(round(-counter_clockwise / 90.0)) * 90 % 360
    return 0


def parse_probe(data: dict[str, Any], name: str) -> MediaInfo:
    """MediaInfo from ffprobe's JSON (streams and format sections)."""
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    if not videos:
        raise NotAVideoError(f"{name} has no video stream")
    if fmt.get("format_name") in _IMAGE_FORMATS:
        raise NotAVideoError(f"{name} is a still image, not a video")
    video = videos[0]
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    # The video stream's own duration, not the container's: cuts need video frames, and a
    # longer audio track would otherwise put a cut point after the last picture.
    duration = _float(video.get("duration")) or _float(fmt.get("duration"))
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if duration is None or width <= 0 or height <= 0:
        raise NotAVideoError(f"{name} has no decodable video (size {width}x{height}, "
                             f"duration {video.get('duration') or fmt.get('duration')})")
    base, average = _rate(video.get("r_frame_rate")), _rate(video.get("avg_frame_rate"))
    fps = base if base and base <= _MAX_TRUSTED_BASE_RATE else average or base or Fraction(30)
    return MediaInfo(
        duration=duration,
        width=width,
        height=height,
        rotation=_rotation(video),
        has_audio=audio is not None,
        fps=fps,
        video_codec=str(video.get("codec_name") or "unknown"),
        pix_fmt=str(video.get("pix_fmt") or "unknown"),
        audio_codec=str(audio.get("codec_name") or "unknown") if audio else None,
        container=str(fmt["format_name"]).split(",")[0] if fmt.get("format_name") else None,
    )


_ENTRIES = ("format=duration,format_name:stream=codec_type,codec_name,pix_fmt,width,height,"
            "r_frame_rate,avg_frame_rate,duration:stream_disposition=attached_pic:stream_side_data=rotation")


def probe(path: Path) -> MediaInfo:
    """Probe a local file; anything without a decodable video stream is a NotAVideoError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    return parse_probe(_ffprobe(path, show_entries=_ENTRIES), path.name)


def probe_url(url: str, name: str, protocols: str, formats: str) -> MediaInfo:
    """Probe an upload served over HTTP on loopback (processor.ranged_input): only ``protocols``,
    and only the demuxers in ``formats``, so no playlist demuxer can be chosen to open other URLs."""
    return parse_probe(_ffprobe(url, protocol_whitelist=protocols, format_whitelist=formats,
                                show_entries=_ENTRIES), name)


def keyframe_times(path: Path) -> list[float]:
    """Presentation times of the video keyframes, on ffmpeg's output clock (file start = 0).

    Read from packet flags, so only the container is parsed, nothing is decoded.
    """
    data = _ffprobe(Path(path), select_streams="v:0", show_entries="format=start_time:packet=pts_time,flags")
    start = float((data.get("format") or {}).get("start_time") or 0.0)
    times = (float(packet["pts_time"]) - start for packet in data.get("packets") or []
             if "K" in packet.get("flags", "") and packet.get("pts_time") not in (None, "N/A"))
    return sorted(times)
