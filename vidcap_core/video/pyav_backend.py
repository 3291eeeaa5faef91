"""PyAV (FFmpeg) reader: packet index first, then decode only the frames that are needed.

Reading a video takes two passes over the file, neither of which holds more than the
requested frames in memory:

1. Demux every video packet without decoding it. Sorting their timestamps gives the
   frames in display order (B-frames and out-of-order files included), an exact frame
   count even for containers that do not store one (MKV), the keyframe positions, and
   a truncation check against the count the container header declares.
2. Decode the requested timestamps in ascending order, seeking to the keyframe before
   a target only when that skips at least `PyavDecoding.seek_min_gap` frames; so a short
   clip is decoded in one sequential pass and a long one only around its sample points.
   How many decoder threads and how large a gap: `PyavDecoding`, chosen per file in
   `reader.choose_decode_plan` (the one place, with the measurements behind it).

Files whose packets carry no timestamps fall back to one sequential pass that counts
decoded frames and keeps only the requested ones. Each decoded frame is turned upright
(display-matrix rotation), centre-cropped and resized at once, so memory stays at
`num_frames` output frames plus one full-size frame.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np

from vidcap_core.video.checks import GET_COMPLETE_COPY, video_read_error
from vidcap_core.video.geometry import fit_frame, rotate_upright
from vidcap_core.video.info import VideoInfo
from vidcap_core.video.sampling import sample_frame_indices

CONVERSION_THREADS = 1  # swscale's default (auto) builds a thread pool per frame, 100x slower on small frames


@dataclass(frozen=True)
class PyavDecoding:
    """How PyAV decodes one read. Any setting returns the same frames; only the time differs.

    threads: FFmpeg decoder threads (thread_type AUTO: frame and slice threading); 1 = none.
    seek_min_gap: seek to the keyframe before a target only when that skips at least this many
    frames (display order); 0 = whenever a keyframe lies between, a huge value = never (one
    sequential pass).
    skip_unsampled: hand the decoder FFmpeg's skip_frame=NONREF for every packet that is not a
    sampled frame, so non-reference frames (most B-frames) nobody asked for are not decoded. No
    other frame depends on them, so the sampled frames come out the same; each is checked to have
    exactly its timestamp, and a read where one does not is redone without skipping.
    """

    threads: int = 1
    seek_min_gap: int = 0
    skip_unsampled: bool = False

    def __post_init__(self) -> None:
        if self.threads < 1 or self.seek_min_gap < 0:
            raise ValueError(f"PyavDecoding needs threads >= 1 and seek_min_gap >= 0, got {self}")


SEQUENTIAL = 2**62  # a seek_min_gap no video reaches: decode in one pass


@dataclass(frozen=True)
class PacketIndex:
    """The frames of a video stream, known from demuxing alone (nothing decoded)."""

    pts: np.ndarray  # (N,) int64 display-order timestamps in stream time base; arange(N) when unusable
    keyframe_pts: np.ndarray  # (K,) int64 sorted timestamps of keyframes
    duration_s: float
    fps: float  # the container's average frame rate, else frames / duration
    timestamps_usable: bool  # False when some packet has neither pts nor dts, or two share one
    coded_hw: tuple[int, int]  # (height, width) the stream is coded at (before rotation); (0, 0) if unknown
    codec: str  # FFmpeg decoder name: "h264", "hevc", ...

    def __len__(self) -> int:
        return len(self.pts)


@dataclass(frozen=True)
class DisplayGeometry:
    """Size of the frames as shown (rotation applied) and the rotation that does it."""

    height: int
    width: int
    rotation: int  # display-matrix angle, degrees counter-clockwise (PyAV VideoFrame.rotation)


class _SkippedTarget(Exception):
    """With skip_unsampled, a sampled timestamp came out as another frame (its packet carried a
    different pts than the frame): the read is redone without skipping."""


class _UnusableFrameTimestamps(Exception):
    """Decoded frames carry no pts, or pts that do not increase in display order (AVI with
    B-frames stamps packets in decode order), so they cannot be matched to the packet index."""


def open_container(path: Path) -> av.container.InputContainer:
    """Open `path` with FFmpeg, turning any failure into a VideoReadError naming the file."""
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise video_read_error(
            path, "FFmpeg cannot open it as a video container: it is not a video, or it is truncated or damaged",
            detail=exc,
        ) from exc


def video_stream(container: av.container.InputContainer, path: Path, threads: int = 1) -> av.video.stream.VideoStream:
    """The first video stream of `container`, ready to decode with `threads` decoder threads;
    VideoReadError when there is none."""
    if not container.streams.video:
        found = ", ".join(sorted({s.type for s in container.streams})) or "no streams at all"
        raise video_read_error(
            path,
            f"it has no video stream (found: {found})",
            "pass a file that contains video (one that should have video is truncated or damaged: copy or download it again)",
        )
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise video_read_error(
            path, "its video stream has no usable decoder (unsupported codec, or a damaged or truncated header)"
        )
    if threads > 1:  # set before the first decode opens the codec
        stream.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    return stream


def index_packets(path: Path) -> PacketIndex:
    """Demux all video packets of `path` (no decoding) into a display-order frame index.

    Raises VideoReadError when demuxing fails, when the file holds fewer packets than its
    header declares (truncated), or when the video stream has no packets at all.
    """
    with open_container(path) as container:
        stream = video_stream(container, path)
        declared = stream.frames  # 0 when the container does not say (MKV, AVI, ...)
        stamps: list[int | None] = []
        ends: list[int] = []
        keyframes: list[int] = []
        packets = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the flush packet demux yields at end of stream
                    continue
                packets += 1
                if packet.is_discard:  # decoded as a reference only; never displayed (edit lists)
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                stamps.append(stamp)
                if stamp is not None:
                    ends.append(stamp + max(packet.duration or 0, 0))
                    if packet.is_keyframe:
                        keyframes.append(stamp)
        except (av.FFmpegError, OSError) as exc:
            raise video_read_error(
                path, f"reading its packets failed after {packets} video packets: the file is truncated or damaged",
                detail=exc,
            ) from exc
        if declared > 0 and packets < declared:
            raise video_read_error(
                path,
                f"it is truncated: the container declares {declared} video frames but only {packets} are in the file",
                GET_COMPLETE_COPY,
            )
        if not stamps:
            raise video_read_error(path, "its video stream contains no frames")
        # Missing or repeated stamps cannot say which frame is which: count decoded frames instead.
        usable = all(s is not None for s in stamps) and len(set(stamps)) == len(stamps)
        pts = np.sort(np.asarray(stamps, dtype=np.int64)) if usable else np.arange(len(stamps), dtype=np.int64)
        duration_s = _stream_duration_s(container, stream, pts, ends, usable)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else (len(pts) / duration_s if duration_s > 0 else 0.0)
        coded_hw = (int(stream.codec_context.height or 0), int(stream.codec_context.width or 0))
        return PacketIndex(pts, np.asarray(sorted(keyframes), dtype=np.int64), duration_s, fps, usable, coded_hw,
                           stream.codec_context.name)


def _file_identity(path: Path) -> tuple[int, int, int, int]:
    """(device, inode, size, mtime ns): a file rewritten since it was last seen gets a new identity."""
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _cached_index(path: Path, identity: tuple[int, int, int, int]) -> PacketIndex:
    return index_packets(path)


@functools.lru_cache(maxsize=16)
def _cached_geometry(path: Path, identity: tuple[int, int, int, int]) -> DisplayGeometry:
    return display_geometry(path)


def packet_index(path: Path) -> PacketIndex:
    """`index_packets(path)`, remembered for the last 16 files while they are unchanged: a caption
    probes a file and then reads it, and the read needs the same index (failures are not kept)."""
    return _cached_index(path, _file_identity(path))


def displayed_geometry(path: Path) -> DisplayGeometry:
    """`display_geometry(path)`, remembered like `packet_index`."""
    return _cached_geometry(path, _file_identity(path))


def _stream_duration_s(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, pts: np.ndarray, ends: list[int], usable: bool
) -> float:
    """Seconds from the first frame's start to the last frame's end, with container fallbacks."""
    if usable and stream.time_base is not None:
        step = int(np.median(np.diff(pts))) if len(pts) > 1 else 0
        end = max(max(ends), int(pts[-1]) + step)  # a last packet without duration still lasts one frame step
        if end > pts[0]:
            return float((end - int(pts[0])) * stream.time_base)
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _frames_from(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, seek_pts: int | None,
    needed_pts: frozenset[int] | None = None,
) -> Iterator[av.VideoFrame]:
    """Decoded frames from the start of the stream, or from the keyframe at or before `seek_pts`.

    With `needed_pts`, packets with other timestamps are decoded with skip_frame=NONREF: their
    frames are dropped unless another frame refers to them."""
    if seek_pts is not None:
        container.seek(int(seek_pts), stream=stream, backward=True, any_frame=False)
    codec = stream.codec_context
    for packet in container.demux(stream):
        if needed_pts is not None:  # read per packet, also by frame-threading workers
            codec.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in needed_pts else "NONREF"
        yield from packet.decode()


def display_geometry(path: Path) -> DisplayGeometry:
    """Decode the first frame of `path` to learn its displayed size and rotation."""
    with open_container(path) as container:
        stream = video_stream(container, path)
        try:
            frame = next(_frames_from(container, stream, None), None)
        except (av.FFmpegError, OSError) as exc:
            raise video_read_error(path, "its first frame cannot be decoded: the file is truncated or corrupt",
                                   detail=exc) from exc
        if frame is None:
            raise video_read_error(path, "it contains no decodable video frames: it is empty, truncated or corrupt")
        rotation = int(frame.rotation)
        turned = int(round(rotation / 90.0)) % 2 == 1
        height, width = (frame.width, frame.height) if turned else (frame.height, frame.width)
        return DisplayGeometry(height, width, rotation)


def model_frame(frame: av.VideoFrame, out_hw: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB: upright, centre-cropped and resized to `out_hw`."""
    rgb = rotate_upright(frame.to_ndarray(format="rgb24", threads=CONVERSION_THREADS), frame.rotation)  # (h, w, 3), upright
    return fit_frame(rgb, out_hw)


