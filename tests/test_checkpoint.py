"""Checkpoints: round trip, atomic writes, weights-only loading, damaged files, feature compatibility."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from fixtures_models import ARCH_VARIANTS, arch_options

from vidcap_core.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from vidcap_core.errors import CheckpointError, FeatureError
from vidcap_core.models import (
    CELL_NAMES,
    CaptionModel,
    ModelConfig,
    build_model,
)

F, V = 16, 20
VOCAB = {"version": 1, "min_count": 1, "itos": ["<pad>", "<bos>", "<eos>", "<unk>"] + [f"w{i}" for i in range(V - 4)]}
PREPROCESSING = {"backbone": "synth-cnn", "frames": 6, "frame_size": 112, "feature_dim": F, "grid": False}


def tiny_model(arch: str = "attention", cell: str = "lstm", **overrides) -> CaptionModel:
    torch.manual_seed(0)
    options = dict(embed_size=12, hidden_size=16, attention_size=8, num_layers=2, **arch_options(arch))
    options.update(overrides)
    return build_model(ModelConfig(cell=cell, feature_dim=F, vocab_size=V, **options))


def tiny_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    captions = torch.randint(4, V, (2, 5), generator=g)
    captions[:, 0] = 1
    return torch.randn(2, 6, F, generator=g), mask, captions


def outputs(model: CaptionModel) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(*tiny_batch())[0]


@pytest.mark.parametrize("arch", ARCH_VARIANTS)
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_round_trip_gives_identical_outputs(tmp_path, arch, cell):
    model = tiny_model(arch, cell)
    path = save_checkpoint(tmp_path / "model.pt", model, VOCAB, PREPROCESSING, extra={"epoch": 3, "cider": 0.5})
    loaded = load_checkpoint(path)
    assert not loaded.model.training
    assert loaded.config == model.config
    assert (loaded.vocab, loaded.preprocessing, loaded.extra) == (VOCAB, PREPROCESSING, {"epoch": 3, "cider": 0.5})
    assert torch.equal(outputs(loaded.model), outputs(model))


@pytest.mark.parametrize("arch", ARCH_VARIANTS)
def test_round_trip_with_frame_deltas(tmp_path, arch):
    model = tiny_model(arch, "gru", frame_deltas=10.0)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "model.pt", model, VOCAB, PREPROCESSING))
    assert loaded.config.frame_deltas == 10.0 and loaded.config == model.config
    assert torch.equal(outputs(loaded.model), outputs(model))


def test_checkpoint_written_before_frame_deltas_loads_without_them(tmp_path):
    model = tiny_model("attention", "lstm")
    path = save_checkpoint(tmp_path / "m.pt", model, VOCAB, PREPROCESSING)
    old = _rewrite(path, tmp_path, "old.pt", lambda p: p["config"].pop("frame_deltas"))
    assert "frame_deltas" not in torch.load(old, weights_only=True)["config"]
    loaded = load_checkpoint(old)
    assert loaded.config.frame_deltas == 0.0
    assert torch.equal(outputs(loaded.model), outputs(model))


def test_payload_is_plain_data(tmp_path):
    model = tiny_model("s2vt", "gru")
    path = save_checkpoint(tmp_path / "m.pt", model, VOCAB, PREPROCESSING)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "vidcap-checkpoint" and payload["version"] == 1
    assert payload["config"] == model.config.to_dict() and payload["extra"] is None
    assert set(payload["state_dict"]) == set(model.state_dict())


def test_optimizer_state_travels_in_extra(tmp_path):
    model = tiny_model("meanpool", "rnn")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = outputs(model.train()).sum()
    model.train()
    model(*tiny_batch())[0].sum().backward()
    optimizer.step()
    assert torch.isfinite(loss)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model, VOCAB, PREPROCESSING, {"optimizer": optimizer.state_dict()}))
    fresh = torch.optim.Adam(loaded.model.parameters(), lr=1e-3)
    fresh.load_state_dict(loaded.extra["optimizer"])
    assert fresh.state_dict()["state"][0]["step"] == 1


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    model = tiny_model()
    path = tmp_path / "runs" / "best.pt"
    save_checkpoint(path, model, VOCAB, PREPROCESSING)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"preprocessing\['root'\] is a PosixPath"):
        save_checkpoint(path, model, VOCAB, {**PREPROCESSING, "root": tmp_path})
    with pytest.raises(CheckpointError, match="feature_dim=2048 but the model takes 16-d"):
        save_checkpoint(path, model, VOCAB, {**PREPROCESSING, "feature_dim": 2048})
    assert path.read_bytes() == before
    save_checkpoint(path, tiny_model("meanpool", "gru"), VOCAB, PREPROCESSING)  # overwrite in place
    assert load_checkpoint(path).config.arch == "meanpool"
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.pt"]


class _RunsCodeWhenUnpickled:
    """Unpickling this calls os.mkdir(marker): proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_malicious_pickle_is_refused(tmp_path):
    live = tmp_path / "live-marker"
    pickle.loads(pickle.dumps(_RunsCodeWhenUnpickled(str(live))))
    assert live.exists(), "the payload must really run code when unpickled, or this test proves nothing"

    marker = tmp_path / "marker"
    evil = {
        "format": "vidcap-checkpoint",
        "version": 1,
        "config": tiny_model().config.to_dict(),
        "state_dict": tiny_model().state_dict(),
        "vocab": _RunsCodeWhenUnpickled(str(marker)),
        "preprocessing": PREPROCESSING,
        "extra": None,
    }
    zipped = tmp_path / "evil.pt"
    torch.save(evil, zipped)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(evil, protocol=2))  # torch.load's own protocol
    with pytest.raises(CheckpointError, match=rf"refusing to load {zipped}.*could run code"):
        load_checkpoint(zipped)
    with pytest.raises(CheckpointError, match=str(raw)):
        load_checkpoint(raw)
    assert not marker.exists()


