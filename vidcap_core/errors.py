"""Typed exceptions. Every message names the file or value at fault and says what to do."""

from __future__ import annotations


class VidcapError(Exception):
    """Base class of every error vidcap raises on purpose (bad input, missing tool, bad config)."""


class VideoReadError(VidcapError):
    """A video file cannot be read: missing, empty, not a video, corrupt or undecodable."""


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
