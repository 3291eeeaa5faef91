"""Training: config edge, data order, the caption limit from the data, determinism, resume (scheduler
state included), clipping, divergence, the plateau schedule, model selection, the convergence rule,
the Java-free validation CIDEr-D, gradient probe."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_datasets import TOY_FRAMES, log_rows, toy_config, weights, write_toy_dataset

from vidcap_core.errors import ConfigError, EvaluationError
from vidcap_core.models import ModelConfig, build_model
from vidcap_core.training import (
    ProbeBatch,
    frame_gradient_norms,
    resolve_config,
    train,
)
from vidcap_core.features.clips import epoch_rng, frame_order_index, gather_frames
from vidcap_core.training.batches import (
    encode_captions,
    epoch_caption_order,
    resolve_caption_limit,
    split_for_rank,
    step_position,
)
from vidcap_core.training.convergence import PlateauSchedule, PlateauState, convergence_verdict, selection_key


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- config edge


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('dataset = "csv"\nroot = "r"\nfeatures = "f"\narch = "meanpool"\nmax_steps = 700\ngrad_clip = 0\n')
    cfg = resolve_config(path, {"max_steps": 300, "cell": "rnn", "arch": None})
    assert (cfg.arch, cfg.cell, cfg.max_steps, cfg.grad_clip) == ("meanpool", "rnn", 300, None)  # 0 = clipping off
    assert cfg.max_caption_words is None  # from the data, resolved when the run loads it

    json_path = tmp_path / "run.json"
    json_path.write_text(json.dumps({"root": "r", "features": "f", "arch": "lstm"}))
    with pytest.raises(ConfigError, match="meanpool, s2vt, attention"):
        resolve_config(json_path, {})
    json_path.write_text(json.dumps({"root": "r", "features": "f", "learning_rate": 1}))
    with pytest.raises(ConfigError, match="learning_rate"):
        resolve_config(json_path, {})
    with pytest.raises(ConfigError, match="--features is required"):
        resolve_config(None, {"root": "r"})
    json_path.write_text(json.dumps({"root": "r", "features": "f", "epochs": 10}))  # the old recipe's options
    with pytest.raises(ConfigError, match="epochs.*max_steps"):
        resolve_config(json_path, {})
    with pytest.raises(ConfigError, match="multiple of val_every_steps"):
        resolve_config(None, {"root": "r", "features": "f", "max_steps": 250, "val_every_steps": 100})


# ----------------------------------------------------------------------------- data order


def test_epoch_pairs_and_frame_orders_are_seeded_permutations(tmp_path):
    from vidcap_core.data import load_dataset
    from vidcap_core.text import Vocabulary

    annotations, _ = write_toy_dataset(tmp_path)
    records = load_dataset("csv", tmp_path, annotations).split("train")
    vocab = Vocabulary.build([c for r in records for c in r.captions])
    captions = encode_captions(vocab, records, max_words=8)
    one = epoch_caption_order(captions, seed=0, epoch=0)
    assert sorted(one.tolist()) == list(range(2 * len(records)))  # every (clip, caption) pair once
    assert np.array_equal(one, epoch_caption_order(captions, seed=0, epoch=0))
    assert not np.array_equal(one, epoch_caption_order(captions, seed=0, epoch=1))
    # 48 pairs in batches of 10: 4 full batches per data epoch, step 4 opens epoch 1
    assert step_position(3, pairs=48, batch_size=10) == (0, slice(30, 40))
    assert step_position(4, pairs=48, batch_size=10) == (1, slice(0, 10))
    assert step_position(2, pairs=5, batch_size=10) == (2, slice(0, 10))  # fewer pairs than a batch: all of them

    mask = torch.tensor([[True] * 5 + [False], [True] * 6])  # (2, 6)
    shuffled = frame_order_index(mask, "shuffled", epoch_rng(0, 0, 2))
    assert sorted(shuffled[0, :5].tolist()) == list(range(5)) and shuffled[0, 5] == 5  # padding stays last
    assert torch.equal(shuffled, frame_order_index(mask, "shuffled", epoch_rng(0, 0, 2)))
    assert frame_order_index(mask, "reversed", None)[0].tolist() == [4, 3, 2, 1, 0, 5]
    feats = torch.arange(12.0).view(2, 6, 1)  # (B, T, F)
    assert gather_frames(feats, frame_order_index(mask, "reversed", None))[1, :, 0].tolist() == [11, 10, 9, 8, 7, 6]
    grids = torch.arange(2 * 6 * 3 * 2.0).view(2, 6, 3, 2)  # (B, T, R, F): a frame's regions move with it
    reordered = gather_frames(grids, shuffled)
    for t, source in enumerate(shuffled[0].tolist()):
        assert torch.equal(reordered[0, t], grids[0, source])
    parts = [split_for_rank(np.arange(7), r, 2) for r in range(2)]
    assert np.concatenate(parts).tolist() == list(range(7))


# ----------------------------------------------------------------------------- determinism and resume


def test_same_seed_gives_identical_log_and_weights(tmp_path):
    cfg = toy_config(tmp_path / "data")
    first = train(cfg, tmp_path / "a", progress=False)
    train(cfg, tmp_path / "b", progress=False)
    assert log_rows(tmp_path / "a") == log_rows(tmp_path / "b")
    a, b = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "gradients.jsonl").read_text() == (tmp_path / "b" / "gradients.jsonl").read_text()
    assert first.steps_done == 6 and [row["step"] for row in first.history] == [3, 6]
    assert [row["epoch"] for row in first.history] == [0.5, 1.0]  # 48 pairs, 6 full batches of 8 per epoch
    assert first.stop_reason == "budget"
    for name in ("config.json", "vocab.json", "best.pt", "last.pt", "log.jsonl", "gradients.jsonl", "summary.json"):
        assert (tmp_path / "a" / name).is_file(), name
    assert not list((tmp_path / "a").glob("*.tmp"))
    cider = [row["val"]["CIDEr"] for row in first.history]
    assert first.best_step == first.history[int(np.argmax(cider))]["step"]  # best.pt is chosen on val CIDEr-D (csv)
    assert json.loads((tmp_path / "a" / "config.json").read_text()) == cfg.to_dict()
    assert json.loads((tmp_path / "a" / "summary.json").read_text()) == first.summary()

    other = train(replace(cfg, seed=4), tmp_path / "c", progress=False)
    assert other.history[0]["train_loss"] != first.history[0]["train_loss"]


def test_resume_ends_like_an_uninterrupted_run(tmp_path):
    # min_rel_delta_cider 1000: no validation after the first counts as progress, so the plateau schedule cuts
    # the LR at every validation from the second on: the LR scale and counters must survive in last.pt
    cfg = toy_config(tmp_path / "data", max_steps=12, arch="attention", cell="lstm", frame_order="shuffled",
                     scheduled_sampling=0.5, scheduled_sampling_ramp_steps=4, plateau_patience=1,
                     max_lr_reductions=5, min_rel_delta_cider=1000.0, lr_decay=0.5)
    straight = train(cfg, tmp_path / "straight", progress=False)
    assert [row["lr_reductions"] for row in straight.history] == [0, 1, 2, 3]
    train(replace(cfg, max_steps=6), tmp_path / "resumed", progress=False)  # stopped at step 6 ...
    assert len(log_rows(tmp_path / "resumed")) == 2
    result = train(cfg, tmp_path / "resumed", progress=False)  # ... and the same command run again
    assert log_rows(tmp_path / "straight") == log_rows(tmp_path / "resumed")
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "resumed" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert result.steps_done == 12 and result.summary() == {**straight.summary(), "run_dir": str(tmp_path / "resumed"),
                                                            "best_checkpoint": str(tmp_path / "resumed" / "best.pt")}
    again = train(cfg, tmp_path / "resumed", progress=False)  # a finished run: nothing more to do
    assert again.history == result.history
    with pytest.raises(ConfigError, match="lr"):
        train(replace(cfg, lr=1.0), tmp_path / "resumed", progress=False)


def test_frame_deltas_reach_best_pt_and_a_run_from_before_them_resumes(tmp_path):
    from typer.testing import CliRunner

    from vidcap_core.checkpoint import load_checkpoint
    from vidcap_core.cli import app

    cfg = toy_config(tmp_path / "data", frame_deltas=2.5)
    train(cfg, tmp_path / "on", progress=False)
    assert load_checkpoint(tmp_path / "on" / "best.pt").config.frame_deltas == 2.5
    with pytest.raises(ConfigError, match="frame_deltas"):  # resuming it without them is another run
        train(replace(cfg, frame_deltas=0.0, max_steps=9), tmp_path / "on", progress=False)
    with pytest.raises(ConfigError, match="frame_deltas"):
        resolve_config(None, {"root": "r", "features": "f", "frame_deltas": -1.0})

    old = replace(cfg, frame_deltas=0.0)
    train(old, tmp_path / "old", progress=False)
    config_json = tmp_path / "old" / "config.json"
    written = json.loads(config_json.read_text())
    del written["frame_deltas"]  # RUN_DIR/config.json as runs wrote it before the option existed
    config_json.write_text(json.dumps(written))
    result = train(replace(old, max_steps=9), tmp_path / "old", progress=False)  # resumes: missing = 0
    assert result.steps_done == 9 and load_checkpoint(tmp_path / "old" / "best.pt").config.frame_deltas == 0.0

    flags = ["train", "--out", str(tmp_path / "cli"), "--root", cfg.root, "--features", cfg.features, "--dataset", "csv",
             "--annotations", cfg.annotations, "--arch", "meanpool", "--embed-size", "8", "--hidden-size", "8",
             "--max-steps", "3", "--val-every-steps", "3", "--warmup-steps", "1", "--batch-size", "8", "--min-count", "1",
             "--max-caption-words", "8", "--torch-threads", "1", "--no-progress", "--frame-deltas", "4"]
    outcome = CliRunner().invoke(app, flags)
    assert outcome.exit_code == 0, outcome.output
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["frame_deltas"] == 4.0
    cli_model = load_checkpoint(tmp_path / "cli" / "best.pt").config
    assert cli_model.frame_deltas == 4.0 and cli_model.input_dim == 2 * cli_model.feature_dim


def test_caption_limit_comes_from_the_training_captions(tmp_path):
    from vidcap_core.checkpoint import load_checkpoint
    from vidcap_core.data import load_dataset

    cfg = toy_config(tmp_path / "data", max_caption_words=None, probe_every=0)
    records = load_dataset("csv", tmp_path / "data", Path(cfg.annotations)).split("train")
    longest = max(len(c.split()) for r in records for c in r.captions)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.caption_limit == {"max_caption_words": longest, "source": "data", "longest_training_caption": longest,
                                    "truncated_captions": 0, "training_captions": 2 * len(records)}
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert written["max_caption_words"] == longest  # the resolved number, not null
    assert load_checkpoint(tmp_path / "run" / "best.pt").config.max_tokens == longest + 1  # decoding and the demo
    assert train(cfg, tmp_path / "run", progress=False).steps_done == result.steps_done  # resumes: same limit

    short = resolve_caption_limit(records, 3)  # an explicit value still wins, and says what it cuts
    assert (short.max_words, short.source) == (3, "config")
    assert short.truncated_captions == sum(len(c.split()) > 3 for r in records for c in r.captions) > 0


# ----------------------------------------------------------------------------- clipping, divergence, stopping


def test_gradient_clipping_is_logged_and_switchable(tmp_path):
    cfg = toy_config(tmp_path / "data", max_steps=3, probe_every=0)
    clipped = train(replace(cfg, grad_clip=1e-3), tmp_path / "on", progress=False).history[0]
    free = train(replace(cfg, grad_clip=None), tmp_path / "off", progress=False).history[0]
    assert clipped["grad_clip"] == 1e-3 and clipped["clip_fraction"] == 1.0
    assert free["grad_clip"] is None and free["clip_fraction"] == 0.0
    assert 0 < free["grad_norm_mean"] <= free["grad_norm_max"]
    assert clipped["grad_norm_mean"] > 1e-3  # the norm is recorded before clipping
    assert not torch.equal(weights(tmp_path / "on" / "last.pt")["classifier.weight"],
                           weights(tmp_path / "off" / "last.pt")["classifier.weight"])


def test_divergence_ends_the_run_with_a_flag(tmp_path):
    # Adam moves every weight by ~lr per step: after one step the pre-activations overflow float32
    cfg = toy_config(tmp_path / "data", arch="s2vt", cell="rnn", lr=1e30, grad_clip=None, max_steps=12,
                     warmup_steps=1, dropout=0.0)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.diverged and result.stop_reason == "diverged"
    last = result.history[-1]
    assert last["diverged"] is True and last["train_loss"] is None and last["val"] is None
    assert "train loss" in last["diverged_reason"] or "gradient norm" in last["diverged_reason"]
    assert result.steps_done < 12 and len(result.history) < 4
    assert result.convergence["converged"] is False and result.convergence["reason"] == "diverged"
    assert train(cfg, tmp_path / "run", progress=False).diverged  # rerunning does not train on


def test_plateau_stops_the_run_after_fruitless_lr_cuts(tmp_path):
    # lr so small that nothing changes: the first validation is the best, every later one is no progress;
    # patience 1 and one LR cut allowed: validation 2 cuts the LR, validation 3 stops the run
    cfg = toy_config(tmp_path / "data", max_steps=30, lr=1e-9, plateau_patience=1, max_lr_reductions=1,
                     lr_decay=0.1, probe_every=0)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.stop_reason == "plateau" and result.steps_done == 9 and result.best_step == 3
    assert [row["schedule"] for row in result.history] == ["progress", "reduce", "stop"]
    assert [row["best_step"] for row in result.history] == [3, 3, 3]
    assert result.history[2]["lr"] == pytest.approx(1e-10)
    saved = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert saved["extra"]["step"] == 3


def test_plateau_schedule_cuts_then_stops_and_ignores_noise_below_min_delta():
    schedule = PlateauSchedule(patience=2, decay=0.5, max_reductions=2, min_deltas=((0.01, 0.0), (0.0, 0.02)))
    state = PlateauState()
    decisions = [schedule.update(state, key) for key in
                 [(0.10, 1.00), (0.20, 1.00), (0.205, 1.01), (0.20, 1.015),  # noise: gains below min_delta
                  (0.21, 1.0), (0.19, 1.0), (0.20, 1.05)]]  # a CIDEr-D gain alone is progress too
    assert decisions == ["progress", "progress", "stale", "reduce", "stale", "reduce", "progress"]
    assert (state.lr_scale, state.reductions, state.fruitless_reductions) == (0.25, 2, 0)
    assert [schedule.update(state, (0.2, 1.0)) for _ in range(6)] == ["stale", "reduce", "stale", "reduce",
                                                                      "stale", "stop"]
    assert state.reductions == 4 and state.lr_scale == pytest.approx(0.0625)
    assert PlateauState.from_dict(state.to_dict()) == state
    never = PlateauSchedule(patience=None, decay=0.5, max_reductions=0, min_deltas=((0.0, 0.02),))
    assert {never.update(PlateauState(best_seen=[1.0]), (0.5,)) for _ in range(5)} == {"stale"}


def test_plateau_schedule_counts_nothing_before_its_start_step():
    # a model on its starting plateau: no progress after the first validation
    schedule = PlateauSchedule(patience=2, decay=0.5, max_reductions=1, min_deltas=((0.01, 0.0),), start_step=400)
    state = PlateauState()
    decisions = [schedule.update(state, (0.0,), step) for step in range(100, 900, 100)]
    # steps 200 and 300 are stale but not counted; from 400 on, patience 2 cuts at 500 and stops at 700
    assert decisions == ["progress", "stale", "stale", "stale", "reduce", "stale", "stop", "stop"]
    assert state.reductions == 1 and state.lr_scale == 0.5


def test_plateau_start_step_keeps_the_full_lr_in_a_run(tmp_path):
    # as test_plateau_stops_the_run_after_fruitless_lr_cuts, but the validation at step 6 does not count
    cfg = toy_config(tmp_path / "data", max_steps=30, lr=1e-9, plateau_patience=1, max_lr_reductions=1,
                     lr_decay=0.1, probe_every=0, plateau_start_step=7)
    result = train(cfg, tmp_path / "run", progress=False)
    assert [row["schedule"] for row in result.history] == ["progress", "stale", "reduce", "stop"]
    assert result.history[1]["lr"] == pytest.approx(1e-9) and result.steps_done == 12
    with pytest.raises(ConfigError, match="plateau_start_step"):
        toy_config(tmp_path / "data", plateau_start_step=-1)


def test_a_slow_steady_climb_is_progress_once_it_adds_up_to_the_threshold():
    # S2VT-LSTM's val CIDEr-D rose about 3% per validation for 1500 steps (full profile, seed 1): each gain
    # alone is below the 5% threshold, two together are above it
    schedule = PlateauSchedule(patience=2, decay=0.5, max_reductions=1, min_deltas=((0.0, 0.05),))
    state = PlateauState()
    climb = [(1.0 * 1.03 ** i,) for i in range(10)]
    decisions = [schedule.update(state, key) for key in climb]
    assert decisions == ["progress"] + ["stale", "progress"] * 4 + ["stale"]
    assert state.reductions == 0 and state.best_seen == [pytest.approx(1.03 ** 8)]


def test_selection_is_exact_accuracy_then_cider_on_synthclips_and_cider_elsewhere():
    better_exact = {"exact": 0.50, "CIDEr": 1.0, "colour": 0.9}
    better_cider = {"exact": 0.40, "CIDEr": 2.0, "colour": 0.9}
    tie_high_cider = {"exact": 0.50, "CIDEr": 1.2, "colour": 0.1}
    assert selection_key(better_exact, synth=True) > selection_key(better_cider, synth=True)
    assert selection_key(tie_high_cider, synth=True) > selection_key(better_exact, synth=True)  # tie: CIDEr-D decides
    assert selection_key(better_cider, synth=False) > selection_key(better_exact, synth=False)  # real data: CIDEr-D
    assert selection_key({"exact": float("nan"), "CIDEr": 0.3}, synth=True) == (0.0, 0.3)


def test_synthclips_validation_scores_exact_accuracy_next_to_cider():
    from vidcap_core.evaluation.validation import ValidationScorer
    from vidcap_core.synth.truth import ClipTruth

    def clip(video_id: str, shape: str, colour: str, action: str) -> ClipTruth:
        event = {"object": 0, "action": action, "start_frame": 2, "end_frame": 8, "shape": shape, "colour": colour,
                 "size": "small", "new_colour": None}
        return ClipTruth.from_json(video_id, {"split": "val", "num_frames": 16, "heldout": False, "objects": [
            {"shape": shape, "colour": colour, "size": "small", "visible": True}], "events": [event]})

    truths = {"v0": clip("v0", "circle", "yellow", "move_left"), "v1": clip("v1", "cross", "blue", "grow"),
              "other": clip("other", "square", "red", "grow")}  # truths of clips outside the split are ignored
    references = {"v0": ["the small yellow circle moves to the left", "a little yellow disk goes left"],
                  "v1": ["a small blue cross grows", "the little blue cross gets bigger"]}
    scores = ValidationScorer(references, truths).score({"v0": "a small yellow circle moves left",
                                                          "v1": "a small red cross grows"})
    assert scores["exact"] == 0.5 and scores["colour"] == 0.5 and scores["shape"] == 1.0
    assert scores["CIDEr"] > 0 and "n" not in scores
    with pytest.raises(EvaluationError, match="predict every one"):
        ValidationScorer(references, truths).score({"v0": "a small yellow circle moves left"})
    with pytest.raises(EvaluationError, match="no SynthClips ground truth"):
        ValidationScorer({**references, "v9": ["a red square"]}, truths)


# ----------------------------------------------------------------------------- the convergence rule


def history(scores: list[tuple[float, float]], every: int = 100) -> list[tuple[int, tuple[float, float]]]:
    """(step, (exact, CIDEr)) validations every `every` steps."""
    return [((i + 1) * every, key) for i, key in enumerate(scores)]


def test_convergence_rule_on_hand_made_histories():
    rising = [(0.1 * i, 0.5 + 0.1 * i) for i in range(10)]
    plateau = rising[:6] + [(0.55, 1.05), (0.56, 1.06), (0.54, 1.04), (0.55, 1.05), (0.56, 1.05), (0.55, 1.06),
                            (0.56, 1.05)]
    converged = convergence_verdict(history(plateau), 1300, "plateau")
    assert converged["converged"] and converged["best_step"] == 800 and converged["reason"] == "plateau reached and held"

    still_improving = convergence_verdict(history(rising), 1000, "budget")
    assert not still_improving["converged"] and "still improving" in still_improving["reason"]
    assert "budget" in still_improving["reason"] and still_improving["plateau_fraction"] == 1.0

    # a plateau reached early, then one lucky validation near the end: the plateau counts, not the luck
    lucky = [(0.1, 0.8), (0.3, 1.5), (0.56, 2.58), (0.56, 2.46), (0.557, 2.53), (0.54, 2.5), (0.567, 2.57),
             (0.55, 2.57), (0.577, 2.6), (0.56, 2.58), (0.563, 2.57)]
    verdict = convergence_verdict(history(lucky), 1100, "budget", val_clips=300)
    assert verdict["converged"] and (verdict["best_step"], verdict["plateau_step"]) == (900, 300)

    # a budget stop after the curve had flattened is converged: the rule reads the curve, not the stop
    assert convergence_verdict(history(plateau), 1300, "budget")["converged"]

    # a noisy plateau whose best is an early spike the run never came back to: fell off its best
    spiky = [(0.2, 0.8), (0.5, 1.0), (0.40, 0.9), (0.42, 0.95), (0.41, 0.92), (0.40, 0.93), (0.43, 0.9)]
    fell = convergence_verdict(history(spiky), 700, "plateau")
    assert not fell["converged"] and "fell off" in fell["reason"] and fell["final_gap"]["exact"] == pytest.approx(0.1)

    # noise within epsilon around a flat curve (the best is one lucky validation) still converges
    noisy = [(0.3, 0.9), (0.6, 1.0), (0.62, 1.02), (0.60, 1.0), (0.61, 1.01), (0.63, 1.0), (0.61, 0.99),
             (0.62, 1.01), (0.61, 1.0), (0.62, 1.0)]
    assert convergence_verdict(history(noisy), 1000, "plateau")["converged"]

    assert convergence_verdict(history(plateau), 1300, "diverged")["reason"] == "diverged"
    assert convergence_verdict([], 0, "budget")["converged"] is False

    # sampling noise of exact accuracy on few val clips: 0.05 best, later 0.017 on 120 clips is 2 clips
    # less, inside two binomial standard errors (0.04) though outside the 0.03 floor
    small = [(0.0, 0.5), (0.05, 1.0), (0.03, 1.0), (0.025, 1.0), (0.017, 1.0), (0.03, 1.0)]
    assert not convergence_verdict(history(small), 600, "budget")["converged"]
    counted = convergence_verdict(history(small), 600, "budget", val_clips=120)
    assert counted["converged"] and counted["exact_epsilon"] == pytest.approx(0.0398, abs=1e-4)
    real = [(s, (c,)) for s, (_, c) in history(plateau)]  # real data: the key is CIDEr-D alone
    assert convergence_verdict(real, 1300, "plateau")["converged"]


# ----------------------------------------------------------------------------- validation CIDEr-D without Java


REFERENCES = {
    "video0": ["A small red circle slides to the left.", "The red circle moves left, then a blue square spins.",
               "a little red disc travels leftward"],
    "video1": ["A big green triangle rotates clockwise.", "The green triangle turns; it doesn't stop.",
               "A large green triangle spins (slowly)."],
    "video2": ["A blue square grows, then a yellow star fades out.", "The blue square gets bigger.",
               "A yellow star disappears after a blue square grows"],
    "video3": ["A man is playing a guitar.", "Someone's strumming a guitar on stage!"],
}
PREDICTIONS = {"video0": "a small red circle slides to the left", "video1": "a green triangle rotates",
               "video2": "", "video3": "A man plays the guitar, on stage."}


def test_python_cider_d_equals_pycocoevalcap_on_ptb_tokens():
    """Our validation CIDEr-D (Python tokenizer, no Java) == what `vidcap evaluate` reports
    (pycocoevalcap's PTBTokenizer in Java, then its Cider), per video and for the corpus."""
    from vidcap_core.evaluation import Scorer
    from vidcap_core.evaluation.validation import ValidationScorer, cider_d

    with Scorer(("CIDEr",)) as scorer:  # the Java PTB tokenizer; METEOR never starts for CIDEr alone
        reference = scorer.score(PREDICTIONS, REFERENCES, metrics=("CIDEr",))
    ours = cider_d(PREDICTIONS, REFERENCES)
    assert ours.corpus["CIDEr"] == pytest.approx(reference.corpus["CIDEr"], abs=1e-12)
    for video_id, scores in reference.per_video.items():
        assert ours.per_video[video_id]["CIDEr"] == pytest.approx(scores["CIDEr"], abs=1e-12), video_id
    assert ours.per_video["video2"]["CIDEr"] == 0.0 and ours.per_video["video0"]["CIDEr"] > 1.0
    validation = ValidationScorer(REFERENCES)  # references tokenised once, reused across calls
    assert validation.score(PREDICTIONS) == {"CIDEr": ours.corpus["CIDEr"]}
    assert validation.score(PREDICTIONS) == {"CIDEr": ours.corpus["CIDEr"]}


# ----------------------------------------------------------------------------- gradient-flow probe


def probe_inputs(arch: str) -> tuple[torch.nn.Module, ProbeBatch]:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, cell="lstm", feature_dim=8, vocab_size=12, embed_size=8,
                                    hidden_size=8, dropout=0.3, max_tokens=6, attention_size=8))
    feats = torch.randn(3, 5, 8)  # (B, T, F)
    mask = torch.ones(3, 5, dtype=torch.bool)
    captions = torch.tensor([[1, 5, 6, 2, 0], [1, 7, 2, 0, 0], [1, 4, 8, 9, 2]])  # (B, L)
    return model, ProbeBatch(feats, mask, captions)


