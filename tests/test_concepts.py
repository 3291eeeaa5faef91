"""The concepts arch ([1]): concept vocabularies and labels from captions, the concept head and where its
vector enters the decoder, the concept loss in training, `vidcap train --arch concepts` and captioning a
video with a concepts checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from fixtures_datasets import log_rows, toy_config, write_tiny_video
from typer.testing import CliRunner

from vidcap_core.checkpoint import load_checkpoint, save_checkpoint
from vidcap_core.cli.train import train_command
from vidcap_core.data.records import VideoRecord
from vidcap_core.errors import ConfigError, DatasetError
from vidcap_core.models import ModelConfig, build_model
from vidcap_core.synth.concepts import SYNTH_CONCEPTS, caption_concepts
from vidcap_core.text import Vocabulary
from vidcap_core.text.concepts import content_words, frequent_content_words, multi_hot
from vidcap_core.training import TrainConfig, caption_loss
from vidcap_core.training.auxiliary import concept_loss, derive_concepts, training_objective

F = 16
CONCEPTS = ["red", "circle", "moves", "left"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def records(captions_per_clip: list[list[str]]) -> list[VideoRecord]:
    return [VideoRecord(f"clip{i}", Path(f"clip{i}.mp4"), "train", captions) for i, captions in enumerate(captions_per_clip)]


def concept_model(mode: str = "init", cell: str = "lstm", feature_dim: int = F, **overrides):
    torch.manual_seed(0)
    options = dict(embed_size=12, hidden_size=16, num_layers=2, dropout=0.0, concepts=list(CONCEPTS),
                   concept_mode=mode, vocab_size=20)
    options.update(overrides)
    return build_model(ModelConfig(arch="concepts", cell=cell, feature_dim=feature_dim, **options))


# ----------------------------------------------------------------------------- vocabularies and labels


def test_content_words_drop_stop_words_punctuation_and_numbers():
    assert content_words("A man's playing the guitar on-stage; someone claps 3 times, and it is loud.") == {
        "man", "playing", "guitar", "on-stage", "claps", "times", "loud"}


def test_frequent_content_words_count_clips_not_captions_and_break_ties_alphabetically():
    clips = [
        ["a dog runs", "a dog runs fast", "the dog runs and runs"],  # dog, runs: 1 clip each however often
        ["a cat runs"],
        ["a cat sleeps", "the cat sleeps"],
        ["a bird sings"],
        ["a bird flies"],
    ]
    # clip counts: runs 2, cat 2, bird 2, dog 1, fast 1, sleeps 1, sings 1, flies 1
    assert frequent_content_words(clips, k=10) == ["bird", "cat", "runs"]  # at least 2 clips, ties by name
    assert frequent_content_words(clips, k=2) == ["bird", "cat"]
    assert frequent_content_words(clips, k=10, min_clips=1)[:3] == ["bird", "cat", "runs"]
    assert len(frequent_content_words(clips, k=10, min_clips=1)) == 8


def test_real_data_concepts_and_multi_hot_labels_by_hand():
    data = records([
        ["a man plays a guitar", "someone is playing guitar"],
        ["a woman plays the piano"],
        ["a man cooks", "a man is cooking pasta"],
        ["a woman sings"],
    ])
    concepts = derive_concepts("msvd", data, num_concepts=3)
    # clip counts: man 2, plays 2, woman 2, guitar 1, playing 1, piano 1, cooks 1, cooking 1, pasta 1, sings 1
    assert concepts.names == ["man", "plays", "woman"]
    expected = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    np.testing.assert_array_equal(concepts.labels.numpy(), expected)
    assert concepts.labels.dtype == torch.float32
    assert concepts.to_dict() == {"names": ["man", "plays", "woman"], "clips_per_concept": [2, 2, 2]}


def test_synth_concepts_map_synonyms_to_the_concept_they_name():
    assert caption_concepts("a little red ball slides to the left, then the big blue box turns green") == {
        "size:small", "colour:red", "shape:circle", "action:move_left",
        "size:large", "colour:blue", "shape:square", "action:change_colour", "colour:green"}
    data = records([
        ["a red circle moves left", "the red disk slides to the left"],
        ["a small green star spins", "a little green star rotates"],
    ])
    concepts = derive_concepts("synth", data, num_concepts=1)  # num_concepts is for real data only
    assert concepts.names == ["colour:red", "colour:green", "shape:circle", "shape:star", "size:small",
                              "action:move_left", "action:spin"]  # SYNTH_CONCEPTS order, named ones only
    assert all(name in SYNTH_CONCEPTS for name in concepts.names)
    expected = np.array([[1, 0, 1, 0, 0, 1, 0], [0, 1, 0, 1, 1, 0, 1]], dtype=np.float32)
    np.testing.assert_array_equal(concepts.labels.numpy(), expected)


def test_multi_hot_ignores_words_outside_the_vocabulary():
    np.testing.assert_array_equal(multi_hot([{"a", "zebra"}, set()], ["a", "b"]), [[1, 0], [0, 0]])


def test_captions_without_shared_content_words_are_a_dataset_error():
    with pytest.raises(DatasetError, match="no concept is named by the csv training captions"):
        derive_concepts("csv", records([["a dog"], ["the cat"]]), num_concepts=10)


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(("changes", "message"), [
    ({"arch": "concepts", "concepts": []}, "needs its concept vocabulary"),
    ({"arch": "s2vt", "concepts": ["red"]}, "only used by arch 'concepts'"),
    ({"arch": "concepts", "concepts": ["red", "red"]}, "distinct"),
    ({"arch": "concepts", "concepts": ["red"], "concept_mode": "late"}, "init, input"),
])
def test_concept_config_errors_name_the_fix(changes, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(cell="lstm", feature_dim=F, vocab_size=10, **changes).validate()


def test_train_config_validates_the_concept_options(tmp_path):
    with pytest.raises(ConfigError, match="concept_mode='late'.*init, input"):
        TrainConfig(root="r", features="f", concept_mode="late")
    with pytest.raises(ConfigError, match="concept_loss_weight=-1"):
        TrainConfig(root="r", features="f", concept_loss_weight=-1.0)
    with pytest.raises(ConfigError, match="num_concepts=0"):
        TrainConfig(root="r", features="f", num_concepts=0)


# ----------------------------------------------------------------------------- the model


def test_clip_scores_are_per_frame_scores_averaged_over_real_frames():
    model = concept_model().eval()
    feats, mask = torch.randn(2, 5, F), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    with torch.no_grad():
        scores = model.encode(feats, mask).concept_logits  # (B, C)
        frame_scores = model.concept_head(feats)  # (B, T, C)
    assert scores.shape == (2, len(CONCEPTS))
    np.testing.assert_allclose(scores[0].numpy(), frame_scores[0].mean(0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores[1].numpy(), frame_scores[1, :3].mean(0).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_init_mode_starts_the_encoder_from_the_concept_vector_and_input_mode_from_zero(cell):
    feats, mask = torch.randn(2, 5, F), torch.ones(2, 5, dtype=torch.bool)
    init, fed = concept_model("init", cell).eval(), concept_model("input", cell).eval()
    with torch.no_grad():
        for model in (init, fed):
            memory = model.encode(feats, mask)
            concepts = torch.sigmoid(memory.concept_logits)  # (B, C)
            frames = model.frame_proj(feats)  # (B, T, E)
            start = model.video_init(concepts) if model is init else None
            _, expected_state = model.video_rnn(frames, start)
            video_state, _ = memory.initial_state
            for got, want in zip(video_state if cell == "lstm" else (video_state,),
                                 expected_state if cell == "lstm" else (expected_state,)):
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
        assert fed.encode(feats, mask).video.shape == (2, 12)  # the projected vector, read at every step
        assert init.encode(feats, mask).video is None


@pytest.mark.parametrize("mode", ["init", "input"])
def test_the_captions_depend_on_the_concept_vector(mode):
    """Shifting the concept head's scores (and nothing else) changes every step's logits."""
    model = concept_model(mode).eval()
    feats, captions = torch.randn(2, 5, F), torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])
    with torch.no_grad():
        before, _ = model(feats, None, captions)
        model.concept_head[-1].bias.add_(3.0)
        after, _ = model(feats, None, captions)
    assert (before - after).abs().amax(-1).min() > 1e-4


def test_forward_returns_the_concept_scores_for_the_loss_and_no_auxiliary_output_elsewhere():
    feats, captions = torch.randn(2, 5, F), torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])
    logits, alphas, outputs = concept_model()(feats, None, captions, auxiliary=True)
    assert logits.shape == (2, 4, 20) and alphas is None and set(outputs) == {"concept_logits"}
    s2vt = build_model(ModelConfig(arch="s2vt", cell="gru", feature_dim=F, vocab_size=20))
    assert s2vt(feats, None, captions, auxiliary=True)[2] == {}


def test_concept_loss_is_multi_label_bce_and_learns_the_labels():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    by_hand = -(np.log(0.5) + np.log(1 - 1 / (1 + np.exp(-2.0))) + np.log(1 - 1 / (1 + np.exp(1.0)))
                + np.log(1 / (1 + np.exp(-0.5)))) / 4
    assert concept_loss(logits, labels).item() == pytest.approx(by_hand, rel=1e-6)

    model = concept_model().train()
    feats = torch.randn(4, 5, F)
    labels = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float32)
    optimizer = torch.optim.Adam(model.concept_head.parameters(), lr=1e-2)
    for _ in range(200):
        loss = concept_loss(model.encode(feats).concept_logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predicted = (model.encode(feats).concept_logits > 0).float()
    assert torch.equal(predicted, labels) and loss.item() < 0.1


def test_training_objective_adds_the_weighted_concept_loss_to_the_caption_nll(tmp_path):
    cfg = TrainConfig(root="r", features="f", arch="concepts", concept_loss_weight=0.7)
    model = concept_model().eval()
    feats, captions = torch.randn(3, 5, F), torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0], [1, 8, 9, 2]])
    mask = torch.ones(3, 5, dtype=torch.bool)
    concepts = derive_concepts("csv", records([["a red circle moves left"], ["a red circle"], ["moves left"]]), 4)
    clip_ids = torch.tensor([2, 0, 0])
    with torch.no_grad():
        objective = training_objective(model, feats, mask, captions, clip_ids, cfg, concepts)
        nll_sum, n_tokens = caption_loss(model, feats, mask, captions)
        expected = 0.7 * concept_loss(model.encode(feats, mask).concept_logits, concepts.labels[clip_ids])
    assert torch.equal(objective.nll_sum, nll_sum) and objective.n_tokens == n_tokens
    assert objective.auxiliary.item() == pytest.approx(expected.item(), rel=1e-6)
    off = TrainConfig(root="r", features="f", arch="concepts", concept_loss_weight=0.0)
    assert training_objective(model, feats, mask, captions, clip_ids, off, concepts).auxiliary is None


# ----------------------------------------------------------------------------- end to end


def cli_app() -> typer.Typer:
    app = typer.Typer()  # one command: invoked without its name
    app.command("train")(train_command)
    return app


@pytest.mark.parametrize("mode", ["init", "input"])
def test_vidcap_train_arch_concepts_end_to_end(tmp_path, mode):
    cfg = toy_config(tmp_path / "data", probe_every=0)  # writes the toy dataset; the CLI gets the same options
    run = tmp_path / "run"
    result = CliRunner().invoke(cli_app(), [
        "--dataset", "csv", "--root", cfg.root, "--annotations", cfg.annotations, "--features",
        cfg.features, "--arch", "concepts", "--concept-mode", mode, "--concept-loss-weight", "0.5", "--cell", "lstm",
        "--embed-size", "16", "--hidden-size", "24", "--max-steps", "6", "--val-every-steps", "3",
        "--warmup-steps", "2", "--batch-size", "8", "--lr", "0.005", "--min-count", "1", "--seed", "3",
        "--probe-every", "0", "--torch-threads", "1", "--out", str(run), "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = log_rows(run)
    assert [row["step"] for row in rows] == [3, 6] and not any(row["diverged"] for row in rows)
    assert all(np.isfinite(row["train_loss"]) for row in rows)
    assert summary["steps_done"] == 6 and not summary["diverged"]
    loaded = load_checkpoint(Path(summary["best_checkpoint"]))
    # the toy captions: "a {colour} {shape} moves {motion}" / "the {shape} is {colour} and goes {motion}", 24 clips
    assert (loaded.config.arch, loaded.config.concept_mode) == ("concepts", mode)
    assert sorted(loaded.config.concepts) == sorted(["red", "green", "blue", "circle", "square", "triangle",
                                                     "moves", "goes", "left", "right"])
    saved = json.loads((run / "config.json").read_text())
    assert (saved["arch"], saved["concept_mode"], saved["concept_loss_weight"]) == ("concepts", mode, 0.5)


def test_concept_weight_zero_still_trains_the_head_through_the_caption_loss(tmp_path):
    """With concept_loss_weight 0 the head is a learned clip summary: the caption loss alone moves it."""
    from vidcap_core.training import train

    cfg = toy_config(tmp_path / "data", arch="concepts", cell="gru", concept_loss_weight=0.0, probe_every=0)
    train(cfg, tmp_path / "run", progress=False)
    trained = load_checkpoint(tmp_path / "run" / "best.pt").model  # saved after 3 or 6 steps
    torch.manual_seed(cfg.seed)
    initial = build_model(trained.config)
    assert not torch.equal(trained.concept_head[0].weight, initial.concept_head[0].weight)


def test_a_concepts_checkpoint_captions_a_video(tmp_path):
    """The Captioner corridor (CLI, demo, benchmark) decodes a concepts checkpoint from raw video."""
    from vidcap_core.features.backbones import build_backbone
    from vidcap_core.pipeline import Captioner

    backbone = build_backbone("random")
    vocab = Vocabulary.build(["a red circle moves"], min_count=1)
    model = concept_model("init", feature_dim=backbone.feature_dim, vocab_size=len(vocab), max_tokens=6)
    preprocessing = {"backbone": "random", "weights": backbone.weights_id, "feature_dim": backbone.feature_dim,
                     "num_frames": 4, "frame_size": list(backbone.input_size), "grid": False}
    checkpoint = save_checkpoint(tmp_path / "concepts.pt", model, vocab.to_dict(), preprocessing)
    video = write_tiny_video(tmp_path / "clip.mp4", shade=80, frames=6)
    captioner = Captioner.from_checkpoint(checkpoint, device="cpu")
    result = captioner.caption(video, beam=2, n_best=2)
    assert result.attention is None  # no attention in this arch
    assert 1 <= len(result.hypotheses) <= 2 and (result.ended or len(result.hypotheses) == 1)  # cut ones left out
    assert result.caption == result.hypotheses[0][0]
    assert set(result.caption.split()) <= {"a", "red", "circle", "moves", "<unk>"}
    assert captioner.caption(video).caption == captioner.caption(video, beam=1).caption
