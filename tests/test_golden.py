"""Golden numbers, one test per numerics stage (vidcap_core/numerics.py): what each stage computes on
fixed, seeded inputs, compared with the values recorded in tests/golden/ at the stage's version.

A failure means a change moved the numbers a cached benchmark result was computed with. Its message
names the stage: fix the change, or bump that stage's version (which changes every cache key that
depends on it) and record the numbers anew (tests/golden_numbers.py says how).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures_datasets import toy_config
from fixtures_models import ARCH_VARIANTS, arch_options
from golden_numbers import check_golden, rounded

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SYNTH_SEED = 11  # a seed no other test and no benchmark preset uses
SYNTH_CLIPS = 6
FRAMES = 8
CELLS = ("lstm", "gru", "rnn")
ARCHS = ARCH_VARIANTS  # every architecture (and concepts:input): a new one fails until its numbers are recorded
VOCAB = 30


@pytest.fixture(scope="module")
def golden_synth(tmp_path_factory) -> Path:
    """Six clips of the standard preset (up to three objects, 32 frames, 64 px) made with seed 11."""
    from vidcap_core.synth import generate_synthclips

    root = tmp_path_factory.mktemp("golden") / "standard"
    generate_synthclips("standard", root, seed=SYNTH_SEED, num_clips=SYNTH_CLIPS, workers=1)
    return root


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- synth, video, data, text


def test_synth_clips_and_their_truth(golden_synth):
    truth = json.loads((golden_synth / "ground_truth.json").read_text(encoding="utf-8"))
    info = json.loads((golden_synth / "videodatainfo.json").read_text(encoding="utf-8"))
    check_golden("synth", "standard_seed11", {
        "videos": {p.name: sha256(p.read_bytes()) for p in sorted((golden_synth / "videos").glob("*.mp4"))},
        "ground_truth": sha256(json.dumps(truth, sort_keys=True).encode()),
        "captions": [s["caption"] for s in info["sentences"][:8]],
        "splits": {v["video_id"]: v["split"] for v in info["videos"]},
    })


def test_decoded_frames(golden_synth):
    from vidcap_core.video import probe_video, read_frames, sample_frame_indices

    path = golden_synth / "videos" / "video0.mp4"
    info = probe_video(path)
    frames = read_frames(path, num_frames=FRAMES, size=48).astype(np.float64)  # (T, 48, 48, 3) resized
    native = read_frames(path, num_frames=FRAMES, size=(info.height, info.width))  # (T, H, W, 3) as decoded
    check_golden("video", "standard_seed11_video0", {
        "frames": info.frames, "size": [info.height, info.width], "fps": info.fps,
        "indices": sample_frame_indices(info.frames, FRAMES).tolist(),
        "native_sha256": sha256(np.ascontiguousarray(native).tobytes()),
        "resized_mean_per_frame": rounded(frames.mean(axis=(1, 2, 3))),
        "resized_mean_per_channel": rounded(frames.mean(axis=(0, 1, 2))),
    })


def test_dataset_records_and_vocabulary(golden_synth):
    from vidcap_core.data import load_dataset
    from vidcap_core.text import Vocabulary, tokenize

    dataset = load_dataset("synth", golden_synth)
    captions = [c for r in dataset.records if r.split == "train" for c in r.captions]
    trimmed = load_dataset("synth", golden_synth, max_videos=2, seed=5)
    check_golden("data", "standard_seed11", {
        "records": [[r.video_id, r.split, len(r.captions)] for r in dataset.records],
        "trimmed": [r.video_id for r in trimmed.records],
    })
    vocab = Vocabulary.build(captions, min_count=2)
    check_golden("text", "standard_seed11", {
        "tokens": tokenize("The small RED disk, then -- it spins! (twice)"),
        "vocabulary": list(vocab.to_dict()["tokens"]),
        "encoded": vocab.encode(captions[0], max_words=6),
    })


# ----------------------------------------------------------------------------- features


@pytest.mark.parametrize("backbone", ["synth-cnn", "synth-slots", "oracle", "random"])
def test_features_of_two_clips(golden_synth, tmp_path, backbone):
    from vidcap_core.data import load_dataset
    from vidcap_core.features.extract import extract_features
    from vidcap_core.features.store import FeatureStore

    records = [r for r in load_dataset("synth", golden_synth).records if r.video_id in ("video0", "video1")]
    extract_features(records, backbone, tmp_path, num_frames=FRAMES, grid=True, progress=False, device="cpu")
    store = FeatureStore(tmp_path)
    values = {}
    for record in records:
        feats = store.load(record.video_id).astype(np.float64)  # (T, F)
        grid = np.load(tmp_path / f"{record.video_id}.grid.npy").astype(np.float64)  # (T, R, G)
        values[record.video_id] = {
            "shape": list(feats.shape), "grid_shape": list(grid.shape),
            "sum": rounded(feats.sum()), "abs_sum": rounded(np.abs(feats).sum()),
            "frame_sums": rounded(feats.sum(axis=1)), "grid_field_sums": rounded(grid.sum(axis=(0, 1))),
        }
    stage = "backbone.synth-slots" if backbone == "synth-slots" else f"backbone.{backbone}"
    check_golden(stage, "standard_seed11", values)
    check_golden("features", f"standard_seed11_{backbone}_meta", {
        k: store.meta[k] for k in ("feature_dim", "grid_dim", "num_frames", "frame_size", "dtype")})


# ----------------------------------------------------------------------------- training


def seeded_batch(feature_dim: int = 12, regions: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(feats (B, T, [R,] F), prefix mask (B, T), captions (B, L) BOS ... EOS PAD) from a fixed generator."""
    g = torch.Generator().manual_seed(7)
    B, T, L = 4, 6, 7
    shape = (B, T, regions, feature_dim) if regions else (B, T, feature_dim)
    feats = torch.randn(*shape, generator=g)
    mask = torch.arange(T).unsqueeze(0) < torch.tensor([[6], [5], [6], [3]])  # (B, T)
    captions = torch.randint(4, VOCAB, (B, L), generator=g)
    captions[:, 0] = 1  # BOS
    captions[0, 5], captions[0, 6] = 2, 0  # EOS then PAD
    captions[1, 6] = 2
    return feats, mask, captions


