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
