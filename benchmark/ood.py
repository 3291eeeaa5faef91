"""`vidcap-bench ood`: how often the out-of-distribution flag fires, where it should and where it should not.

The served checkpoint's OOD calibration (vidcap_core/ood/, `<stem>.ood.npz`) flags a clip
whose frame features lie far from its training frames, or whose decoded frames' low-level statistics
(noise, edges, colours, motion, size, frame rate) lie outside its training clips' range. This program
measures that flag through the one captioning corridor (`Captioner.caption(path).ood`, as `vidcap
caption`, `/caption` and the demo page get it) on three kinds of input:

1. the SynthClips test split the checkpoint was trained on (its model card's `- Dataset:` line, made
   again with benchmark.prepare's `synth_source` into the benchmark cache, or `--root`): every test
   clip, split into in-distribution and held-out compositions (ground_truth.json `heldout`); aim <= 1%;
2. every file in ../shared/videos (read in place; absent folder: a note) and any `--videos` given:
   real camera footage the model never saw; aim 100%;
3. generated patterns that are not SynthClips (an FFmpeg testsrc2-like colour-bar chart, a gradient
   pan, random noise, the perf benchmark's textured 480p clip), written into a temp folder; aim 100%.

Files are decoded in an IsolatedDecoder child, so a damaged one costs its row (its typed error), not the run.
Results: `<out>/ood.md` and `<out>/ood.json`, written atomically, with the machine and the command.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.machine import describe_machine
from benchmark.prepare import DEFAULT_CACHE, ensure_dataset, synth_source
from benchmark.robustness.cases import SHARED_VIDEOS, encode_h264
from benchmark.tables import fmt, markdown_table
from vidcap_core.errors import CheckpointError, DatasetError, VidcapError
from vidcap_core.files import atomic_write_text, json_safe, write_json

DEFAULT_PRESET, DEFAULT_SEED = "standard", 0  # what `vidcap-bench run` trains on when no model card says otherwise
MODEL_CARD = "MODEL_CARD.md"
# the model card's data line, as benchmark.prepare.DatasetSource.label writes it for generated SynthClips
CARD_DATASET = re.compile(r"^- Dataset: SynthClips (?P<preset>[\w-]+)(?:, (?P<clips>\d+) clips)? \(seed (?P<seed>\d+)\)\s*$",
                          re.MULTILINE)
SYNTH_AIM, UNSEEN_AIM = 0.01, 1.0  # share flagged: at most 1% of SynthClips test clips, every clip unlike them
PATTERN_SIZE = (240, 320)  # (H, W) of the generated patterns
PATTERN_FPS = 10
PATTERN_SECONDS = 10  # also the perf clip's length (benchmark.perf.CLIP_SECONDS)
NOISE_SEED = 12  # issue #12
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg")

# set names, in report order
SYNTH_IN, SYNTH_HELDOUT = "SynthClips test: in-distribution", "SynthClips test: held-out compositions"
SYNTH_ALL, SHARED, PATTERNS, EXTRA = "SynthClips test: all", "../shared/videos (real)", "generated patterns", "--videos (real)"


@dataclass(frozen=True)
class OodOptions:
    checkpoint: Path
    out: Path = Path("results")
    root: Path | None = None  # an existing SynthClips folder; None: the one the model card names, in `cache`
    cache: Path = DEFAULT_CACHE
    shared: Path | None = SHARED_VIDEOS  # None: leave the shared samples out
    videos: tuple[Path, ...] = ()  # more real videos: files or folders
    pattern_seconds: int = PATTERN_SECONDS
    decode_timeout_s: float = 120.0
    command: str = ""  # the command line, for the report; empty: rebuilt from these options

    def command_line(self) -> str:
        if self.command:
            return self.command
        words = ["vidcap-bench", "ood", "--checkpoint", str(self.checkpoint), "--out", str(self.out)]
        if self.root is not None:
            words += ["--root", str(self.root)]
        if self.cache != DEFAULT_CACHE:
            words += ["--cache", str(self.cache)]
        for video in self.videos:
            words += ["--videos", str(video)]
        if self.pattern_seconds != PATTERN_SECONDS:
            words += ["--pattern-seconds", str(self.pattern_seconds)]
        return shlex.join(words)


@dataclass(frozen=True)
class ScoredFile:
    """One file through `Captioner.caption`: its OOD score and flag, or the typed error that refused it."""

    group: str  # one of the set names above
    name: str
    what: str  # one line for the report
    score: float | None = None
    threshold: float | None = None
    flagged: bool | None = None
    caption: str | None = None
    error: str | None = None
    by_features: bool | None = None  # the feature score alone is above its threshold
    by_frames: bool | None = None  # the frame statistics alone are
    statistic: str | None = None  # the frame statistic furthest outside the training clips' range

    def to_dict(self) -> dict[str, Any]:
        return {"set": self.group, "name": self.name, "what": self.what, "score": self.score,
                "threshold": self.threshold, "flagged": self.flagged, "caption": self.caption, "error": self.error,
                "by_features": self.by_features, "by_frames": self.by_frames, "statistic": self.statistic}


@dataclass(frozen=True)
class SynthTestSet:
    root: Path
    source: str  # how it was found, for the report
    clips: list[tuple[str, Path, bool]]  # (video id, path, held-out composition) of every test clip


@dataclass
class OodRun:
    """Everything ood.md and ood.json report."""

    checkpoint: Path
    command: str
    threshold: float
    calibration: dict[str, Any]
    synth: SynthTestSet
    scored: list[ScoredFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- SynthClips test clips


def card_dataset(checkpoint: Path) -> tuple[str, int | None, int] | None:
    """(preset, clips or None, seed) of the generated SynthClips set the checkpoint's MODEL_CARD.md
    names on its `- Dataset:` line; None without a card or when it names another dataset."""
    card = Path(checkpoint).parent / MODEL_CARD
    if not card.is_file():
        return None
    found = CARD_DATASET.search(card.read_text(encoding="utf-8"))
    if found is None:
        return None
    return found["preset"], None if found["clips"] is None else int(found["clips"]), int(found["seed"])


def locate_synth_test(checkpoint: Path, root: Path | None, cache: Path, say: Callable[[str], None] = print) -> SynthTestSet:
    """The test clips of `root`, or of the SynthClips set the model card names (default: the standard
    preset, seed 0), generated into `cache` as `vidcap-bench run` does when it is not there yet."""
    if root is not None:
        source = f"--root {root}"
    else:
        named = card_dataset(checkpoint)
        preset, clips, seed = named if named is not None else (DEFAULT_PRESET, None, DEFAULT_SEED)
        dataset = synth_source(cache, preset, clips, seed)
        origin = f"named by {Path(checkpoint).parent / MODEL_CARD}" if named else f"default: no {MODEL_CARD} names a SynthClips set"
        source = f"{dataset.label}, {origin}; generated into {dataset.root}"
        ensure_dataset(dataset, say=say)
        root = dataset.root
    return SynthTestSet(root, source, synth_test_clips(root))


def synth_test_clips(root: Path) -> list[tuple[str, Path, bool]]:
    """(video id, path, held-out) of every test clip of a SynthClips folder, sorted by id."""
    from vidcap_core.data import load_dataset
    from vidcap_core.synth.checker import load_ground_truth

    truths = load_ground_truth(root)
    records = sorted(load_dataset("synth", root).split("test"), key=lambda r: r.video_id)
    if not records:
        raise DatasetError(f"the SynthClips folder {root} has no test clips: point --root at a whole SynthClips set")
    missing = [r.video_id for r in records if r.video_id not in truths]
    if missing:
        raise DatasetError(f"{root}/ground_truth.json has no entry for test clips {missing[:3]}; regenerate SynthClips there.")
    return [(r.video_id, r.path, truths[r.video_id].heldout) for r in records]


# ----------------------------------------------------------------------------- generated patterns


def colour_bar_chart_frame(i: int, frames: int, size: tuple[int, int] = PATTERN_SIZE) -> np.ndarray:
    """Frame i of an FFmpeg testsrc2-like chart: seven colour bars over a grey ramp, a box sliding across."""
    h, w = size
    frame = np.empty((h, w, 3), np.uint8)  # (H, W, 3)
    bars = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                     [255, 0, 255], [255, 0, 0], [0, 0, 255]], np.uint8)  # (7, 3)
    frame[: 2 * h // 3] = bars[np.arange(w) * len(bars) // w][None]  # (2H/3, W, 3)
    frame[2 * h // 3 :] = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]  # grey ramp
    side = h // 4
    x = int((w - side) * i / max(frames - 1, 1))
    y = h // 3 - side // 2
    frame[y : y + side, x : x + side] = 0
    frame[y + side // 4 : y + 3 * side // 4, x + side // 4 : x + 3 * side // 4] = 255
    return frame


def gradient_pan_frame(i: int, frames: int, size: tuple[int, int] = PATTERN_SIZE) -> np.ndarray:
    """Frame i of a window panning across a smooth colour gradient twice the frame's width."""
    h, w = size
    offset = int(w * i / max(frames - 1, 1))
    xs = (np.arange(w) + offset) / (2 * w)  # (W,) in [0, 1)
    ys = np.arange(h) / h  # (H,)
    frame = np.empty((h, w, 3), np.float64)
    frame[..., 0] = xs[None, :]
    frame[..., 1] = ys[:, None]
    frame[..., 2] = 1.0 - 0.5 * (xs[None, :] + ys[:, None])
    return (255 * frame).astype(np.uint8)


