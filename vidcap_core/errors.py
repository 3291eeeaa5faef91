"""Typed exceptions. Every message names the file or value at fault and says what to do."""

from __future__ import annotations


class VidcapError(Exception):
    """Base class of every error vidcap raises on purpose (bad input, missing tool, bad config)."""


class VideoReadError(VidcapError):
    """A video file cannot be read: missing, empty, not a video, corrupt or undecodable.

    vidcap_core.video words it "cannot read video PATH: PROBLEM; ADVICE." and keeps the parts as
    attributes: `path`, `problem` (what failed, in words), `advice` (what to do, so a caller such as
    the demo can say it in its own terms) and `detail`, the decoder's own words (FFmpeg's error,
    decord's reason, a child's signal), left out of the sentence (also the `__cause__` in-process;
    an attribute because a cause does not cross IsolatedDecoder's process boundary). Errors raised
    elsewhere with a finished message have these None.
    """

    def __init__(self, message: str, *, path: str | None = None, problem: str | None = None,
                 advice: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.problem = problem
        self.advice = advice
        self.detail = detail  # pickled with the instance __dict__ (BaseException.__reduce__)


class DatasetError(VidcapError):
    """Annotations are missing, malformed, or a requested split is empty."""


class FeatureError(VidcapError):
    """Features are missing, incompatible with a model, or a backbone cannot be built."""


class CheckpointError(VidcapError):
    """A checkpoint is missing, unsafe, truncated, or does not match the model it claims."""


class ConfigError(VidcapError):
    """An option or config-file value is invalid."""


class EvaluationError(VidcapError):
    """Scoring cannot run: empty split, empty predictions, missing Java."""


class JavaExitedError(EvaluationError):
    """A Java process vidcap was talking to (the METEOR jar) exited; carries its exit status and stderr tail."""

    def __init__(self, message: str, exit_code: int, stderr: str):
        super().__init__(message)
        self.exit_code = exit_code  # negative: killed by that signal (subprocess.Popen.returncode)
        self.stderr = stderr  # its last stderr lines, joined with " | "

    def __reduce__(self):  # pickles with its fields, so it can cross a process boundary intact
        return type(self), (str(self), self.exit_code, self.stderr)
