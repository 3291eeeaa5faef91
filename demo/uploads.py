"""Checking an upload against the demo's limits before anything decodes it (suffix, size, duration,
a video track), and the messages for people when a file is refused or unreadable: `check_upload`,
`friendly_message`, `DemoLimits`. demo/handlers.py calls them on every request."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vidcap_core.errors import ConfigError, VidcapError, VideoReadError

if TYPE_CHECKING:  # torch-heavy: imported when the first model loads, not at startup
    from vidcap_core.video import IsolatedDecoder, VideoInfo

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
AUDIO_SUFFIXES = (".mp3", ".wav", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma", ".aiff")
BYTES_PER_MB = 1024 * 1024
VIDEO_KINDS = ", ".join(s[1:] for s in VIDEO_SUFFIXES)
# One message for every audio-only upload (an .mp3, or an .mp4 that holds only sound), page and API alike.
AUDIO_ONLY = ("{name} holds sound only; this demo captions what it sees, so it needs a video track: "
              "upload a video file (" + VIDEO_KINDS + ").")
NO_VIDEO = "No video given: upload a video file (" + VIDEO_KINDS + ") or pick an example."


@dataclass(frozen=True)
class DemoLimits:
    """What one request may ask for; anything beyond gets a friendly refusal, not a slow server."""

    max_upload_mb: float = 200.0
    max_duration_s: float = 600.0
    max_beam: int = 8
    max_frames: int = 64
    max_hypotheses: int = 5  # beam hypotheses shown (n_best = min(beam, this))

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_duration_s", "max_beam", "max_frames", "max_hypotheses"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"DemoLimits.{name}={value!r} must be a positive number.")


@dataclass
class CheckedVideo:
    path: Path
    info: VideoInfo
    probe_ms: float


def whole_number(what: str, value: int | float | str) -> int:
    """Sliders and JSON clients send 3, 3.0 or "3"; anything else is a ConfigError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a whole number, got {value!r}.") from None
    if isinstance(value, bool) or not number.is_integer():
        raise ConfigError(f"{what} must be a whole number, got {value!r}.")
    return int(number)


def check_upload(path: str | Path | None, limits: DemoLimits, decoder: IsolatedDecoder | None = None) -> CheckedVideo:
    """The file exists, has a video suffix, and is within the size and duration limits, with frames.

    Probes in `decoder`'s child process when given, else here. Raises VideoReadError (for
    people: it names the file and says what to do).
    """
    from vidcap_core.video import probe_video

    if path is None or str(path).strip() == "":
        raise VideoReadError(NO_VIDEO)
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path.name} was not found; upload it again.")
    if path.suffix.lower() in AUDIO_SUFFIXES:
        raise VideoReadError(AUDIO_ONLY.format(name=path.name))
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        kind = f"a {path.suffix} file" if path.suffix else "a file without an extension"
        raise VideoReadError(f"{path.name} is {kind}; upload a video: {', '.join(s[1:] for s in VIDEO_SUFFIXES)}.")
    size_mb = path.stat().st_size / BYTES_PER_MB
    if size_mb > limits.max_upload_mb:
        raise VideoReadError(f"{path.name} is {size_mb:.1f} MB, over this demo's {limits.max_upload_mb:g} MB limit; "
                             "trim or re-encode it smaller (or start vidcap-demo with a larger --max-upload-mb).")
    started = time.perf_counter()
    try:
        info = probe_video(path) if decoder is None else decoder.probe(path)
    except VideoReadError as exc:
        if (exc.problem or "").startswith("it has no video stream (found: audio"):  # an .mp4/.mkv that holds only sound
            raise VideoReadError(AUDIO_ONLY.format(name=path.name)) from exc
        raise
    probe_ms = elapsed_ms(started)
    if info.frames < 1:
        raise VideoReadError(f"{path.name} has no video frames to caption; upload a clip with a video track.")
    if math.isfinite(info.duration_s) and info.duration_s > limits.max_duration_s:
        raise VideoReadError(f"{path.name} lasts {info.duration_s:.0f} s, over this demo's {limits.max_duration_s:g} s "
                             "limit; trim it (e.g. `ffmpeg -i in.mp4 -t 60 out.mp4`) or start vidcap-demo with a "
                             "larger --max-duration.")
    return CheckedVideo(path, info, probe_ms)


def friendly_message(exc: VidcapError, path: str | Path | None) -> str:
    """The error's message for the page: a video the library cannot read is said from its parts
    (file name, problem, `upload_advice`); any other error's own message (it names the file and the
    fix) has the server's temporary upload folder cut from the file name. Either way the page shows
    `corrupted.mp4`, not /tmp/gradio/3f9.../corrupted.mp4."""
    if isinstance(exc, VideoReadError) and exc.path is not None and exc.problem is not None:
        return f"Cannot read video {Path(exc.path).name!r}: {exc.problem}; {upload_advice(exc.advice or '')}."
    text = str(exc)
    if path is not None and str(path).strip():
        full = str(path)
        name = Path(full).name
        text = text.replace(str(Path(full).resolve()), name).replace(full, name)
        if text.startswith(name):  # a file name keeps its case
            return text
    return text[:1].upper() + text[1:]


def upload_advice(advice: str) -> str:
    """The library's advice on an unreadable file (vidcap_core.video.checks), said to someone who
    uploads it: fix the file, then upload it again. Advice that is not about the file (restart the
    program, make it readable on the server) stays as it is."""
    from vidcap_core.video import checks

    return {
        checks.REENCODE: f"{checks.REENCODE} and upload it again",
        checks.GET_COMPLETE_COPY: "upload a complete copy of the file",
        checks.RECREATE: "upload a complete copy of the file",
        checks.CHECK_PATH: "upload it again",
        checks.PASS_A_VIDEO: "upload a video file (" + VIDEO_KINDS + ")",
    }.get(advice, advice)


def elapsed_ms(started: float) -> float:
    return 1000.0 * (time.perf_counter() - started)