def noise_frames(frames: int, size: tuple[int, int] = PATTERN_SIZE, seed: int = NOISE_SEED) -> Iterable[np.ndarray]:
    """`frames` frames of seeded uniform RGB noise, each (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        yield rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)


def write_patterns(folder: Path, seconds: int = PATTERN_SECONDS) -> list[tuple[str, Path, str]]:
    """(name, path, what) of each generated non-SynthClips pattern, written into `folder`."""
    from benchmark.perf import CLIP_480P, CLIP_FPS, write_480p_clip

    folder.mkdir(parents=True, exist_ok=True)
    n = seconds * PATTERN_FPS
    h, w = PATTERN_SIZE
    kind = f"{w}x{h}, {seconds} s at {PATTERN_FPS} fps"
    return [
        ("testsrc2", encode_h264(folder / "testsrc2.mp4", (colour_bar_chart_frame(i, n) for i in range(n)), PATTERN_FPS),
         f"FFmpeg testsrc2-like colour bars over a grey ramp, a box sliding across ({kind})"),
        ("gradient-pan", encode_h264(folder / "gradient_pan.mp4", (gradient_pan_frame(i, n) for i in range(n)), PATTERN_FPS),
         f"a smooth colour gradient panned sideways ({kind})"),
        ("noise", encode_h264(folder / "noise.mp4", noise_frames(n), PATTERN_FPS), f"seeded uniform RGB noise ({kind})"),
        ("perf-480p", write_480p_clip(folder / "perf_480p.mp4", seconds=seconds),
         f"vidcap-bench perf's clip: textured background, a red square crossing ({CLIP_480P[1]}x{CLIP_480P[0]}, "
         f"{seconds} s at {CLIP_FPS} fps)"),
    ]


# ----------------------------------------------------------------------------- scoring


def real_videos(paths: Sequence[Path]) -> list[Path]:
    """Files named directly, and the files of named folders (README and other notes aside), sorted per folder."""
    found: list[Path] = []
    for path in paths:
        if Path(path).is_dir():
            found += [p for p in sorted(Path(path).iterdir()) if p.is_file() and p.suffix.lower() != ".md"]
        elif Path(path).is_file():
            found.append(Path(path))
        else:
            raise DatasetError(f"--videos {path} is neither a file nor a folder: pass video files or folders of them")
    return found


def score_file(captioner: Any, path: Path, set_name: str, name: str, what: str) -> ScoredFile:
    """Caption `path` (greedy, no repetition block, as the benchmark reports) and keep its OOD answer;
    a file the library refuses keeps the typed error's message instead."""
    try:
        result = captioner.caption(path)
    except VidcapError as exc:
        return ScoredFile(set_name, name, what, error=f"{type(exc).__name__}: {exc}")
    ood = result.ood
    return ScoredFile(set_name, name, what, float(ood["score"]), float(ood["threshold"]), bool(ood["flagged"]),
                      result.caption, by_features=bool(ood["features"]["flagged"]), by_frames=bool(ood["frames"]["flagged"]),
                      statistic=ood["frames"]["statistic"])