class _SeekingDecoder:
    """Decodes frames at ascending timestamps, seeking only when the keyframe before the target
    lies at least `seek_min_gap` frames past the current position."""

    def __init__(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                 index: PacketIndex, seek_min_gap: int, needed_pts: frozenset[int] | None):
        self.container = container
        self.stream = stream
        self.keyframes = index.keyframe_pts.tolist()
        self.pts = index.pts  # (N,) sorted: display position of a timestamp by searchsorted
        self.seek_min_gap = seek_min_gap
        self.needed_pts = needed_pts  # None: decode every frame
        self.frames: Iterator[av.VideoFrame] | None = None
        self.last: av.VideoFrame | None = None
        self.previous_pts: int | None = None  # pts of the previous frame from the current iterator

    def frame_at(self, target: int) -> av.VideoFrame | None:
        """First displayed frame with pts >= target (the frame itself unless the decoder dropped it).

        None when the stream ends first. Raises av.FFmpegError on corrupt data.
        """
        if self.last is not None and self.last.pts >= target:
            return self.last
        if self._seek_skips_frames(target):
            self._restart(target)
            frame, overshot = self._advance(target, after_seek=True)
            if not overshot:
                return frame
            # The demuxer landed after the target (inexact seek index): decode from the start instead.
            self._restart(int(self.keyframes[0]))
        elif self.frames is None:
            self._restart(None)
        return self._advance(target, after_seek=False)[0]

    def _restart(self, seek_pts: int | None) -> None:
        self.frames = _frames_from(self.container, self.stream, seek_pts, self.needed_pts)
        self.previous_pts = None

    def _seek_skips_frames(self, target: int) -> bool:
        """True when a keyframe lies in (current position, target] at least `seek_min_gap` frames
        after the position, so seeking to it skips enough decoding to pay for the seek."""
        if not self.keyframes:
            return False
        position = self.keyframes[0] if self.last is None else self.last.pts
        before_target = bisect.bisect_right(self.keyframes, target) - 1  # the keyframe a seek lands on
        if before_target < 0 or self.keyframes[before_target] <= position:
            return False
        skipped = int(np.searchsorted(self.pts, self.keyframes[before_target]) - np.searchsorted(self.pts, position))
        return skipped >= max(self.seek_min_gap, 1)

    def _advance(self, target: int, after_seek: bool) -> tuple[av.VideoFrame | None, bool]:
        """Decode up to the first frame with pts >= target; also say whether a seek overshot it."""
        assert self.frames is not None
        first = after_seek
        for frame in self.frames:
            if frame.pts is None or (self.previous_pts is not None and frame.pts <= self.previous_pts):
                raise _UnusableFrameTimestamps
            self.previous_pts = frame.pts
            overshot = first and frame.pts > target
            first = False
            if overshot:
                return None, True
            self.last = frame
            if frame.pts >= target:
                return frame, False
        return None, False


