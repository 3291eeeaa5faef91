"""Turning a decoded frame into a model input: upright, centre-cropped, resized, RGB uint8."""

from __future__ import annotations

import numpy as np
from PIL import Image

from vidcap_core.errors import ConfigError


def output_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """Normalise `size` to (height, width): an int means a square frame."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in hw):
        raise ConfigError(f"frame size must be a positive int or a (height, width) pair of positive ints, got {size!r}")
    return int(hw[0]), int(hw[1])


def rotate_upright(frame: np.ndarray, rotation: float) -> np.ndarray:
    """Rotate a decoded (h, w, 3) frame by its display-matrix angle so it shows upright.

    `rotation` is FFmpeg's display-matrix angle in degrees, counter-clockwise (PyAV's
    `VideoFrame.rotation`): -90 (a phone held upright) turns the frame 90 degrees
    clockwise, as `ffmpeg` does with autorotate. Angles are rounded to quarter turns.
    """
    quarter_turns = int(round(rotation / 90.0)) % 4
    if quarter_turns == 0:
        return frame
    return np.ascontiguousarray(np.rot90(frame, k=quarter_turns))  # (w, h, 3) or (h, w, 3)


def centre_crop_box(height: int, width: int, out_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, crop_h, crop_w) of the largest centred box with the aspect ratio of `out_hw`."""
    out_h, out_w = out_hw
    if width * out_h > height * out_w:  # source wider than target: trim left and right
        crop_h, crop_w = height, max(1, round(height * out_w / out_h))
    else:  # source taller than target: trim top and bottom
        crop_h, crop_w = max(1, round(width * out_h / out_w)), width
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def fit_frame(frame: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Centre-crop an (h, w, 3) uint8 frame to the aspect ratio of `out_hw`, then resize to it.

    Cropping (not padding, not stretching) keeps objects their true shape and the whole
    output filled with picture; the parts lost are the borders of the longer side.
    Resizing is bilinear with antialiasing when shrinking (Pillow).
    """
    h, w = frame.shape[:2]
    top, left, crop_h, crop_w = centre_crop_box(h, w, out_hw)
    crop = frame[top : top + crop_h, left : left + crop_w]  # (crop_h, crop_w, 3)
    if (crop_h, crop_w) == out_hw:
        return np.ascontiguousarray(crop)
    image = Image.fromarray(np.ascontiguousarray(crop))
    return np.asarray(image.resize((out_hw[1], out_hw[0]), Image.Resampling.BILINEAR))  # (H, W, 3)