def model_config(variant: str, cell: str, feature_dim: int = 12):
    from vidcap_core.models import ModelConfig

    return ModelConfig(cell=cell, feature_dim=feature_dim, vocab_size=VOCAB, embed_size=8, hidden_size=16,
                       attention_size=8, dropout=0.1, max_tokens=8, frame_deltas=10.0, **arch_options(variant))


def adam_steps(variant: str, cell: str, regions: int = 0, steps: int = 3) -> dict:
    """Seeded weights, three Adam steps on one batch: the loss and gradient norm of each step."""
    from vidcap_core.models import build_model
    from vidcap_core.models.loss import masked_nll

    torch.manual_seed(0)
    model = build_model(model_config(variant, cell))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    feats, mask, captions = seeded_batch(regions=regions)
    losses, norms = [], []
    for _ in range(steps):
        torch.manual_seed(1)  # dropout's mask
        logits, _ = model(feats, mask, captions)
        loss = masked_nll(logits[:, :-1], captions[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)))
        losses.append(float(loss))
        optimizer.step()
    return {"losses": rounded(losses), "grad_norms": rounded(norms),
            "parameter_count": sum(p.numel() for p in model.parameters())}


@pytest.mark.parametrize("variant", ARCHS)
def test_training_steps_per_architecture_and_cell(variant):
    check_golden("training", f"steps_{variant.replace(':', '_')}", {cell: adam_steps(variant, cell) for cell in CELLS})


def test_training_steps_over_regions():
    check_golden("training", "steps_attention_regions", {cell: adam_steps("attention", cell, regions=3) for cell in CELLS})


@pytest.mark.parametrize("arch", ["s2vt", "attention"])
def test_training_loop(tmp_path, arch):
    """The whole MLE loop on the toy dataset: batching, warmup, clipping, validation, selection."""
    from vidcap_core.training import train

    result = train(toy_config(tmp_path / "data", arch=arch, cell="lstm", max_steps=6, val_every_steps=3),
                   tmp_path / "run", progress=False)
    rows = [{"step": r["step"], "train_loss": r["train_loss"], "grad_norm_mean": r["grad_norm_mean"],
             "val_CIDEr": r["val"]["CIDEr"], "distinct": r["val_distinct_captions"]} for r in result.history]
    check_golden("training", f"loop_{arch}", {"rows": rounded(rows), "best_step": result.best_step})


