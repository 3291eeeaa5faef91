"""What `vidcap-bench ood` writes: the share flagged per set against its aim, the files outside SynthClips,
as DataFrames first, then `<out>/ood.md` and `<out>/ood.json` (atomically) with the machine and the command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.machine import describe_machine
from benchmark.ood.scoring import PATTERNS, SHARED, SYNTH_ALL, SYNTH_HELDOUT, SYNTH_IN, EXTRA, OodRun, ScoredFile
from benchmark.tables import fmt, markdown_table
from vidcap_core.files import atomic_write_text, json_safe, write_json

SYNTH_AIM, UNSEEN_AIM = 0.01, 1.0  # share flagged: at most 1% of SynthClips test clips, every clip unlike them


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
