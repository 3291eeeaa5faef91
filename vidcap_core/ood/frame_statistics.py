"""Low-level statistics of a clip's decoded frames: the second, independent half of the OOD score.

The feature half (ood/feature_distance.py) measures how far a clip's backbone features lie from the
training frames'. A backbone trained on SynthClips maps images it never saw into codes it
knows: seeded noise scored 2.16 against a SynthClips median of 11, a textured 480p clip 9.4
(results/ood.md before this score existed). What SynthClips pins down tightly is the pixels
themselves: a tinted grey background with fine pixel noise, a few small shapes in a fixed
palette, 64x64 frames at 8 fps. So this half summarises the frames the model sees (read at its
frame size, as `Captioner.caption` reads them) and the video's geometry before that resize:

- each clip gives one value per statistic in STATISTICS (frame values averaged over its frames);
- each statistic's deviation is measured in units of the training clips' own tails: 0 at
  the median, 1 at the 0.5th / 99.5th percentile of the training clips (or `floor` from the
  median when the training clips barely vary, as the frame size and rate of SynthClips do not);
- the clip's score is its largest deviation (and that statistic's name says why it fired);
- the threshold is a high percentile of the validation clips' scores, and never below 1.

Measured on the best model of results/ (SynthClips standard, 400 training clips sampled, 300
validation clips, threshold 2.17 at the 99.75th percentile): 1 of 600 test clips above it; every
readable real video in ../shared/videos and every generated pattern 12.7 to 34 times above it, and
still above it on the pixel statistics alone, size and frame rate left out (closest: the keyboard
clip video_90.mov at 1.2 times, seeded noise at 1.9 times, the rest 4.4 times or more). Decoding
and summarising those 700 clips took 14 s on 2 busy cores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidcap_core.errors import FeatureError, VidcapError
from vidcap_core.video import VideoInfo, probe_video, read_frames


@dataclass(frozen=True)
class Statistic:
    name: str
    floor: float  # the smallest tail width a deviation is measured in (units of the statistic)
    what: str


# Order matters: values are stored in this order. Levels are 0-255 luminance or colour values.
STATISTICS: tuple[Statistic, ...] = (
    Statistic("brightness", 1.0, "median luminance of a frame"),
    Statistic("contrast", 1.0, "90th minus 10th percentile of a frame's luminance"),
    Statistic("fine_noise", 0.5, "median absolute 4-neighbour Laplacian of the luminance: pixel-level noise"),
    Statistic("edge_energy", 0.5, "mean absolute horizontal plus vertical luminance step"),
    Statistic("saturated_share", 0.01, "share of pixels whose chroma (max - min channel) exceeds 80"),
    Statistic("chroma", 1.0, "median chroma of a frame: how grey its background is"),
    Statistic("background_share", 0.01, "share of pixels within 40 levels (every channel) of the frame's median colour"),
    Statistic("motion", 0.1, "mean absolute luminance change between consecutive sampled frames"),
    Statistic("rare_colour_share", 0.002, "share of pixels in colours (16 levels per channel) that hold under "
                                          "1e-5 of the training frames' pixels"),
    Statistic("frame_side", 0.05, "log of the decoded frame's side, sqrt(height * width), before resizing"),
    Statistic("aspect", 0.05, "log of the decoded frame's width / height"),
    Statistic("frame_rate", 0.05, "log of the video's frame rate"),
)
STATISTIC_NAMES = tuple(s.name for s in STATISTICS)
FLOORS = np.array([s.floor for s in STATISTICS])  # (S,)
SATURATED_CHROMA = 80
BACKGROUND_LEVELS = 40
COLOUR_LEVELS = 16  # per channel: 16^3 colour bins
COLOUR_BINS = COLOUR_LEVELS ** 3
RARE_COLOUR_SHARE = 1e-5  # a colour bin below this share of the training pixels is rare
TAIL_PERCENTILE = 0.5  # deviation 1 = the training clips' 0.5th / 99.5th percentile
MIN_FPS = 0.01  # a video without a usable frame rate counts as this slow
MIN_THRESHOLD = 1.0  # never flag a clip inside every statistic's training range
DEFAULT_TRAIN_SAMPLE = 400  # training clips decoded to calibrate (a seeded sample)
DEFAULT_VAL_SAMPLE = 1000  # validation clips decoded at most (all of them, in SynthClips standard's 300)


@dataclass(frozen=True)
class Geometry:
    """What the decoder said before resizing: displayed frame size and frame rate."""

    height: int
    width: int
    fps: float

    @classmethod
    def of(cls, info: VideoInfo) -> Geometry:
        return cls(int(info.height), int(info.width), float(info.fps))


@dataclass(frozen=True)
class ClipSummary:
    """One clip boiled down: its statistics (rare_colour_share not yet known) and its colour counts."""

    values: np.ndarray  # (S,) float64 in STATISTICS order; rare_colour_share is NaN until `with_rare_share`
    colours: np.ndarray  # (COLOUR_BINS,) int64 pixel count per colour bin

    def with_rare_share(self, rare: np.ndarray) -> np.ndarray:
        """(S,) values with rare_colour_share filled in from `rare` (COLOUR_BINS,) bool."""
        values = self.values.copy()
        values[STATISTIC_NAMES.index("rare_colour_share")] = self.colours[rare].sum() / max(self.colours.sum(), 1)
        return values


def summarize_clip(frames: np.ndarray, geometry: Geometry) -> ClipSummary:
    """(T, H, W, 3) uint8 frames (at the model's frame size) and the video's geometry -> ClipSummary."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[1:3]) < 3:
        raise FeatureError(f"frame statistics need (T, H, W, 3) frames of at least 3x3 pixels, got {frames.shape}")
    t = len(frames)
    red, green, blue = (frames[..., c].astype(np.int16) for c in range(3))  # (T, H, W) each; channel by channel
    luminance = (red + green + blue).astype(np.float32) / 3.0  # (T, H, W)  (numpy is slow over a trailing axis of 3)
    chroma = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)  # (T, H, W)
    flat_luminance = luminance.reshape(t, -1)  # (T, H * W)
    laplacian = np.abs(4 * luminance[:, 1:-1, 1:-1] - luminance[:, :-2, 1:-1] - luminance[:, 2:, 1:-1]
                       - luminance[:, 1:-1, :-2] - luminance[:, 1:-1, 2:])  # (T, H - 2, W - 2)
    steps = (np.abs(np.diff(luminance, axis=2)).mean(axis=(1, 2))
             + np.abs(np.diff(luminance, axis=1)).mean(axis=(1, 2)))  # (T,)
    distance = np.zeros_like(red)  # (T, H, W): largest channel distance from the frame's median colour
    for channel in (red, green, blue):
        median = np.median(channel.reshape(t, -1), axis=1)  # (T,)
        distance = np.maximum(distance, np.abs(channel - median[:, None, None]))
    near_median = distance < BACKGROUND_LEVELS  # (T, H, W)
    low, high = np.percentile(flat_luminance, [10, 90], axis=1)  # (T,) each
    values = {
        "brightness": np.median(flat_luminance, axis=1).mean(),
        "contrast": (high - low).mean(),
        "fine_noise": np.median(laplacian.reshape(t, -1), axis=1).mean(),
        "edge_energy": steps.mean(),
        "saturated_share": (chroma > SATURATED_CHROMA).mean(),
        "chroma": np.median(chroma.reshape(t, -1), axis=1).mean(),
        "background_share": near_median.mean(),
        "motion": np.abs(np.diff(luminance, axis=0)).mean() if t > 1 else 0.0,
        "rare_colour_share": np.nan,
        "frame_side": 0.5 * np.log(max(geometry.height, 1) * max(geometry.width, 1)),
        "aspect": np.log(max(geometry.width, 1) / max(geometry.height, 1)),
        "frame_rate": np.log(geometry.fps if np.isfinite(geometry.fps) and geometry.fps > MIN_FPS else MIN_FPS),
    }
    return ClipSummary(np.array([values[name] for name in STATISTIC_NAMES], dtype=np.float64), colour_counts(frames))


