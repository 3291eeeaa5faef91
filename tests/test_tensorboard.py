"""TensorBoard event files of training runs (vidcap_core/training/board.py), read back with tensorboard's
own reader (EventAccumulator): the scalars and the attention heatmap of `vidcap train` and of a
fine-tune on real SynthClips clips, a resumed run's events without duplicates, and training without
the tensorboard package: the same numbers, no event file, one notice."""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fixtures_datasets import log_rows, toy_config, weights

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'vidcap[tensorboard]'")

from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MLE_SCALARS = {"train/loss", "train/learning_rate", "train/grad_norm", "val/CIDEr-D", "val/exact",
               "val/distinct_captions"}


def read_events(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run), size_guidance={IMAGES: 0})  # 0: keep every image
    events.Reload()
    return events


def steps(events: EventAccumulator, tag: str) -> list[int]:
    return [event.step for event in events.Scalars(tag)]


@pytest.fixture(scope="module")
def oracle_features(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The oracle's object slots (grid) of the 24 tiny SynthClips clips, 8 frames: attention over regions."""
    from vidcap_core.data import load_dataset
    from vidcap_core.features.extract import extract_features

    out = tmp_path_factory.mktemp("oracle")
    extract_features(load_dataset("synth", tiny_synth).records, "oracle", out, num_frames=8, grid=True, progress=False)
    return out


def test_vidcap_train_and_a_fine_tune_leave_events_tensorboard_reads(tiny_synth, oracle_features, tmp_path):
    from vidcap_core.cli import app

    run, scst = tmp_path / "run", tmp_path / "scst"
    runner = CliRunner()
    done = runner.invoke(app, [
        "train", "--dataset", "synth", "--root", str(tiny_synth), "--features", str(oracle_features),
        "--arch", "attention", "--regions", "--cell", "gru", "--embed-size", "16", "--hidden-size", "16",
        "--attention-size", "8", "--max-steps", "4", "--val-every-steps", "2", "--warmup-steps", "1",
        "--batch-size", "8", "--min-count", "1", "--seed", "1", "--torch-threads", "1", "--out", str(run),
        "--no-progress"])
    assert done.exit_code == 0, done.output
    assert len(list(run.glob("events.out.tfevents.*"))) == 1

    events = read_events(run)
    assert MLE_SCALARS <= set(events.Tags()["scalars"])
    rows = log_rows(run)
    for tag, field in (("train/loss", "train_loss"), ("train/learning_rate", "lr"), ("train/grad_norm", "grad_norm_mean"),
                       ("val/distinct_captions", "val_distinct_captions")):
        assert steps(events, tag) == [r["step"] for r in rows] == [2, 4]
        assert [e.value for e in events.Scalars(tag)] == pytest.approx([r[field] for r in rows])  # float32 in events
    assert [e.value for e in events.Scalars("val/CIDEr-D")] == pytest.approx([r["val"]["CIDEr"] for r in rows])
    assert [e.value for e in events.Scalars("val/exact")] == pytest.approx([r["val"]["exact"] for r in rows])
    images = events.Images("val/attention")  # the heatmap of the first validation clip at each validation
    assert [image.step for image in images] == [2, 4]
    assert all(image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n" and image.width > 100 for image in images)
    hparams = events.PluginTagToContent("hparams")  # the HParams tab: the run's config as one row
    assert "_hparams_/session_start_info" in hparams

    done = runner.invoke(app, ["train", "--init-from", str(run), "--scst", "--samples", "2", "--max-steps", "2",
                               "--val-every-steps", "2", "--out", str(scst), "--no-progress"])
    assert done.exit_code == 0, done.output
    tuned = read_events(scst)
    assert steps(tuned, "val/CIDEr-D") == [0, 2] and steps(tuned, "finetune/reward") == [2]
    assert [image.step for image in tuned.Images("val/attention")] == [0, 2]


def test_a_resumed_run_keeps_one_event_per_step(tmp_path):
    """A kill between writing a step's events and its last.pt: the rerun purges the orphaned events (purge_step),
    as trim_logs drops the orphaned log.jsonl row, so every step shows once with the rerun's value."""
    from vidcap_core.training import train

    cfg = toy_config(tmp_path / "data", arch="attention", cell="gru", max_steps=2, val_every_steps=2)
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    at_step_2 = (run / "last.pt").read_bytes()
    train(replace(cfg, max_steps=4), run, progress=False)  # continues the budget-stopped run: step 4's events
    (run / "last.pt").write_bytes(at_step_2)  # as if killed after writing step 4's events, before its last.pt
    train(replace(cfg, max_steps=6), run, progress=False)  # resumes at step 2

    events = read_events(run)
    assert len(list(run.glob("events.out.tfevents.*"))) == 3
    assert steps(events, "train/loss") == [2, 4, 6] and [r["step"] for r in log_rows(run)] == [2, 4, 6]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([r["train_loss"] for r in log_rows(run)])
    assert [image.step for image in events.Images("val/attention")] == [2, 4, 6]

    train(replace(cfg, max_steps=2), run, resume=False, progress=False)  # starting over removes the old events
    assert len(list(run.glob("events.out.tfevents.*"))) == 1 and steps(read_events(run), "train/loss") == [2]


def test_without_tensorboard_training_computes_the_same_and_says_once(tmp_path, monkeypatch):
    """The heatmap's decode and the writer draw no random number and leave the model's mode alone: with
    dropout on (the RNG matters), the weights and log rows equal those of a run without tensorboard,
    which writes no event file and says once per process how to get them."""
    from vidcap_core.training import board, train

    cfg = toy_config(tmp_path / "data", arch="attention", cell="lstm", dropout=0.3, max_steps=6, val_every_steps=2)
    train(cfg, tmp_path / "with", progress=False)
    assert len(read_events(tmp_path / "with").Images("val/attention")) == 3

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as it does when not installed
    board.summary_writer_class.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            train(cfg, tmp_path / "without", progress=False)
            train(cfg, tmp_path / "again", progress=False)
    finally:
        board.summary_writer_class.cache_clear()
    notices = [w for w in said if issubclass(w.category, board.TensorBoardUnavailable)]
    assert len(notices) == 1 and "pip install 'vidcap[tensorboard]'" in str(notices[0].message)
    assert not list((tmp_path / "without").glob("events.out.tfevents.*"))
    assert log_rows(tmp_path / "with") == log_rows(tmp_path / "without")
    with_tb, without_tb = weights(tmp_path / "with" / "last.pt"), weights(tmp_path / "without" / "last.pt")
    assert with_tb.keys() == without_tb.keys() and all(torch.equal(with_tb[k], without_tb[k]) for k in with_tb)


def test_models_without_attention_log_scalars_and_no_image(tmp_path):
    from vidcap_core.training import train

    train(toy_config(tmp_path / "data", arch="s2vt", cell="gru", max_steps=2, val_every_steps=2), tmp_path / "run",
          progress=False)
    events = read_events(tmp_path / "run")
    assert {"train/loss", "val/CIDEr-D"} <= set(events.Tags()["scalars"]) and events.Tags()["images"] == []
    assert "val/exact" not in events.Tags()["scalars"]  # a csv dataset has no semantic checker


def test_the_heatmap_is_a_picture_of_the_words_and_slots():
    from vidcap_core.training.board import attention_image

    image = attention_image(np.full((3, 5), 0.2), ["a", "red", "circle"], "clip: a red circle")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.std() > 0