def test_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"nowhere\.pt does not exist"):
        load_checkpoint(tmp_path / "nowhere.pt")
    path = save_checkpoint(tmp_path / "m.pt", tiny_model(), VOCAB, PREPROCESSING)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pt.*truncated or not a torch checkpoint"):
        load_checkpoint(truncated)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt"):
        load_checkpoint(empty)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": tiny_model().state_dict(), "epoch": 1}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.pt is not a vidcap checkpoint \(format=None"):
        load_checkpoint(foreign)
    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(CheckpointError, match="format='Tensor'"):
        load_checkpoint(tensor_only)


def _rewrite(path, tmp_path, name, edit) -> os.PathLike:
    payload = torch.load(path, weights_only=True)
    edit(payload)
    out = tmp_path / name
    torch.save(payload, out)
    return out


def test_mismatched_weights_and_configs_are_named(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model(), VOCAB, PREPROCESSING)
    dropped = _rewrite(path, tmp_path, "dropped.pt", lambda p: p["state_dict"].pop("classifier.bias"))
    with pytest.raises(CheckpointError, match=r"dropped\.pt do not match.*missing classifier\.bias"):
        load_checkpoint(dropped)
    extra_key = _rewrite(path, tmp_path, "extra.pt", lambda p: p["state_dict"].update(bogus=torch.zeros(1)))
    with pytest.raises(CheckpointError, match="unexpected bogus"):
        load_checkpoint(extra_key)
    wrong_vocab = _rewrite(path, tmp_path, "vocab.pt", lambda p: p["config"].update(vocab_size=25))
    with pytest.raises(CheckpointError, match=r"embed\.weight has shape \(20, 12\), the config needs \(25, 12\)"):
        load_checkpoint(wrong_vocab)
    bad_config = _rewrite(path, tmp_path, "config.pt", lambda p: p["config"].update(cell="lstmm"))
    with pytest.raises(CheckpointError, match=r"config\.pt has an invalid model config.*lstm, gru, rnn"):
        load_checkpoint(bad_config)
    future = _rewrite(path, tmp_path, "future.pt", lambda p: p.update(version=2))
    with pytest.raises(CheckpointError, match="version 2"):
        load_checkpoint(future)


def test_check_compatible():
    check_compatible(PREPROCESSING, {"backbone": "synth-cnn", "feature_dim": F, "grid": True})
    check_compatible(PREPROCESSING, {"backbone": "synth-cnn"})  # unknown facts are not compared
    with pytest.raises(FeatureError) as info:
        check_compatible(
            {**PREPROCESSING, "feature_dim": 512},
            {"backbone": "resnet152", "feature_dim": 2048, "grid": False},
            checkpoint="runs/best.pt",
            features="feats/msrvtt",
        )
    assert str(info.value) == (
        "checkpoint runs/best.pt expects 512-d synth-cnn features; features in feats/msrvtt are "
        "2048-d resnet152: re-extract with --backbone synth-cnn"
    )
    with pytest.raises(FeatureError, match="region-grid features.*--grid"):
        check_compatible({**PREPROCESSING, "grid": True}, {"backbone": "synth-cnn", "feature_dim": F, "grid": False})
