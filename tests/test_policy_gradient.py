"""Policy-gradient fine-tuning (training/finetune.py, policy_gradient.py, scst.py, adversarial.py): SCST with both reward sources and the LSTM-GAN.

Sampling (shapes, determinism, equivalence with step() and greedy), the rewards on hand-made captions
(and CIDEr-D == pycocoevalcap's on the same document frequencies), the discriminator, both methods
running a few steps deterministically from a toy MLE run, resume == uninterrupted, divergence and
collapse recorded, and `vidcap train --init-from --scst / --adversarial` end to end.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fixtures_datasets import (
    COLOURS,
    MOTIONS,
    SHAPES,
    TOY_DIM,
    TOY_FRAMES,
    log_rows,
    msrvtt_video,
    toy_config,
    touch,
    weights,
    write_json,
)
from vidcap_core.decoding import greedy_decode
from vidcap_core.decoding.sampling import sample_captions
from vidcap_core.errors import ConfigError
from vidcap_core.models import BOS_ID, EOS_ID, PAD_ID, ModelConfig, build_model, repeat_each
from vidcap_core.models.discriminator import CaptionDiscriminator, DiscriminatorConfig, mean_frame_feature
from vidcap_core.synth.truth import ClipTruth, EventTruth, ObjectTruth
from vidcap_core.training import train
from vidcap_core.training.finetune_config import resolve_finetune
from vidcap_core.training.finetune_config import FinetuneConfig
from vidcap_core.training.collapse import COLLAPSE_FRACTION, collapse_reason, saturation_reason
from vidcap_core.training.finetune import finetune
from vidcap_core.training.policy_gradient import StepStats, leave_one_out_baseline
from vidcap_core.training.rewards import CiderDReward, SemanticReward

TIMING_KEYS = ("seconds", "train_seconds", "val_seconds")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rows_without_time(run: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in log_rows(run)]


def last_payload(run: Path) -> dict:
    return torch.load(run / "last.pt", map_location="cpu", weights_only=True)


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def mle_run(tmp_path_factory) -> Path:
    """A toy S2VT-GRU trained by the MLE loop: the generator every fine-tune here starts from."""
    folder = tmp_path_factory.mktemp("pg")
    torch.set_num_threads(1)
    train(toy_config(folder / "data", max_steps=12, val_every_steps=6), folder / "mle", progress=False)
    return folder / "mle"


def finetune_configs(init_from: Path, method: str, reward: str | None = None, finetune_options: dict | None = None,
                     **changes):
    overrides = {"max_steps": 4, "val_every_steps": 2, **changes}
    return resolve_finetune(init_from, method, None, overrides,
                            {"reward": reward, "d_pretrain_epochs": 1.0, **(finetune_options or {})})


# ----------------------------------------------------------------------------- sampling


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="s2vt", cell="gru", feature_dim=TOY_DIM, vocab_size=20, embed_size=8, hidden_size=12,
                      dropout=0.0, max_tokens=7)
    return build_model(cfg).eval()


def test_sampling_shapes_masks_and_determinism():
    model = tiny_model()
    feats = torch.randn(6, TOY_FRAMES, TOY_DIM)
    draw = lambda seed: sample_captions(model, feats, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    first, again, other = draw(0), draw(0), draw(1)
    B, L = first.tokens.shape
    assert B == 6 and 1 <= L <= 7 and first.logprobs.shape == first.mask.shape == (B, L)
    assert torch.equal(first.tokens, again.tokens) and torch.equal(first.logprobs, again.logprobs)
    assert not torch.equal(first.tokens, other.tokens)
    assert bool(first.mask[:, 0].all())
    assert not bool((first.mask[:, 1:] & ~first.mask[:, :-1]).any())  # a prefix per row
    assert bool((first.tokens[~first.mask] == PAD_ID).all()) and bool((first.logprobs[~first.mask] == 0).all())
    real = first.tokens[first.mask]
    assert not bool(((real == PAD_ID) | (real == BOS_ID)).any())
    assert bool((first.logprobs[first.mask] < 0).all())
    for row, keep, words in zip(first.tokens.tolist(), first.mask.tolist(), first.word_ids()):
        emitted = [t for t, k in zip(row, keep) if k]
        assert EOS_ID not in emitted[:-1]  # EOS only ever ends a caption
        assert words == [t for t in emitted if t != EOS_ID]
        assert emitted[-1] == EOS_ID or len(emitted) == 7  # ended, or ran to max_len


def test_sampled_logprobs_are_the_step_functions_and_differentiable():
    """At temperature 1 each log-prob is log softmax of the teacher-forced logits (PAD, BOS excluded)."""
    model = tiny_model()
    feats = torch.randn(4, TOY_FRAMES, TOY_DIM)
    sample = sample_captions(model, feats, generator=torch.Generator().manual_seed(3))
    inputs = torch.cat([torch.full((4, 1), BOS_ID), sample.tokens], dim=1)  # (B, L + 1)
    logits, _ = model(feats, None, inputs)  # (B, L + 1, V)
    logits = logits[:, :-1].clone()
    logits[..., PAD_ID] = logits[..., BOS_ID] = float("-inf")
    expected = torch.log_softmax(logits, -1).gather(2, sample.tokens.unsqueeze(2)).squeeze(2)  # (B, L)
    assert torch.allclose(sample.logprobs[sample.mask], expected[sample.mask], atol=1e-5)
    sample.sequence_logprobs().sum().backward()
    assert model.classifier.weight.grad is not None and model.classifier.weight.grad.abs().sum() > 0


def test_near_zero_temperature_samples_the_greedy_caption():
    model = tiny_model(seed=2)
    feats = torch.randn(5, TOY_FRAMES, TOY_DIM)
    cold = sample_captions(model, feats, generator=torch.Generator().manual_seed(0), temperature=1e-4)
    assert cold.word_ids() == [h[0].tokens for h in greedy_decode(model, feats)]


def test_sampling_refuses_a_bad_temperature():
    with pytest.raises(ConfigError, match="temperature"):
        sample_captions(tiny_model(), torch.randn(1, 2, TOY_DIM), generator=torch.Generator(), temperature=0.0)


def test_each_clip_is_repeated_k_times_in_a_row():
    feats = torch.arange(6.0).view(3, 2)  # (B, F)
    assert repeat_each(feats, 2).tolist() == [[0, 1], [0, 1], [2, 3], [2, 3], [4, 5], [4, 5]]
    assert repeat_each(feats, 1) is feats


def test_sampling_k_per_clip_encodes_once_and_equals_sampling_k_copies():
    """K captions per clip from one encoding expanded K times: the same draws and log-probs as sampling
    from K copies of every clip (eval mode), with the encoder run once over the B clips."""
    model = tiny_model(seed=1)
    feats = torch.randn(3, TOY_FRAMES, TOY_DIM)
    mask = torch.arange(TOY_FRAMES).unsqueeze(0) < torch.tensor([[TOY_FRAMES], [2], [TOY_FRAMES - 1]])  # (B, T)
    encoded: list[int] = []
    hook = model.frame_proj.register_forward_hook(lambda module, args, out: encoded.append(args[0].size(0)))
    expanded = sample_captions(model, feats, mask, generator=torch.Generator().manual_seed(5), per_clip=4)
    hook.remove()
    copies = sample_captions(model, repeat_each(feats, 4), repeat_each(mask, 4),
                             generator=torch.Generator().manual_seed(5))
    assert encoded == [3]  # one encoder pass over the 3 clips, not 12
    assert expanded.tokens.shape[0] == 12 and torch.equal(expanded.tokens, copies.tokens)
    assert torch.allclose(expanded.logprobs, copies.logprobs, atol=1e-6)
    with pytest.raises(ConfigError, match="per clip"):
        sample_captions(model, feats, generator=torch.Generator(), per_clip=0)


# ----------------------------------------------------------------------------- rewards and D


REFERENCES = {
    "clip0": ["a red square moves left", "the red square slides to the left", "a square moves left"],
    "clip1": ["a blue circle grows", "the blue ball gets bigger"],
    "clip2": ["a green triangle spins", "the green triangle rotates", "a triangle spins around"],
}


def test_cider_reward_prefers_the_reference_to_nonsense():
    reward = CiderDReward(REFERENCES)
    scores = reward(["a red square moves left", "purple elephants sing opera", "a blue circle grows"],
                    ["clip0", "clip0", "clip0"])
    assert scores[0] > 1.0 and scores[1] == 0.0 and 0.0 <= scores[2] < scores[0]


def test_cider_reward_equals_pycocoevalcap_on_the_same_document_frequencies():
    """The reward's corpus is the references it was built from; pycocoevalcap's Cider with those
    references (one candidate per clip) must give the same per-clip numbers."""
    from pycocoevalcap.cider.cider import Cider

    from vidcap_core.evaluation.validation import python_tokens

    candidates = {"clip0": "a red square slides left", "clip1": "the blue circle gets bigger", "clip2": "a triangle"}
    ids = sorted(REFERENCES)
    _, expected = Cider().compute_score({v: [python_tokens(r) for r in REFERENCES[v]] for v in ids},
                                        {v: [python_tokens(candidates[v])] for v in ids})
    ours = CiderDReward(REFERENCES)([candidates[v] for v in ids], ids)
    np.testing.assert_allclose(ours, np.asarray(expected), rtol=1e-12)


def square_truth(video_id: str, colour: str, shape: str, action: str) -> ClipTruth:
    event = EventTruth(object=0, action=action, start_frame=0, end_frame=7, shape=shape, colour=colour, size="large")
    return ClipTruth(video_id=video_id, split="train", num_frames=8, heldout=False,
                     objects=(ObjectTruth(shape, colour, "large", True),), events=(event,))


def test_semantic_reward_is_one_for_an_exact_caption_and_zero_for_a_wrong_one():
    reward = SemanticReward({"clip0": square_truth("clip0", "red", "square", "move_left")})
    scores = reward(["a large red square moves left", "a red square moves right", "a blue square moves left"],
                    ["clip0"] * 3)
    assert scores.tolist() == [1.0, 0.0, 0.0]


def test_discriminator_ignores_trailing_padding_and_reads_the_clip():
    torch.manual_seed(0)
    d = CaptionDiscriminator(DiscriminatorConfig(vocab_size=12, feature_dim=TOY_DIM, embed_size=8, filters=4,
                                                 video_size=4, hidden_size=6, dropout=0.0)).eval()
    tokens = torch.tensor([[5, 6, EOS_ID], [7, EOS_ID, PAD_ID]])  # (B, L)
    padded = torch.cat([tokens, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    video = mean_frame_feature(torch.randn(2, TOY_FRAMES, TOY_DIM), torch.ones(2, TOY_FRAMES, dtype=torch.bool))
    logits = d(tokens, video)
    assert logits.shape == (2,) and bool(torch.isfinite(logits).all())
    assert torch.allclose(d(padded, video), logits)
    assert torch.isfinite(d(torch.tensor([[EOS_ID]]), video[:1])).all()  # shorter than the widest window
    assert not torch.allclose(d(tokens, video.flip(0)), logits)


def test_discriminator_learns_which_clip_a_caption_describes():
    """The LSTM-GAN's D must read the video: trained on captions with their own clip (real) vs with
    another clip (fake), it ranks each caption's own clip first. Clip vectors are small (0.05, like mean
    synth-cnn features), which a D without a normalised, multiplicative caption x video term did not
    learn in this budget (it stayed at loss ln 2)."""
    torch.manual_seed(0)
    n, dim = 9, 16
    d = CaptionDiscriminator(DiscriminatorConfig(vocab_size=12, feature_dim=dim, embed_size=8, filters=8, video_size=8,
                                                 hidden_size=8, dropout=0.0))
    colour, shape = torch.arange(n) % 3, torch.arange(n) // 3
    tokens = torch.stack([4 + colour, 7 + shape, torch.full((n,), EOS_ID)], dim=1)  # (N, 3): colour, shape, EOS
    video = 0.01 * torch.randn(n, dim)  # (N, F)
    video[torch.arange(n), colour] += 0.05
    video[torch.arange(n), 3 + shape] += 0.05
    optimizer = torch.optim.Adam(d.parameters(), lr=1e-3)
    for step in range(300):
        other = (torch.arange(n) + 1 + step % (n - 1)) % n  # another clip for every caption
        real, wrong = d(tokens, video), d(tokens, video[other])
        loss = 0.5 * (torch.nn.functional.binary_cross_entropy_with_logits(real, torch.ones(n))
                      + torch.nn.functional.binary_cross_entropy_with_logits(wrong, torch.zeros(n)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    d.eval()
    with torch.no_grad():
        scores = torch.stack([d(tokens, video[torch.full((n,), j)]) for j in range(n)], dim=1)  # (caption, clip)
    assert torch.equal(scores.argmax(1), torch.arange(n))


def test_leave_one_out_baseline_is_the_mean_of_the_clips_other_samples():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 6.0],  # clip 0: K = 4 samples
                            [0.0, 0.0, 1.0, 1.0]])  # clip 1
    baseline = leave_one_out_baseline(rewards)
    expected = torch.tensor([[(2 + 3 + 6) / 3, (1 + 3 + 6) / 3, (1 + 2 + 6) / 3, (1 + 2 + 3) / 3],
                             [2 / 3, 2 / 3, 1 / 3, 1 / 3]])
    assert torch.allclose(baseline, expected)
    advantage = rewards - baseline
    assert torch.allclose(advantage.sum(1), torch.zeros(2), atol=1e-6)  # each clip's advantages cancel
    assert torch.allclose(advantage[0], torch.tensor([-8 / 3, -4 / 3, 0.0, 4.0]))  # r_k - mean of the others
    assert torch.allclose(advantage, 4 / 3 * (rewards - rewards.mean(1, keepdim=True)))  # K/(K-1) x (r - clip mean)
    assert torch.equal(leave_one_out_baseline(torch.full((3, 5), 0.7)), torch.full((3, 5), 0.7))  # all equal: 0




def test_finetune_config_refuses_a_mean_baseline_without_other_samples():
    FinetuneConfig(method="scst", init_from="x", samples=2).validate()
    FinetuneConfig(method="scst", init_from="x", samples=1, baseline="greedy").validate()
    with pytest.raises(ConfigError, match="samples >= 2"):
        FinetuneConfig(method="scst", init_from="x", samples=1).validate()
    with pytest.raises(ConfigError, match="samples"):
        FinetuneConfig(method="scst", init_from="x", samples=0, baseline="greedy").validate()
    with pytest.raises(ConfigError, match="baseline"):
        FinetuneConfig(method="scst", init_from="x", baseline="moving").validate()


def test_collapse_and_saturation_rules():
    assert collapse_reason_of(start=1.0, now=COLLAPSE_FRACTION * 0.9) is not None
    assert collapse_reason_of(start=1.0, now=COLLAPSE_FRACTION * 1.1) is None
    assert collapse_reason_of(start=0.0, now=0.0) is None  # nothing to collapse from
    saturated = StepStats(1.0, 1.0, 0.0, 0.001, 0.001, 0.0, 5.0, 0.1, d_loss=0.01, d_accuracy=1.0, d_fake_prob=0.001)
    learning = replace(saturated, d_accuracy=0.9)
    assert "saturated" in saturation_reason([saturated, saturated], adversarial=True)
    assert saturation_reason([saturated, learning], adversarial=True) is None
    assert saturation_reason([saturated], adversarial=False) is None


def collapse_reason_of(start: float, now: float) -> str | None:
    ft = FinetuneConfig(method="scst", init_from="x")
    return collapse_reason(ft, {"CIDEr": start}, {"CIDEr": now})


# ----------------------------------------------------------------------------- the loop


@pytest.mark.parametrize("method, options", [
    ("scst", {}),  # K = 5 samples per clip, each against the mean of the other four
    ("scst", {"samples": 1, "baseline": "greedy", "temperature": 1.0, "sample_dropout": True}),  # Rennie et al.
    ("adversarial", {}),
    ("adversarial", {"samples": 2, "baseline": "greedy"}),
])
def test_finetune_runs_deterministically(mle_run, tmp_path, method, options):
    cfg, ft = finetune_configs(mle_run, method, finetune_options=options)
    first = finetune(cfg, ft, tmp_path / "a", progress=False)
    second = finetune(cfg, ft, tmp_path / "b", progress=False)
    assert first.stop_reason == second.stop_reason == "budget"
    rows = rows_without_time(tmp_path / "a")
    assert rows == rows_without_time(tmp_path / "b")
    assert same_tensors(weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt"))
    assert not same_tensors(weights(tmp_path / "a" / "last.pt"), torch.load(
        mle_run / "best.pt", map_location="cpu", weights_only=True)["state_dict"])  # G moved
    start, *intervals = rows
    assert start["step"] == 0 and start["val"] is not None and start["best_step"] == 0
    assert [r["step"] for r in intervals] == [2, 4]
    for row in intervals:
        assert all(math.isfinite(row[k]) for k in ("train_loss", "mle_loss", "pg_loss", "reward", "baseline"))
        assert row["val"] is not None and not row["diverged"]
        assert row["reward"] <= row["reward_best"]  # the mean of K samples vs the mean of each clip's best
        if ft.baseline == "mean":  # the leave-one-out means average to the samples' mean reward
            assert row["baseline"] == pytest.approx(row["reward"], rel=1e-5, abs=1e-6)
    if method == "adversarial":
        assert start["d_pretrain_steps"] == 48 // 8  # one pass: 24 clips x 2 captions, batch 8
        assert 0.0 <= start["d_accuracy"] <= 1.0
        assert all(0.0 < start[k] < 1.0 for k in ("d_real_prob", "d_fake_prob", "d_mismatched_prob"))
        assert all(0.0 <= r["d_accuracy"] <= 1.0 and 0.0 < r["reward"] < 1.0 for r in intervals)
        assert same_tensors(last_payload(tmp_path / "a")["discriminator"], last_payload(tmp_path / "b")["discriminator"])
    else:
        assert all(r["d_loss"] is None for r in intervals)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["finetune"]["method"] == method and summary["best_checkpoint"]


def test_adversarial_resume_ends_like_an_uninterrupted_run(mle_run, tmp_path):
    cfg, ft = finetune_configs(mle_run, "adversarial")
    finetune(cfg, ft, tmp_path / "whole", progress=False)
    finetune(replace(cfg, max_steps=2), ft, tmp_path / "parts", progress=False)
    finetune(cfg, ft, tmp_path / "parts", progress=False)
    assert rows_without_time(tmp_path / "whole") == rows_without_time(tmp_path / "parts")
    whole, parts = last_payload(tmp_path / "whole"), last_payload(tmp_path / "parts")
    assert same_tensors(whole["model"], parts["model"]) and same_tensors(whole["discriminator"], parts["discriminator"])


def test_resume_refuses_another_finetune_in_the_same_folder(mle_run, tmp_path):
    cfg, ft = finetune_configs(mle_run, "scst")
    finetune(replace(cfg, max_steps=2), ft, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="mle_weight"):
        finetune(cfg, replace(ft, mle_weight=0.5), tmp_path / "run", progress=False)


def test_a_huge_learning_rate_is_recorded_as_diverged(mle_run, tmp_path):
    cfg, ft = finetune_configs(mle_run, "scst", lr=1e6, max_steps=8)
    result = finetune(cfg, ft, tmp_path / "run", progress=False)
    assert result.stop_reason == "diverged" and result.diverged
    last = log_rows(tmp_path / "run")[-1]
    assert last["diverged"] is True and last["diverged_reason"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["diverged"] and summary["convergence"]["reason"] == "diverged"
    assert summary["best_step"] == 0  # best.pt stays the starting model


def test_options_that_contradict_the_checkpoint_or_the_data_are_refused(mle_run):
    with pytest.raises(ConfigError, match="hidden_size"):
        finetune_configs(mle_run, "scst", hidden_size=99)
    with pytest.raises(ConfigError, match="semantic"):
        finetune_configs(mle_run, "scst", reward="semantic")  # a csv dataset has no ground truth
    with pytest.raises(ConfigError, match="--scst"):
        finetune_configs(mle_run, "adversarial", reward="cider")


def write_toy_synth(root: Path, features: Path, n_train: int = 18, n_val: int = 6) -> None:
    """SynthClips' on-disk format (videodatainfo.json, videos/, ground_truth.json) for the toy clips,
    with placeholder videos and a feature cache like write_toy_dataset's."""
    rng = np.random.default_rng(0)
    features.mkdir(parents=True, exist_ok=True)
    videos, sentences, clips = [], [], {}
    for i in range(n_train + n_val):
        split = "train" if i < n_train else "validate"
        shape, colour, motion = SHAPES[i % 3], COLOURS[(i // 3) % 3], MOTIONS[(i // 9) % 2]
        video_id = f"video{i}"
        videos.append(msrvtt_video(i, split))
        touch(root / "videos" / f"{video_id}.mp4")
        for k, caption in enumerate((f"a {colour} {shape} moves {motion}", f"the {colour} {shape} slides {motion}")):
            sentences.append({"caption": caption, "video_id": video_id, "sen_id": 2 * i + k})
        truth = square_truth(video_id, colour, shape, f"move_{motion}")
        clips[video_id] = {**truth.to_json(), "split": "train" if split == "train" else "val"}
        feats = 0.1 * rng.standard_normal((TOY_FRAMES, TOY_DIM))
        feats[:, SHAPES.index(shape)] += 1.0
        feats[:, 3 + COLOURS.index(colour)] += 1.0
        feats[:, 6] += np.linspace(-1.0, 1.0, TOY_FRAMES) * (1 if motion == "right" else -1)
        np.save(features / f"{video_id}.npy", feats.astype(np.float16))
    write_json(root / "videodatainfo.json", {"info": {"description": "SynthClips"}, "videos": videos,
                                             "sentences": sentences})
    write_json(root / "ground_truth.json", {"clips": clips})
    (features / "features.json").write_text(json.dumps({
        "backbone": "random", "weights": "random-init seed 0", "feature_dim": TOY_DIM, "grid_dim": TOY_DIM,
        "num_frames": TOY_FRAMES, "frame_size": [32, 32], "grid": False, "grid_size": [2, 2], "dtype": "float16",
        "version": 1}))


def test_scst_with_the_semantic_reward_runs_deterministically(tmp_path):
    root, features = tmp_path / "synth", tmp_path / "features"
    write_toy_synth(root, features)
    base = replace(toy_config(tmp_path / "unused"), dataset="synth", root=str(root), annotations=None,
                   features=str(features), max_steps=12, val_every_steps=6)
    train(base, tmp_path / "mle", progress=False)
    cfg, ft = finetune_configs(tmp_path / "mle", "scst", reward="semantic")
    finetune(cfg, ft, tmp_path / "a", progress=False)
    finetune(cfg, ft, tmp_path / "b", progress=False)
    rows = rows_without_time(tmp_path / "a")
    assert rows == rows_without_time(tmp_path / "b")
    assert same_tensors(weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt"))
    assert "exact" in rows[0]["val"]  # validated on the semantic checker, as the MLE loop does on SynthClips
    assert all(0.0 <= r["reward"] <= 1.0 and 0.0 <= r["baseline"] <= 1.0 for r in rows[1:])


# ----------------------------------------------------------------------------- CLI


def test_cli_trains_then_fine_tunes_with_scst_and_adversarially(tmp_path):
    from vidcap_core.cli import app

    cfg = toy_config(tmp_path / "data")
    runner = CliRunner()
    mle = runner.invoke(app, [
        "train", "--dataset", "csv", "--root", cfg.root, "--annotations", str(cfg.annotations), "--features",
        cfg.features, "--arch", "s2vt", "--cell", "gru", "--embed-size", "16", "--hidden-size", "24",
        "--max-steps", "6", "--val-every-steps", "3", "--warmup-steps", "2", "--batch-size", "8", "--lr", "0.005",
        "--grad-clip", "1.0", "--min-count", "1", "--max-caption-words", "8", "--seed", "3", "--torch-threads", "1",
        "--out", str(tmp_path / "mle"), "--no-progress"])
    assert mle.exit_code == 0, mle.output
    scst_options = ["--reward", "cider", "--samples", "3", "--baseline", "greedy", "--temperature", "0.7"]
    for method, extra in (("--scst", scst_options), ("--adversarial", ["--d-pretrain-epochs", "1"])):
        out = tmp_path / method.strip("-")
        result = runner.invoke(app, ["train", "--init-from", str(tmp_path / "mle"), method, *extra, "--max-steps", "2",
                                     "--val-every-steps", "2", "--out", str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["finetune"]["method"] == method.strip("-") and summary["steps_done"] == 2
        assert summary["stop_reason"] == "budget" and Path(summary["best_checkpoint"]).is_file()
        assert json.loads((out / "config.json").read_text())["lr"] == pytest.approx(0.0005)  # a tenth of the MLE LR
        chosen = json.loads((out / "finetune.json").read_text())
        expected = (3, "greedy", 0.7) if method == "--scst" else (5, "mean", 0.5)  # the options, or the defaults
        assert (chosen["samples"], chosen["baseline"], chosen["temperature"]) == expected
    refused = runner.invoke(app, ["train", "--scst", "--out", str(tmp_path / "x"), "--no-progress"])
    assert refused.exit_code == 2 and "--init-from" in refused.output


@pytest.mark.parametrize("arch", ["meanpool", "attention", "concepts"])
def test_adversarial_fine_tuning_runs_on_every_arch(tmp_path, arch):
    """Sampling, greedy baseline, D and the MLE objective (with the arch's auxiliary losses) on each
    architecture's step(); s2vt is the toy default the tests above use."""
    train(toy_config(tmp_path / "data", arch=arch, max_steps=6, val_every_steps=3), tmp_path / "mle", progress=False)
    cfg, ft = finetune_configs(tmp_path / "mle", "adversarial", max_steps=2)
    result = finetune(cfg, ft, tmp_path / "run", progress=False)
    assert result.stop_reason == "budget"
    row = log_rows(tmp_path / "run")[-1]
    assert math.isfinite(row["train_loss"]) and 0.0 < row["reward"] < 1.0 and row["val"] is not None
