"""SynthClips training sets that grow with val and test fixed (issue #21): N x the preset's training clips,
its val and test clips (and their held-out compositions) byte for byte under the same ids, no training
clip equal to a val or test clip, and synth.json saying how the set was made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vidcap_core.data import load_dataset
from vidcap_core.errors import ConfigError, DatasetError
from vidcap_core.files import file_sha256
from vidcap_core.synth import generate_synthclips, load_ground_truth
from vidcap_core.synth.config import resolve_config
from vidcap_core.synth.generator import assign_splits, build_clip, check_train_clips_unseen, grown_roles, plan_digest

MULTIPLIER = 3


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory) -> tuple[Path, Path]:
    """SynthClips tiny seed 0, and the same grown to 3 x its training clips."""
    base = tmp_path_factory.mktemp("growth")
    generate_synthclips("tiny", base / "x1", seed=0, workers=1)
    generate_synthclips("tiny", base / "x3", seed=0, workers=2, train_multiplier=MULTIPLIER)
    return base / "x1", base / "x3"


def split_ids(root: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for video in json.loads((root / "videodatainfo.json").read_text(encoding="utf-8"))["videos"]:
        out.setdefault(video["split"], set()).add(video["video_id"])
    return out


def hashes(root: Path, ids: set[str]) -> dict[str, str]:
    return {v: file_sha256(root / "videos" / f"{v}.mp4") for v in sorted(ids)}


def test_val_and_test_clips_are_the_presets_byte_for_byte(tiny_sets):
    base, grown = tiny_sets
    before, after = split_ids(base), split_ids(grown)
    assert after["validate"] == before["validate"] and after["test"] == before["test"]
    held = before["validate"] | before["test"]
    assert hashes(grown, held) == hashes(base, held)
    truth_before, truth_after = load_ground_truth(base), load_ground_truth(grown)
    assert {v: truth_after[v] for v in held} == {v: truth_before[v] for v in held}  # held-out compositions too
    assert sum(truth_after[v].heldout for v in before["test"]) > 0
    # the preset's own training clips are kept as well; the new ones come after them
    assert before["train"] < after["train"]
    assert len(after["train"]) == MULTIPLIER * len(before["train"])
    assert hashes(grown, before["train"]) == hashes(base, before["train"])
    extra = after["train"] - before["train"]
    assert not any(truth_after[v].heldout for v in extra)


def test_no_training_clip_equals_a_val_or_test_clip(tiny_sets):
    _, grown = tiny_sets
    ids = split_ids(grown)
    train = set(hashes(grown, ids["train"]).values())
    assert not train & set(hashes(grown, ids["validate"] | ids["test"]).values())
    assert len(train) == len(ids["train"])  # and no two training clips are the same file


def test_synth_json_says_how_the_set_was_made_and_the_loader_reads_it(tiny_sets):
    base, grown = tiny_sets
    info = json.loads((grown / "synth.json").read_text(encoding="utf-8"))
    tiny = resolve_config("tiny", None)
    base_train = len(split_ids(base)["train"])
    assert info["train_multiplier"] == MULTIPLIER and info["num_clips"] == tiny.num_clips
    assert info["counts"]["clips"] == tiny.num_clips + (MULTIPLIER - 1) * base_train
    grown_from = info["grown_from"]
    assert grown_from["base"] == {"preset": "tiny", "seed": 0, "num_clips": tiny.num_clips, "train_clips": base_train}
    assert grown_from["extra_train_clips"] == (MULTIPLIER - 1) * base_train
    assert grown_from["extra_video_ids"][0] == f"video{tiny.num_clips}"
    assert "val and test clips" in grown_from["how"]
    assert "train_multiplier" not in json.loads((base / "synth.json").read_text(encoding="utf-8"))  # the preset's own is as before
    dataset = load_dataset("synth", grown)
    counts = {split: sum(r.split == split for r in dataset.records) for split in ("train", "val", "test")}
    assert counts == {"train": MULTIPLIER * base_train, "val": len(split_ids(base)["validate"]),
                      "test": len(split_ids(base)["test"])}


def test_rerun_is_a_no_op_and_other_multipliers_are_refused(tiny_sets):
    _, grown = tiny_sets
    summary = generate_synthclips("tiny", grown, seed=0, train_multiplier=MULTIPLIER)
    assert summary["rendered"] == 0 and summary["clips"] == len(load_ground_truth(grown))
    with pytest.raises(ConfigError, match="train_multiplier"):
        generate_synthclips("tiny", grown, seed=0, train_multiplier=2)
    with pytest.raises(ConfigError, match="train_multiplier"):
        generate_synthclips("tiny", grown, seed=0)  # the preset itself is another dataset
    for bad in (0, 1.5):
        with pytest.raises(ConfigError, match="whole number"):
            grown_roles(resolve_config("tiny", None), 0, bad)


def test_standard_preset_roles_and_clips_keep_their_place():
    """Without rendering: 8 x the standard preset's 2100 training clips keep its 3000 clips' roles and plans."""
    cfg = resolve_config("standard", None)
    roles = grown_roles(cfg, 0, 8)
    assert roles[: cfg.num_clips] == assign_splits(cfg, 0)
    assert sum(split == "train" for split, _ in roles) == 8 * 2100 and len(roles) == 3000 + 7 * 2100
    test = next(i for i, (split, heldout) in enumerate(roles) if split == "test" and heldout)
    assert build_clip(cfg, 0, test, *roles[test]).truth.heldout
    assert plan_digest(build_clip(cfg, 0, 3000, *roles[3000]).plan) != plan_digest(build_clip(cfg, 0, test, *roles[test]).plan)


def test_a_training_clip_equal_to_a_test_clip_is_refused():
    truth = {"split": "train"}
    results = [(0, {"split": "test"}, ("a",), True, "same"), (1, truth, ("a",), True, "other"),
               (2, truth, ("a",), True, "same")]
    with pytest.raises(DatasetError, match="video2 equals test clip video0"):
        check_train_clips_unseen(results)
    check_train_clips_unseen(results[:2])


def test_cli_train_multiplier(tmp_path):
    from vidcap_core.cli import app

    out = tmp_path / "grown"
    result = CliRunner().invoke(app, ["data", "synth", "--preset", "tiny", "--num-clips", "10", "--out", str(out),
                                      "--train-multiplier", "2", "--no-progress", "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["splits"]["train"] == 2 * 7 and summary["clips"] == 17
    assert json.loads((out / "synth.json").read_text(encoding="utf-8"))["train_multiplier"] == 2
