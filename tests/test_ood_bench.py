"""`vidcap-bench ood`: the OOD flag's rates on SynthClips test clips, the shared real videos and generated
patterns, end to end on a tiny calibrated checkpoint, and the table logic on hand-made scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmark.ood import (
    PATTERNS,
    SHARED,
    SYNTH_ALL,
    SYNTH_HELDOUT,
    SYNTH_IN,
    OodOptions,
    ScoredFile,
    card_dataset,
    locate_synth_test,
    files_table,
    gradient_pan_frame,
    measure_ood,
    noise_frames,
    real_videos,
    scored_frame,
    share_rows,
    share_table,
    colour_bar_chart_frame,
    write_ood,
)
from benchmark.robustness.cases import SHARED_VIDEOS
from fixtures_datasets import build_calibrated_checkpoint
from vidcap_core.errors import CheckpointError, DatasetError
from vidcap_core.synth.checker import load_ground_truth

PATTERN_SECONDS = 1  # short patterns: the mechanics, not the measurement


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, Path]:
    """(SynthClips tiny folder, checkpoint with its OOD calibration)."""
    return build_calibrated_checkpoint(tmp_path_factory.mktemp("ood-bench"))


def test_ood_command_writes_both_files(calibrated, tmp_path):
    from benchmark.cli import app

    synth, checkpoint = calibrated
    out = tmp_path / "results"
    done = CliRunner().invoke(app, ["ood", "--checkpoint", str(checkpoint), "--out", str(out), "--root", str(synth),
                                    "--pattern-seconds", str(PATTERN_SECONDS)])
    assert done.exit_code == 0, done.output
    report = json.loads((out / "ood.json").read_text())
    markdown = (out / "ood.md").read_text()

    truths = {v: t for v, t in load_ground_truth(synth).items() if t.split == "test"}
    synth_files = [f for f in report["files"] if f["set"] in (SYNTH_IN, SYNTH_HELDOUT)]
    assert sorted(f["name"] for f in synth_files) == sorted(truths)  # every test clip, nothing else
    assert all((f["set"] == SYNTH_HELDOUT) == truths[f["name"]].heldout for f in synth_files)
    patterns = [f for f in report["files"] if f["set"] == PATTERNS]
    assert [f["name"] for f in patterns] == ["testsrc2", "gradient-pan", "noise", "perf-480p"]
    scored = [f for f in report["files"] if f["error"] is None]
    assert patterns and all(f in scored for f in patterns) and all(f in scored for f in synth_files)
    assert all(f["flagged"] == (f["score"] > f["threshold"]) for f in scored)  # scores are rounded to 3 digits
    assert all(f["flagged"] == (f["by_features"] or f["by_frames"]) for f in scored)  # either score flags
    assert all(f["flagged"] and f["by_frames"] for f in patterns)  # not SynthClips: its frame statistics say so
    assert all(abs(f["threshold"] - report["threshold"]) < 1e-3 for f in scored)

    shares = {row["set"]: row for row in report["shares"]}
    assert shares[SYNTH_ALL]["files"] == len(truths)
    assert shares[SYNTH_ALL]["flagged"] == sum(f["flagged"] for f in synth_files)
    assert report["command"].startswith("vidcap-bench ood --checkpoint") and report["machine"]["cores"] >= 1
    assert report["command"] in markdown and "## Share flagged" in markdown and "testsrc2" in markdown
    if SHARED_VIDEOS.is_dir():  # every shared file has a row: a score, or its typed error
        shared = {f["name"]: f for f in report["files"] if f["set"] == SHARED}
        assert set(shared) == {p.name for p in SHARED_VIDEOS.iterdir() if p.suffix.lower() != ".md"}
        assert shared["corrupted.mp4"]["error"].startswith("VideoReadError: ") and shared["corrupted.mp4"]["score"] is None
        assert shared["flipping_a_pancake.mkv"]["error"] is None and shared["flipping_a_pancake.mkv"]["score"] > 0
        assert all(f["flagged"] for f in shared.values() if f["error"] is None)  # every readable real video
        assert not report["notes"]
    else:
        assert report["notes"] and SHARED not in shares


def test_absent_shared_videos_give_a_note(calibrated, tmp_path):
    synth, checkpoint = calibrated
    absent = tmp_path / "no-such-folder"
    run = measure_ood(OodOptions(checkpoint, out=tmp_path, root=synth, shared=absent, pattern_seconds=PATTERN_SECONDS),
                      say=lambda _: None)
    assert len(run.notes) == 1 and str(absent) in run.notes[0] and "absent" in run.notes[0]
    assert not [s for s in run.scored if s.group == SHARED]
    markdown = write_ood(run, tmp_path / "out").read_text()
    assert "## Notes" in markdown and str(absent) in markdown
    assert "../shared/videos (real)" not in markdown.split("## Files")[0]  # no share row for what was not scored


def test_extra_videos_and_a_checkpoint_without_calibration(calibrated, tmp_path):
    synth, checkpoint = calibrated
    bare = tmp_path / "bare" / "model.pt"
    bare.parent.mkdir()
    shutil.copy(checkpoint, bare)
    with pytest.raises(CheckpointError, match="no OOD calibration.*vidcap calibrate-ood"):
        measure_ood(OodOptions(bare, root=synth, shared=None), say=lambda _: None)
    with pytest.raises(DatasetError, match="neither a file nor a folder"):
        real_videos([tmp_path / "missing.mp4"])
    clip = synth / "videos" / sorted(p.name for p in (synth / "videos").iterdir())[0]
    assert real_videos([synth / "videos", clip])[-1] == clip


def scores(group: str, values: list[float], threshold: float = 10.0) -> list[ScoredFile]:
    return [ScoredFile(group, f"{group}-{i}", "hand-made", v, threshold, v > threshold, "a caption") for i, v in enumerate(values)]


def test_shares_on_hand_made_scores():
    scored = (scores(SYNTH_IN, [1.0] * 199 + [11.0]) + scores(SYNTH_HELDOUT, [2.0] * 100)
              + scores(SHARED, [20.0, 5.0]) + [ScoredFile(SHARED, "broken.mp4", "hand-made", error="VideoReadError: bad")]
              + scores(PATTERNS, [30.0, 40.0, 50.0, 60.0]))
    frame = scored_frame(scored)
    shares = share_rows(frame).set_index("set")
    assert list(shares.index) == [SYNTH_ALL, SYNTH_IN, SYNTH_HELDOUT, SHARED, PATTERNS]
    assert shares.loc[SYNTH_ALL, ["files", "flagged"]].tolist() == [300, 1]
    assert shares.loc[SYNTH_ALL, "share flagged"] == pytest.approx(1 / 300)
    assert shares["aim met"].tolist() == [True, True, True, False, True]  # 0.3%, 0.5%, 0% <= 1%; shared 50% < 100%
    assert shares.loc[SYNTH_HELDOUT, "flagged"] == 0 and shares.loc[SYNTH_IN, "max score"] == 11.0
    assert shares.loc[SHARED, ["files", "scored", "unreadable", "flagged"]].tolist() == [3, 2, 1, 1]
    assert shares.loc[SHARED, "share flagged"] == 0.5  # the unreadable file is left out
    assert shares.loc[PATTERNS, "share flagged"] == 1.0

    table = share_table(share_rows(frame)).set_index("set")
    assert table.loc[SYNTH_ALL, "share flagged"] == "0.3%" and table.loc[SHARED, "share flagged"] == "50.0%"
    assert table.loc[SYNTH_IN, "aim"] == "<= 1%" and table.loc[SHARED, "aim met"] == "no"
    files = files_table(frame)
    assert len(files) == 7 and files.loc[files["file"] == "broken.mp4", "caption or error"].item() == "VideoReadError: bad"
    assert files.loc[files["file"] == f"{SHARED}-1", "flagged"].item() == "no"


def test_a_set_of_only_unreadable_files_has_no_share():
    shares = share_rows(scored_frame([ScoredFile(SHARED, "x.mp4", "hand-made", error="VideoReadError: bad")]))
    assert shares["scored"].tolist() == [0] and np.isnan(shares["share flagged"].item()) and shares["aim met"].item() is None
    assert share_table(shares)["share flagged"].tolist() == ["n/a"]


def test_card_dataset_reads_the_model_cards_data_line(tmp_path):
    card = tmp_path / "MODEL_CARD.md"
    assert card_dataset(tmp_path / "model.pt") is None
    card.write_text("# Model card\n\n## Data\n\n- Dataset: SynthClips standard, 600 clips (seed 0)\n- Features: x\n")
    assert card_dataset(tmp_path / "model.pt") == ("standard", 600, 0)
    card.write_text("## Data\n\n- Dataset: SynthClips long (seed 3)\n")
    assert card_dataset(tmp_path / "model.pt") == ("long", None, 3)
    card.write_text("## Data\n\n- Dataset: msvd at /data/msvd\n")
    assert card_dataset(tmp_path / "model.pt") is None


def test_the_model_cards_synthclips_set_is_generated_into_the_cache(tmp_path):
    (tmp_path / "MODEL_CARD.md").write_text("## Data\n\n- Dataset: SynthClips tiny, 12 clips (seed 0)\n")
    found = locate_synth_test(tmp_path / "model.pt", None, tmp_path / "cache", say=lambda _: None)
    assert found.root.parent == tmp_path / "cache" / "synth" and found.root.name.startswith("tiny-")
    assert "named by" in found.source and "SynthClips tiny, 12 clips (seed 0)" in found.source
    truths = load_ground_truth(found.root)
    assert [c[0] for c in found.clips] == sorted(v for v, t in truths.items() if t.split == "test")
    assert [c[2] for c in found.clips] == [truths[c[0]].heldout for c in found.clips] and all(c[1].is_file() for c in found.clips)


def test_patterns_move_and_noise_is_seeded():
    first, last = colour_bar_chart_frame(0, 10), colour_bar_chart_frame(9, 10)
    assert first.shape == last.shape == (240, 320, 3) and first.dtype == np.uint8 and not np.array_equal(first, last)
    assert not np.array_equal(gradient_pan_frame(0, 10), gradient_pan_frame(9, 10))
    assert all(np.array_equal(a, b) for a, b in zip(noise_frames(3), noise_frames(3)))
    assert not np.array_equal(*list(noise_frames(2)))
