"""Training: config edge, determinism, resume, clipping, divergence, early stopping, gradient probe."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from fixtures_datasets import TOY_FRAMES, log_rows, toy_config, weights, write_toy_dataset

from vidcap_core.errors import ConfigError
from vidcap_core.models import ModelConfig, build_model
from vidcap_core.training import (
    ProbeBatch,
    frame_gradient_norms,
    resolve_config,
    train,
)
from vidcap_core.features.clips import epoch_rng, frame_order_index, gather_frames
from vidcap_core.training.batches import encode_captions, epoch_caption_order, split_for_rank

@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ----------------------------------------------------------------------------- config edge


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('dataset = "csv"\nroot = "r"\nfeatures = "f"\narch = "meanpool"\nepochs = 7\ngrad_clip = 0\n')
    cfg = resolve_config(path, {"epochs": 3, "cell": "rnn", "arch": None})
    assert (cfg.arch, cfg.cell, cfg.epochs, cfg.grad_clip) == ("meanpool", "rnn", 3, None)  # 0 = clipping off

    json_path = tmp_path / "run.json"
    json_path.write_text(json.dumps({"root": "r", "features": "f", "arch": "lstm"}))
    with pytest.raises(ConfigError, match="meanpool, s2vt, attention"):
        resolve_config(json_path, {})
    json_path.write_text(json.dumps({"root": "r", "features": "f", "learning_rate": 1}))
    with pytest.raises(ConfigError, match="learning_rate"):
        resolve_config(json_path, {})
    with pytest.raises(ConfigError, match="--features is required"):
        resolve_config(None, {"root": "r"})


# ----------------------------------------------------------------------------- data order


def test_epoch_pairs_and_frame_orders_are_seeded_permutations(tmp_path):
    from vidcap_core.data import load_dataset
    from vidcap_core.text import Vocabulary

    annotations, _ = write_toy_dataset(tmp_path)
    records = load_dataset("csv", tmp_path, annotations).split("train")
    vocab = Vocabulary.build([c for r in records for c in r.captions])
    captions = encode_captions(vocab, records, max_words=8)
    one = epoch_caption_order(captions, 1, seed=0, epoch=0)
    assert sorted(captions.clip_index[one].tolist()) == list(range(len(records)))  # one caption per clip
    assert np.array_equal(one, epoch_caption_order(captions, 1, seed=0, epoch=0))
    assert not np.array_equal(one, epoch_caption_order(captions, 1, seed=0, epoch=1))
    assert sorted(epoch_caption_order(captions, None, 0, 0).tolist()) == list(range(2 * len(records)))

    mask = torch.tensor([[True] * 5 + [False], [True] * 6])  # (2, 6)
    shuffled = frame_order_index(mask, "shuffled", epoch_rng(0, 0, 2))
    assert sorted(shuffled[0, :5].tolist()) == list(range(5)) and shuffled[0, 5] == 5  # padding stays last
    assert torch.equal(shuffled, frame_order_index(mask, "shuffled", epoch_rng(0, 0, 2)))
    assert frame_order_index(mask, "reversed", None)[0].tolist() == [4, 3, 2, 1, 0, 5]
    feats = torch.arange(12.0).view(2, 6, 1)  # (B, T, F)
    assert gather_frames(feats, frame_order_index(mask, "reversed", None))[1, :, 0].tolist() == [11, 10, 9, 8, 7, 6]
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
    assert first.epochs_completed == 2 and first.history[-1]["epoch"] == 2
    for name in ("config.json", "vocab.json", "best.pt", "last.pt", "log.jsonl", "gradients.jsonl"):
        assert (tmp_path / "a" / name).is_file(), name
    assert not list((tmp_path / "a").glob("*.tmp"))
    cider = [row["val"]["CIDEr"] for row in first.history]
    assert first.best_epoch == int(np.argmax(cider)) + 1  # best.pt is chosen on val CIDEr
    assert json.loads((tmp_path / "a" / "config.json").read_text()) == cfg.to_dict()

    other = train(replace(cfg, seed=4), tmp_path / "c", progress=False)
    assert other.history[0]["train_loss"] != first.history[0]["train_loss"]


def test_resume_ends_like_an_uninterrupted_run(tmp_path):
    cfg = toy_config(tmp_path / "data", epochs=3, arch="attention", cell="lstm", frame_order="shuffled",
                     scheduled_sampling=0.5, scheduled_sampling_ramp=2)
    train(cfg, tmp_path / "straight", progress=False)
    train(replace(cfg, epochs=2), tmp_path / "resumed", progress=False)  # stopped after epoch 2 ...
    assert len(log_rows(tmp_path / "resumed")) == 2
    result = train(cfg, tmp_path / "resumed", progress=False)  # ... and the same command run again
    assert log_rows(tmp_path / "straight") == log_rows(tmp_path / "resumed")
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "resumed" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert result.epochs_completed == 3
    again = train(cfg, tmp_path / "resumed", progress=False)  # a finished run: nothing more to do
    assert again.history == result.history
    with pytest.raises(ConfigError, match="lr"):
        train(replace(cfg, lr=1.0), tmp_path / "resumed", progress=False)


# ----------------------------------------------------------------------------- clipping, divergence, stopping


def test_gradient_clipping_is_logged_and_switchable(tmp_path):
    cfg = toy_config(tmp_path / "data", epochs=1, probe_every=0)
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
    cfg = toy_config(tmp_path / "data", arch="s2vt", cell="rnn", lr=1e30, grad_clip=None, epochs=4, dropout=0.0)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.diverged and not result.stopped_early
    last = result.history[-1]
    assert last["diverged"] is True and last["train_loss"] is None and last["val"] is None
    assert "train loss" in last["diverged_reason"] or "gradient norm" in last["diverged_reason"]
    assert result.epochs_completed == len(result.history) < 4
    assert train(cfg, tmp_path / "run", progress=False).diverged  # rerunning does not train on


def test_early_stopping_on_val_cider(tmp_path):
    # lr so small that nothing changes: the first validation is the best, the second is no gain
    cfg = toy_config(tmp_path / "data", epochs=10, lr=1e-9, patience=1, probe_every=0)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.stopped_early and result.epochs_completed == 2 and result.best_epoch == 1
    assert [row["best_epoch"] for row in result.history] == [1, 1]
    saved = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert saved["extra"]["epoch"] == 1


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


def test_probe_rows_are_written_at_init_and_every_epoch(tmp_path):
    cfg = toy_config(tmp_path / "data", arch="meanpool", cell="lstm", epochs=2, probe_every=1)
    train(cfg, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "gradients.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert all(len(r["grad_norms"]) == TOY_FRAMES for r in rows)
    np.testing.assert_allclose(rows[0]["grad_norms"], rows[0]["grad_norms"][0], rtol=1e-5)
