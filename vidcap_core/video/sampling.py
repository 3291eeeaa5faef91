"""Which frames of a video a model sees: N indices spread evenly over its frames."""

from __future__ import annotations

import numpy as np


def sample_frame_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """Return `num_frames` frame indices (int64) spread evenly over `total_frames` frames.

    The video is cut into `num_frames` equal segments and each index is the frame that
    contains the centre of its segment: `floor((k + 0.5) * total_frames / num_frames)`.
    Indices are positions in display order (not timestamps), never decrease and lie in
    `[0, total_frames - 1]`.

    When the video has fewer frames than asked, segment centres share frames, so frames
    repeat (nearest-frame repetition): the output always has exactly `num_frames`
    entries, still in display order, e.g. `sample_frame_indices(3, 7) -> [0 0 1 1 1 2 2]`.
    With `total_frames >= num_frames` every index is distinct.

    Raises ValueError when either count is below 1; video readers turn a zero frame count
    into a VideoReadError naming the file.
    """
    if total_frames <= 0:
        raise ValueError(f"total_frames must be at least 1, got {total_frames}")
    if num_frames <= 0:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    k = np.arange(num_frames, dtype=np.int64)
    # Integer form of floor((k + 0.5) * total / num): exact for any video length.
    return ((2 * k + 1) * total_frames) // (2 * num_frames)  # (num_frames,)
