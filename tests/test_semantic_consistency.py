"""Semantic consistency ([4] aLSTMs): the joint clip/sentence embedding, the ranking loss worked out by
hand, its degenerate batches (zero-gradient-safe), W = 0 = the old loss, and `vidcap train
--semantic-consistency` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from fixtures_datasets import log_rows, toy_config
from typer.testing import CliRunner

from vidcap_core.checkpoint import load_checkpoint
from vidcap_core.cli.train import train_command
from vidcap_core.errors import ConfigError
from vidcap_core.models import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    ModelConfig,
    build_model,
    caption_word_mask,
    consistency_ranking_loss,
    negative_pairs,
)
from vidcap_core.training import TrainConfig, caption_loss
from vidcap_core.training.auxiliary import training_objective

F, V = 16, 20


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def attention_model(consistency_size: int = 8, cell: str = "gru"):
    torch.manual_seed(0)
    return build_model(ModelConfig(arch="attention", cell=cell, feature_dim=F, vocab_size=V, embed_size=12,
                                   hidden_size=16, attention_size=8, dropout=0.0, consistency_size=consistency_size))


def batch(captions: list[list[int]], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """feats (B, T, F), mask (B, T) with clip 0 two frames short, captions (B, L) padded."""
    g = torch.Generator().manual_seed(seed)
    B, width = len(captions), max(len(c) for c in captions)
    tokens = torch.full((B, width), PAD_ID, dtype=torch.long)
    for i, caption in enumerate(captions):
        tokens[i, : len(caption)] = torch.tensor(caption)
    mask = torch.ones(B, 5, dtype=torch.bool)
    mask[0, 3:] = False
    return torch.randn(B, 5, F, generator=g), mask, tokens


def consistency_loss_and_grads(model, feats, mask, captions, clip_ids) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    _, _, outputs = model(feats, mask, captions, auxiliary=True)
    loss = consistency_ranking_loss(outputs["clip_embedding"], outputs["sentence_embedding"],
                                    negative_pairs(clip_ids, captions))
    loss.backward()
    return loss, {name: p.grad for name, p in model.named_parameters()}


# ----------------------------------------------------------------------------- the loss by hand


def test_ranking_loss_worked_out_by_hand():
    clips = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    sentences = torch.tensor([[0.8, 0.6], [0.6, 0.8]])
    # scores s(i, j) = clip i . sentence j: [[0.8, 0.6], [0.6, 0.8]]; positives 0.8, 0.8
    # clip->sentence: [0.2 - 0.8 + 0.6]+ = 0 (both rows); sentence->clip: 0 (both columns) => 0
    negatives = torch.tensor([[False, True], [True, False]])
    assert consistency_ranking_loss(clips, sentences, negatives).item() == pytest.approx(0.0)
    swapped = sentences.flip(0)  # now each clip prefers the other's sentence: s = [[0.6, 0.8], [0.8, 0.6]]
    # each of the 2 rows and 2 columns: [0.2 - 0.6 + 0.8]+ = 0.4 -> (4 * 0.4) / 4 anchors
    assert consistency_ranking_loss(clips, swapped, negatives).item() == pytest.approx(0.4)
    assert consistency_ranking_loss(clips, swapped, negatives, margin=0.0).item() == pytest.approx(0.2)


def test_negatives_exclude_the_same_clip_identical_captions_and_captions_without_words():
    captions = torch.tensor([
        [BOS_ID, 5, 6, EOS_ID],
        [BOS_ID, 5, 6, EOS_ID],  # identical to caption 0 (another clip)
        [BOS_ID, 7, EOS_ID, PAD_ID],  # clip 0 again, another caption
        [BOS_ID, EOS_ID, PAD_ID, PAD_ID],  # no words
        [BOS_ID, 8, EOS_ID, PAD_ID],
    ])
    clip_ids = torch.tensor([0, 1, 0, 2, 3])
    expected = torch.tensor([
        [False, False, False, False, True],
        [False, False, True, False, True],
        [False, True, False, False, True],
        [False, False, False, False, False],
        [True, True, True, False, False],
    ])
    assert torch.equal(negative_pairs(clip_ids, captions), expected)
    assert caption_word_mask(captions)[3].sum() == 0 and caption_word_mask(captions)[0].tolist() == [False, True, True, False]


# ----------------------------------------------------------------------------- zero-gradient-safe


@pytest.mark.parametrize(("case", "captions", "clip_ids"), [
    ("batch of 1", [[BOS_ID, 5, 6, EOS_ID]], [0]),
    ("identical captions", [[BOS_ID, 5, 6, EOS_ID]] * 3, [0, 1, 2]),
    ("one clip, several captions", [[BOS_ID, 5, EOS_ID], [BOS_ID, 6, 7, EOS_ID]], [4, 4]),
    ("all padding", [[PAD_ID] * 4, [PAD_ID] * 4], [0, 1]),
    ("no words", [[BOS_ID, EOS_ID], [BOS_ID, EOS_ID]], [0, 1]),
])
def test_degenerate_batches_give_zero_loss_and_zero_finite_gradients(case, captions, clip_ids):
    model = attention_model()
    feats, mask, tokens = batch(captions)
    loss, grads = consistency_loss_and_grads(model, feats, mask, tokens, torch.tensor(clip_ids))
    assert loss.item() == 0.0, case
    joint = {name: g for name, g in grads.items() if name.startswith("joint.")}
    assert joint and all(g is not None and torch.all(g == 0) for g in joint.values()), case
    assert all(g is None or torch.isfinite(g).all() for g in grads.values()), case


def test_a_real_batch_gives_finite_gradients_to_the_joint_embedding_encoder_and_words():
    model = attention_model()
    feats, mask, tokens = batch([[BOS_ID, 5, 6, EOS_ID], [BOS_ID, 7, 8, 9, EOS_ID], [BOS_ID, 10, EOS_ID]])
    loss, grads = consistency_loss_and_grads(model, feats, mask, tokens, torch.tensor([0, 1, 2]))
    assert loss.item() > 0
    for name in ("joint.clip_proj.weight", "joint.sentence_proj.weight", "embed.weight", "encoder.rnn.weight_ih_l0",
                 "frame_proj.weight"):
        assert torch.isfinite(grads[name]).all() and grads[name].abs().sum() > 0, name
    assert grads["classifier.weight"] is None  # the decoder's output layer is the caption loss's alone


def test_the_ranking_loss_aligns_clips_and_sentences():
    model = attention_model()
    feats, mask, tokens = batch([[BOS_ID, 5, EOS_ID], [BOS_ID, 6, EOS_ID], [BOS_ID, 7, EOS_ID], [BOS_ID, 8, EOS_ID]])
    clip_ids = torch.arange(4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        _, _, outputs = model(feats, mask, tokens, auxiliary=True)
        loss = consistency_ranking_loss(outputs["clip_embedding"], outputs["sentence_embedding"],
                                        negative_pairs(clip_ids, tokens))
        loss.backward()
        optimizer.step()
    scores = outputs["clip_embedding"] @ outputs["sentence_embedding"].t()  # (B, B)
    assert torch.equal(scores.argmax(1), clip_ids) and loss.item() < 0.05


# ----------------------------------------------------------------------------- W = 0 is the old loss


def test_weight_zero_builds_no_head_and_the_objective_is_exactly_the_caption_loss():
    off = TrainConfig(root="r", features="f", arch="attention", semantic_consistency=0.0)
    on = TrainConfig(root="r", features="f", arch="attention", semantic_consistency=0.5, embed_size=12)
    from vidcap_core.training.auxiliary import model_fields

    assert model_fields(off, None)["consistency_size"] == 0 and model_fields(on, None)["consistency_size"] == 12
    plain = attention_model(consistency_size=0).eval()
    assert plain.joint is None and not any(name.startswith("joint.") for name, _ in plain.named_parameters())
    feats, mask, tokens = batch([[BOS_ID, 5, 6, EOS_ID], [BOS_ID, 7, EOS_ID]])
    clip_ids = torch.tensor([0, 1])
    objective = training_objective(plain, feats, mask, tokens, clip_ids, off, None)
    nll_sum, n_tokens = caption_loss(plain, feats, mask, tokens)
    assert objective.auxiliary is None and torch.equal(objective.nll_sum, nll_sum) and objective.n_tokens == n_tokens

    headed = attention_model(consistency_size=8).eval()  # a head, but W = 0: nothing added, no gradient
    objective = training_objective(headed, feats, mask, tokens, clip_ids, off, None)
    assert objective.auxiliary is None
    objective.nll_sum.backward()
    assert all(p.grad is None for name, p in headed.named_parameters() if name.startswith("joint."))


def test_weight_w_adds_w_times_the_ranking_loss():
    model = attention_model().eval()
    cfg = TrainConfig(root="r", features="f", arch="attention", semantic_consistency=0.5)
    feats, mask, tokens = batch([[BOS_ID, 5, 6, EOS_ID], [BOS_ID, 7, EOS_ID], [BOS_ID, 9, 9, EOS_ID]])
    clip_ids = torch.tensor([0, 1, 2])
    with torch.no_grad():
        objective = training_objective(model, feats, mask, tokens, clip_ids, cfg, None)
        _, _, outputs = model(feats, mask, tokens, auxiliary=True)
        ranking = consistency_ranking_loss(outputs["clip_embedding"], outputs["sentence_embedding"],
                                           negative_pairs(clip_ids, tokens))
    assert objective.auxiliary.item() == pytest.approx(0.5 * ranking.item(), rel=1e-6)


@pytest.mark.parametrize(("changes", "message"), [
    ({"arch": "s2vt", "semantic_consistency": 0.5}, "needs arch 'attention'"),
    ({"arch": "attention", "semantic_consistency": -0.1}, "must be >= 0"),
])
def test_bad_semantic_consistency_options_are_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(root="r", features="f", **changes)


def test_consistency_head_on_another_arch_is_a_config_error():
    with pytest.raises(ConfigError, match="belongs to arch 'attention'"):
        ModelConfig(arch="meanpool", cell="gru", feature_dim=F, vocab_size=V, consistency_size=8).validate()


# ----------------------------------------------------------------------------- end to end


def test_vidcap_train_semantic_consistency_end_to_end(tmp_path):
    cfg = toy_config(tmp_path / "data")
    app = typer.Typer()  # one command: invoked without its name
    app.command("train")(train_command)
    run = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "--dataset", "csv", "--root", cfg.root, "--annotations", cfg.annotations, "--features", cfg.features,
        "--arch", "attention", "--semantic-consistency", "0.5", "--cell", "lstm", "--embed-size", "16",
        "--hidden-size", "24", "--attention-size", "8", "--max-steps", "6", "--val-every-steps", "3",
        "--warmup-steps", "2", "--batch-size", "8", "--lr", "0.005", "--min-count", "1", "--seed", "3",
        "--probe-every", "0", "--torch-threads", "1", "--out", str(run), "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps_done"] == 6 and not summary["diverged"]
    rows = log_rows(run)
    assert all(np.isfinite(row["train_loss"]) and np.isfinite(row["grad_norm_max"]) for row in rows)
    loaded = load_checkpoint(Path(summary["best_checkpoint"]))
    assert loaded.config.consistency_size == 16 and loaded.model.joint is not None
    assert json.loads((run / "config.json").read_text())["semantic_consistency"] == 0.5