def _decode_by_timestamp(path: Path, index: PacketIndex, wanted: np.ndarray, out_hw: tuple[int, int],
                         decoding: PyavDecoding) -> dict[int, np.ndarray]:
    """Frames at the sorted unique display indices `wanted`, found by pts with keyframe seeks."""
    out: dict[int, np.ndarray] = {}
    with open_container(path) as container:
        stream = video_stream(container, path, decoding.threads)
        needed = frozenset(int(t) for t in index.pts[wanted]) if decoding.skip_unsampled else None
        decoder = _SeekingDecoder(container, stream, index, decoding.seek_min_gap, needed)
        for i in wanted.tolist():
            try:
                frame = decoder.frame_at(int(index.pts[i]))
            except (av.FFmpegError, OSError) as exc:
                raise video_read_error(
                    path, f"decoding failed near frame {i} of {len(index)}: the file is corrupt", detail=exc
                ) from exc
            if needed is not None and (frame is None or frame.pts != index.pts[i]):
                raise _SkippedTarget  # decided without skipping: a real truncation is reported then
            if frame is None:
                raise video_read_error(
                    path, f"the video stream ends before frame {i} of {len(index)}: the file is truncated or corrupt"
                )
            out[i] = model_frame(frame, out_hw)
    return out


def _decode_sequentially(path: Path, total: int, wanted: np.ndarray, out_hw: tuple[int, int],
                         threads: int = 1) -> dict[int, np.ndarray]:
    """Frames at display indices `wanted`, counting decoded frames from the start (no timestamps needed)."""
    keep = set(wanted.tolist())
    last_needed = int(wanted[-1])
    out: dict[int, np.ndarray] = {}
    position = 0
    with open_container(path) as container:
        try:
            for frame in _frames_from(container, video_stream(container, path, threads), None):
                if position in keep:
                    out[position] = model_frame(frame, out_hw)
                position += 1
                if position > last_needed:
                    return out
        except (av.FFmpegError, OSError) as exc:
            raise video_read_error(
                path, f"decoding failed near frame {position} of {total}: the file is corrupt", detail=exc
            ) from exc
    if position == 0:
        raise video_read_error(path, "it contains no decodable video frames")
    raise video_read_error(
        path, f"only {position} of {total} frames can be decoded (frame {last_needed} was needed): the file is truncated or corrupt"
    )


