"""Reading video frames: PyAV by the fastest path measured per file kind (decord on request); probing; frame sampling.

`read_frames(path, num_frames, size)` returns `(T, H, W, 3)` uint8 RGB frames, evenly
sampled, upright, centre-cropped and resized; `probe_video(path)` returns a VideoInfo.
`IsolatedDecoder` does both in child processes, so a decoder crash costs one file.
Any unreadable file raises `vidcap_core.errors.VideoReadError` naming it.
"""

from vidcap_core.video.info import VideoInfo
from vidcap_core.video.isolated import IsolatedDecoder
from vidcap_core.video.reader import BACKENDS, Backend, probe_video, read_frames
from vidcap_core.video.sampling import sample_frame_indices

__all__ = ["BACKENDS", "Backend", "IsolatedDecoder", "VideoInfo", "probe_video", "read_frames", "sample_frame_indices"]