def test_finetune_scst_steps(tmp_path):
    from vidcap_core.training import train
    from vidcap_core.training.finetune_config import resolve_finetune
    from vidcap_core.training.finetune import finetune

    train(toy_config(tmp_path / "data", max_steps=6, val_every_steps=3), tmp_path / "mle", progress=False)
    cfg, ft = resolve_finetune(tmp_path / "mle", "scst", None, {"max_steps": 4, "val_every_steps": 2}, {"reward": "cider"})
    result = finetune(cfg, ft, tmp_path / "scst", progress=False)
    timings = ("seconds", "train_seconds", "val_seconds")
    rows = [{k: v for k, v in row.items() if k not in timings} for row in result.history]
    check_golden("finetune", "scst_toy", rounded(rows))


# ----------------------------------------------------------------------------- decoding


def decoding_model():
    """A model trained 3 Adam steps from seed 0 (its logits are far from ties), in eval mode."""
    from vidcap_core.models import build_model
    from vidcap_core.models.loss import masked_nll

    torch.manual_seed(0)
    model = build_model(model_config("attention", "lstm"))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    feats, mask, captions = seeded_batch()
    for _ in range(3):
        logits, _ = model(feats, mask, captions)
        loss = masked_nll(logits[:, :-1], captions[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), feats, mask


def test_greedy_beam_and_sampled_captions():
    from vidcap_core.decoding import decode
    from vidcap_core.decoding.sampling import sample_captions

    model, feats, mask = decoding_model()
    with torch.no_grad():
        values = {}
        for name, options in {"greedy": dict(beam=1), "beam3": dict(beam=3, n_best=2),
                              "beam3_block3": dict(beam=3, no_repeat_ngram=3),
                              "beam3_lp": dict(beam=3, length_penalty=0.7)}.items():
            hypotheses = decode(model, feats, mask, **options)
            values[name] = [[{"tokens": h.tokens, "score": rounded(h.score)} for h in clip] for clip in hypotheses]
        sampled = sample_captions(model, feats, mask, generator=torch.Generator().manual_seed(3), temperature=0.5)
        values["sampled"] = {"tokens": sampled.tokens.tolist(), "logprob_sums": rounded(sampled.logprobs.sum(1))}
    check_golden("decoding", "attention_lstm", values)


# ----------------------------------------------------------------------------- evaluation


def test_metrics_of_fixed_captions(golden_synth):
    from vidcap_core.data import load_dataset
    from vidcap_core.evaluation import Scorer, caption_diversity, paired_bootstrap
    from vidcap_core.evaluation.validation import ValidationScorer
    from vidcap_core.synth import load_ground_truth, score_caption

    records = load_dataset("synth", golden_synth).records
    truths = load_ground_truth(golden_synth)
    references = {r.video_id: list(r.captions[1:]) for r in records}
    # each clip's own first reference, one clip's swapped for another's, one word dropped from a third
    predictions = {r.video_id: r.captions[0] for r in records}
    predictions["video1"] = records[2].captions[0]
    predictions["video3"] = " ".join(predictions["video3"].split()[:-1])
    with Scorer() as scorer:
        scores = scorer.score(predictions, references)
    semantic = {vid: score_caption(text, truths[vid]) for vid, text in predictions.items()}
    validation = ValidationScorer({v: references[v] for v in ("video0", "video1", "video2")},
                                  {v: truths[v] for v in ("video0", "video1", "video2")})
    per_video = [scores.per_video[v]["CIDEr"] for v in sorted(scores.per_video)]
    check_golden("evaluation", "standard_seed11", rounded({
        "corpus": scores.corpus,
        "per_video_CIDEr": per_video,
        "semantic": {vid: {k: (None if np.isnan(v) else v) for k, v in s.items()} for vid, s in semantic.items()},
        "validation": validation.score({v: predictions[v] for v in ("video0", "video1", "video2")}),
        "bootstrap": {k: getattr(paired_bootstrap(per_video, per_video[::-1], n_resamples=200, seed=1), k)
                      for k in ("mean_a", "mean_b", "ci_low", "ci_high", "p_value")},
    }))
    check_golden("evaluation", "standard_seed11_diversity", rounded(caption_diversity(predictions.values()).to_dict()))