@pytest.mark.parametrize("arch", ["meanpool", "s2vt", "attention"])
def test_gradient_probe_gives_one_finite_norm_per_frame(arch):
    model, batch = probe_inputs(arch)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = frame_gradient_norms(model, batch)
    assert norms.shape == (5,) and np.isfinite(norms).all() and (norms > 0).all()
    assert model.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    if arch == "meanpool":
        np.testing.assert_allclose(norms, norms[0], rtol=1e-5)  # the mean treats every frame alike
    else:
        assert norms.std() > 1e-3 * norms.mean()


def test_probe_rows_are_written_at_init_and_every_validation(tmp_path):
    # frame_deltas 0: the plain mean treats every frame alike (the mean of the deltas is (x_last - x_0) / T)
    cfg = toy_config(tmp_path / "data", arch="meanpool", cell="lstm", max_steps=6, probe_every=1, frame_deltas=0.0)
    train(cfg, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "gradients.jsonl").read_text().splitlines()]
    assert [(r["step"], r["epoch"]) for r in rows] == [(0, 0.0), (3, 0.5), (6, 1.0)]
    assert all(len(r["grad_norms"]) == TOY_FRAMES for r in rows)
    np.testing.assert_allclose(rows[0]["grad_norms"], rows[0]["grad_norms"][0], rtol=1e-5)