def load_calibrated(checkpoint: Path, decoder: Any) -> Any:
    """Captioner of `checkpoint` decoding through `decoder`; CheckpointError without an OOD calibration."""
    from vidcap_core.ood import sidecar_path
    from vidcap_core.pipeline import Captioner

    captioner = Captioner.from_checkpoint(checkpoint, reader=decoder.read, prober=decoder.probe)
    if captioner.ood is None:
        raise CheckpointError(f"{checkpoint} has no OOD calibration ({sidecar_path(checkpoint)} is missing): "
                              f"make one with `vidcap calibrate-ood {checkpoint} --features DIR --dataset synth --root DATA`.")
    return captioner


def measure_ood(options: OodOptions, say: Callable[[str], None] = print) -> OodRun:
    """Score every clip of the three kinds (module docstring); returns what the report shows."""
    from vidcap_core.video import IsolatedDecoder

    checkpoint = Path(options.checkpoint)
    with IsolatedDecoder(workers=1, timeout_s=options.decode_timeout_s) as decoder:
        captioner = load_calibrated(checkpoint, decoder)
        calibration = captioner.ood
        synth = locate_synth_test(checkpoint, options.root, options.cache, say)
        feats, frames = calibration.features, calibration.frames
        run = OodRun(checkpoint, options.command_line(), float(calibration.threshold),
                     {"features": {"threshold": feats.threshold, "percentile": feats.percentile,
                                   "train_clips": feats.train_clips, "val_clips": feats.val_clips,
                                   "shrinkage": feats.shrinkage},
                      "frames": {"threshold": frames.threshold, "percentile": frames.percentile,
                                 "train_clips": frames.train_clips, "val_clips": frames.val_clips}}, synth)
        say(f"scoring {len(synth.clips)} SynthClips test clips of {synth.root} ...")
        for video_id, path, heldout in synth.clips:
            group = SYNTH_HELDOUT if heldout else SYNTH_IN
            run.scored.append(score_file(captioner, path, group, video_id, "held-out composition" if heldout else "seen compositions"))
        if options.shared is None or not Path(options.shared).is_dir():
            run.notes.append(f"The shared real videos were not scored: {options.shared} is absent on this machine "
                             "(they exist only next to the project checkout).")
        else:
            for path in real_videos([Path(options.shared)]):
                run.scored.append(score_file(captioner, path, SHARED, path.name, f"real-world sample in {options.shared}"))
        for path in real_videos(options.videos):
            run.scored.append(score_file(captioner, path, EXTRA, path.name, f"real video {path}"))
        with tempfile.TemporaryDirectory(prefix="vidcap-ood-") as scratch:
            for name, path, what in write_patterns(Path(scratch), options.pattern_seconds):
                run.scored.append(score_file(captioner, path, PATTERNS, name, what))
    return run