def read_frames_pyav(path: Path, num_frames: int, out_hw: tuple[int, int], decoding: PyavDecoding = PyavDecoding(),
                     index: PacketIndex | None = None) -> np.ndarray:
    """`num_frames` evenly sampled frames of `path`, (num_frames, H, W, 3) uint8 RGB, via PyAV.

    `index`: the file's packet index when the caller already has it (else it is read here)."""
    index = packet_index(path) if index is None else index
    indices = sample_frame_indices(len(index), num_frames)  # (T,)
    wanted = np.unique(indices)
    frames: dict[int, np.ndarray] | None = None
    if index.timestamps_usable:
        try:
            try:
                frames = _decode_by_timestamp(path, index, wanted, out_hw, decoding)
            except _SkippedTarget:
                frames = _decode_by_timestamp(path, index, wanted, out_hw, replace(decoding, skip_unsampled=False))
        except _UnusableFrameTimestamps:
            frames = None
    if frames is None:
        frames = _decode_sequentially(path, len(index), wanted, out_hw, decoding.threads)
    return np.stack([frames[i] for i in indices.tolist()])  # (T, H, W, 3)


def probe_pyav(path: Path) -> VideoInfo:
    """Frame count, displayed size, average fps and duration of `path`, via PyAV."""
    index = packet_index(path)
    geometry = displayed_geometry(path)
    return VideoInfo(str(path), len(index), geometry.height, geometry.width, index.fps, index.duration_s, "pyav")