def colour_counts(frames: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 pixels -> (COLOUR_BINS,) int64 pixel count per colour bin (16 levels per channel)."""
    levels = (np.asarray(frames, dtype=np.uint8) // (256 // COLOUR_LEVELS)).astype(np.int64)  # (..., 3)
    bins = (levels[..., 0] * COLOUR_LEVELS + levels[..., 1]) * COLOUR_LEVELS + levels[..., 2]
    return np.bincount(bins.ravel(), minlength=COLOUR_BINS)


@dataclass(frozen=True)
class FrameStatistics:
    """The training clips' statistic medians and tail widths, their colours, and the threshold."""

    median: np.ndarray  # (S,) over training clips
    low: np.ndarray  # (S,) median - 0.5th percentile, at least the statistic's floor
    high: np.ndarray  # (S,) 99.5th percentile - median, at least the statistic's floor
    colour_share: np.ndarray  # (COLOUR_BINS,) share of the training frames' pixels per colour bin
    threshold: float
    percentile: float
    train_clips: int
    val_clips: int
    val_scores: np.ndarray  # (M,) scores of the validation clips (the threshold's evidence)
    unreadable: int = 0  # sampled clips the calibration could not decode (left out)

    @property
    def rare(self) -> np.ndarray:
        return self.colour_share < RARE_COLOUR_SHARE  # (COLOUR_BINS,) bool

    def deviations(self, summary: ClipSummary) -> np.ndarray:
        """(S,) how far each statistic lies outside the training clips' range, in their tail widths."""
        values = summary.with_rare_share(self.rare)  # (S,)
        return np.maximum(np.maximum((values - self.median) / self.high, (self.median - values) / self.low), 0.0)

    def clip_score(self, summary: ClipSummary) -> tuple[float, str]:
        """(score, name of the statistic that set it): the largest deviation of the clip's statistics."""
        deviations = self.deviations(summary)
        worst = int(np.argmax(deviations))
        return float(deviations[worst]), STATISTIC_NAMES[worst]


def fit_frame_statistics(train: Sequence[ClipSummary], val: Sequence[ClipSummary], percentile: float,
                         unreadable: int = 0) -> FrameStatistics:
    """Medians and tails on the training clips' summaries, threshold on the validation clips' scores."""
    if len(train) < 2 or len(val) < 1:
        raise FeatureError(f"the frame statistics need at least 2 decoded training and 1 validation clips, got "
                           f"{len(train)} and {len(val)}.")
    colours = np.sum([s.colours for s in train], axis=0)  # (COLOUR_BINS,)
    colour_share = colours / max(colours.sum(), 1)
    rare = colour_share < RARE_COLOUR_SHARE
    values = np.stack([s.with_rare_share(rare) for s in train])  # (N, S)
    median = np.median(values, axis=0)  # (S,)
    low_tail, high_tail = np.percentile(values, [TAIL_PERCENTILE, 100.0 - TAIL_PERCENTILE], axis=0)  # (S,) each
    partial = FrameStatistics(median, np.maximum(median - low_tail, FLOORS), np.maximum(high_tail - median, FLOORS),
                              colour_share, np.inf, percentile, len(train), len(val), np.zeros(0), unreadable)
    val_scores = np.array([partial.clip_score(s)[0] for s in val])  # (M,)
    threshold = max(float(np.percentile(val_scores, percentile)), MIN_THRESHOLD)
    return FrameStatistics(partial.median, partial.low, partial.high, colour_share, threshold, percentile,
                           len(train), len(val), val_scores, unreadable)


# readers with the signatures of read_frames / probe_video (an IsolatedDecoder's read / probe fit too)
FrameReader = Callable[[Path, int, tuple[int, int]], np.ndarray]
FrameProber = Callable[[Path], VideoInfo]


@dataclass(frozen=True)
class DecodedSample:
    """The summaries of the clips that decoded, and (path, error) of those that did not."""

    summaries: list[ClipSummary]
    unreadable: list[tuple[Path, str]]


def sample_paths(paths: Sequence[Path], limit: int | None, seed: int = 0) -> list[Path]:
    """At most `limit` of `paths` (None: all), a seeded choice kept in their given order."""
    paths = [Path(p) for p in paths]
    if limit is None or len(paths) <= limit:
        return paths
    chosen = np.random.default_rng(seed).choice(len(paths), size=limit, replace=False)
    return [paths[i] for i in sorted(chosen)]


def summarize_videos(paths: Sequence[Path], num_frames: int, frame_size: tuple[int, int],
                     reader: FrameReader = read_frames, prober: FrameProber = probe_video) -> DecodedSample:
    """Decode each video as `Captioner.caption` does (probe, then `num_frames` frames at `frame_size`)
    and summarise it; a video the decoder refuses is listed with its error, not raised."""
    summaries, unreadable = [], []
    for path in paths:
        try:
            geometry = Geometry.of(prober(Path(path)))
            frames = reader(Path(path), num_frames, frame_size)  # (T, H, W, 3) uint8
        except VidcapError as exc:
            unreadable.append((Path(path), str(exc)))
            continue
        summaries.append(summarize_clip(frames, geometry))
    return DecodedSample(summaries, unreadable)


def frame_size_of(preprocessing: dict[str, Any]) -> tuple[int, int]:
    """(H, W) the model's frames are read at, from its preprocessing facts; FeatureError without one."""
    size = preprocessing.get("frame_size")
    if size is None:
        raise FeatureError(f"the checkpoint's features ({preprocessing.get('backbone')!r}) are not computed from "
                           "pixels, so it cannot caption raw video and needs no out-of-distribution calibration.")
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