# ----------------------------------------------------------------------------- tables


def scored_frame(scored: Sequence[ScoredFile]) -> pd.DataFrame:
    """One row per file: set, name, what, score, threshold, flagged, caption, error."""
    columns = list(ScoredFile("", "", "").to_dict())
    return pd.DataFrame([s.to_dict() for s in scored], columns=columns)


def share_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per set (report order; SynthClips test also as a whole): files, scored, unreadable,
    flagged, share flagged (of the scored), aim, aim met, how many each score flags alone (by
    features, by frames), median and max score."""
    synth = frame[frame["set"].isin([SYNTH_IN, SYNTH_HELDOUT])].assign(set=SYNTH_ALL)
    groups = pd.concat([synth, frame], ignore_index=True)
    order = [SYNTH_ALL, SYNTH_IN, SYNTH_HELDOUT, SHARED, EXTRA, PATTERNS]
    rows = []
    for name in order:
        group = groups[groups["set"] == name]
        if not len(group):
            continue
        scores = pd.to_numeric(group["score"], errors="coerce")
        scored = int(scores.notna().sum())
        flagged = sum(1 for f in group["flagged"] if f is True)
        share = flagged / scored if scored else float("nan")
        synthetic = name.startswith("SynthClips")
        aim = SYNTH_AIM if synthetic else UNSEEN_AIM
        met = None if not scored else (share <= aim if synthetic else share >= aim)
        rows.append({"set": name, "files": len(group), "scored": scored, "unreadable": len(group) - scored,
                     "flagged": flagged, "share flagged": share, "aim": f"<= {aim:.0%}" if synthetic else f"{aim:.0%}",
                     "aim met": met, "by features": sum(1 for f in group["by_features"] if f is True),
                     "by frames": sum(1 for f in group["by_frames"] if f is True),
                     "median score": scores.median(), "max score": scores.max()})
    return pd.DataFrame(rows, columns=["set", "files", "scored", "unreadable", "flagged", "share flagged", "aim",
                                       "aim met", "by features", "by frames", "median score", "max score"])


def share_table(shares: pd.DataFrame) -> pd.DataFrame:
    """`share_rows` formatted for markdown: shares as percentages, scores to 2 decimals."""
    table = shares.copy()
    table["share flagged"] = [fmt(None) if pd.isna(s) else f"{100 * s:.1f}%" for s in shares["share flagged"]]
    table["aim met"] = [fmt(None) if m is None else ("yes" if m else "no") for m in shares["aim met"]]
    for column in ("median score", "max score"):
        table[column] = [fmt(float(v), 2) for v in shares[column]]
    return table.astype(str)


def files_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per file (the sets outside SynthClips): set, file, score, flagged, which score fired (and the
    frame statistic furthest out), what it is, and the caption or the typed error."""
    rows = frame[~frame["set"].isin([SYNTH_IN, SYNTH_HELDOUT])]
    return pd.DataFrame({
        "set": rows["set"], "file": rows["name"],
        "score": [fmt(None if pd.isna(s) else float(s), 2) for s in rows["score"]],
        "flagged": [fmt(None) if f is None or pd.isna(f) else ("yes" if f else "no") for f in rows["flagged"]],
        "fired": [fired(f, p, s) for f, p, s in zip(rows["by_features"], rows["by_frames"], rows["statistic"])],
        "what": rows["what"],
        "caption or error": [e if isinstance(e, str) else c for c, e in zip(rows["caption"], rows["error"])],
    }).reset_index(drop=True)


