"""What `vidcap-bench ood` measures: the OOD answer of the served checkpoint's `Captioner.caption` on every
SynthClips test clip, the real videos and the generated patterns (benchmark/ood/patterns.py), each file
decoded in an IsolatedDecoder child so a damaged one costs its row (its typed error), not the run."""

from __future__ import annotations

import re
import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.ood.patterns import PATTERN_SECONDS, write_patterns
from benchmark.prepare import DEFAULT_CACHE, ensure_dataset, synth_source
from benchmark.robustness.cases import SHARED_VIDEOS
from vidcap_core.errors import CheckpointError, DatasetError, VidcapError

DEFAULT_PRESET, DEFAULT_SEED = "standard", 0  # what `vidcap-bench run` trains on when no model card says otherwise
MODEL_CARD = "MODEL_CARD.md"
# the model card's data line, as benchmark.prepare.DatasetSource.label writes it for generated SynthClips
# A set grown to N x its training clips ("..., 4 x its training clips (val and test unchanged) (seed 0)") has the
# preset's own test clips, so the preset's set is the one to score.
CARD_DATASET = re.compile(r"^- Dataset: SynthClips (?P<preset>[\w-]+)(?:, (?P<clips>\d+) clips)?"
                          r"(?:, \d+ x its training clips \(val and test unchanged\))? \(seed (?P<seed>\d+)\)\s*$",
                          re.MULTILINE)

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