def fired(by_features: Any, by_frames: Any, statistic: Any) -> str:
    """Which scores are above their thresholds: "features", "frames (noise)", both, "none", or n/a."""
    if by_features is None or by_frames is None or pd.isna(by_features) or pd.isna(by_frames):
        return fmt(None)
    parts = (["features"] if by_features else []) + ([f"frames ({statistic})"] if by_frames else [])
    return " + ".join(parts) or "none"


def markdown(run: OodRun, machine_markdown: str) -> str:
    frame = scored_frame(run.scored)
    shares = share_table(share_rows(frame))
    feats, frames = run.calibration["features"], run.calibration["frames"]
    lines = [
        "# Out-of-distribution flag: where it fires", "",
        f"Checkpoint `{run.checkpoint}`; its calibration ({Path(run.checkpoint).stem}.ood.npz) holds two scores, "
        "each with its own threshold, the percentile below of the validation clips' scores. Features: the mean "
        "Mahalanobis distance of a clip's frame features from the training frames (fitted on the frames of "
        f"{feats['train_clips']} training clips; threshold {feats['threshold']:.3f}, the {feats['percentile']:g}th "
        f"percentile of {feats['val_clips']} validation clips). Frames: the largest deviation of a clip's "
        "low-level frame statistics (noise, edges, colours, motion, decoded size and frame rate) from the "
        f"training clips' range (fitted on {frames['train_clips']} decoded training clips; threshold "
        f"{frames['threshold']:.3f}, the {frames['percentile']:g}th percentile of {frames['val_clips']} validation "
        "clips). A clip is flagged when either exceeds its threshold; its score is the larger of the two scores "
        f"divided by its threshold, so the flag's threshold is {run.threshold:g}. Every file goes through "
        "`Captioner.caption`, as `vidcap caption`, `/caption` and the demo page see it.", "",
        f"SynthClips test clips: {run.synth.source}.", "",
        "## Share flagged", "", markdown_table(shares), "",
        "SynthClips test clips should not be flagged (aim <= 1%: each threshold is the validation clips' "
        f"{feats['percentile']:g}th percentile, so the two flag at most {2 * (100 - feats['percentile']):g}% of them); "
        "`by features` and `by frames` count the files each score flags on its own. Real videos and generated "
        "patterns, which the model never saw, should all be (aim 100%). Unreadable files are left out of the "
        "share and listed below with their error.", "",
        "## Files outside SynthClips", "", markdown_table(files_table(frame)), "",
        "Captions are greedy with no repetition block (as the benchmark reports them): what the model says "
        "about a clip it does not know. Per-clip SynthClips scores are in ood.json.",
    ]
    if run.notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in run.notes]]
    lines += ["", "## Machine", "", machine_markdown, "", "## Regenerate", "", "```bash", run.command, "```"]
    return "\n".join(lines) + "\n"


def write_ood(run: OodRun, out: Path) -> Path:
    """`<out>/ood.md` and `<out>/ood.json` (atomically); returns the markdown's path."""
    machine = describe_machine()
    frame = scored_frame(run.scored)
    shares = share_rows(frame)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "ood.json", json_safe({
        "command": run.command, "machine": machine.to_dict(), "checkpoint": str(run.checkpoint),
        "threshold": run.threshold, "calibration": run.calibration,
        "synth": {"root": str(run.synth.root), "source": run.synth.source, "test_clips": len(run.synth.clips)},
        "shares": json.loads(shares.to_json(orient="records")),  # NaN -> null
        "files": [s.to_dict() for s in run.scored], "notes": run.notes,
    }))
    path = out / "ood.md"
    atomic_write_text(path, markdown(run, machine.markdown()))
    return path


def run_ood(options: OodOptions, say: Callable[[str], None] = print) -> Path:
    """Measure (measure_ood) and write ood.md / ood.json into `options.out`; returns ood.md's path."""
    return write_ood(measure_ood(options, say), Path(options.out))
