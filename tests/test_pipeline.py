"""Evaluating a trained run (library and `vidcap evaluate`), and `vidcap train` options through the CLI."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from fixtures_datasets import toy_config
from typer.testing import CliRunner

from vidcap_core.cli.evaluate import evaluate_command
from vidcap_core.cli.train import train_command
from vidcap_core.errors import DatasetError, FeatureError
from vidcap_core.evaluation import METRICS, Scorer
from vidcap_core.pipeline import evaluate_checkpoint, evaluate_run
from vidcap_core.training import train

REPORT_KEYS = ["split", "n_videos", "metrics", "predictions_file"]
# Everything but METEOR, whose JVM needs a minute of CPU to start; the evaluation tests cover it.
FAST_METRICS = [m for m in METRICS if m != "METEOR"]


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    return app


@pytest.fixture(scope="module")
def scorer():
    with Scorer(metrics=FAST_METRICS) as shared:
        yield shared


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One trained toy run shared by the tests of this file."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("pipeline")
    cfg = toy_config(folder / "data", arch="attention", cell="gru", max_steps=9, probe_every=0)
    train(cfg, folder / "run", progress=False)
    return folder / "run", cfg


def test_evaluate_run_scores_the_test_split(run, scorer, tmp_path):
    run_dir, cfg = run
    report = evaluate_run(run_dir, split="test", out_dir=tmp_path, scorer=scorer, metrics=FAST_METRICS)
    assert report.split == "test" and report.n_videos == 6
    assert list(report.metrics) == FAST_METRICS
    assert all(np.isfinite(v) for v in report.metrics.values())
    assert report.semantic is None  # not SynthClips
    assert report.inference_ms_per_clip > 0
    rows = [json.loads(line) for line in report.predictions_file.read_text().splitlines()]
    assert [r["video_id"] for r in rows] == [f"clip{i}" for i in range(30, 36)]
    assert all(r["caption"] and len(r["references"]) == 2 for r in rows)
    assert list(report.to_dict())[:4] == REPORT_KEYS
    assert set(report.per_video) == {r["video_id"] for r in rows}

    same = evaluate_checkpoint(run_dir / "best.pt", Path(cfg.features), "csv", Path(cfg.root),
                               annotations=Path(cfg.annotations), split="test", out_dir=tmp_path / "again",
                               seed=cfg.seed, scorer=scorer, metrics=FAST_METRICS)
    assert same.metrics == report.metrics


def test_frame_orders_and_beam_are_deterministic(run, scorer, tmp_path):
    run_dir, _ = run
    for order in ("shuffled", "reversed"):
        first = evaluate_run(run_dir, frame_order=order, out_dir=tmp_path / "a", scorer=scorer, metrics=["CIDEr"])
        second = evaluate_run(run_dir, frame_order=order, out_dir=tmp_path / "b", scorer=scorer, metrics=["CIDEr"])
        assert first.predictions_file.read_text() == second.predictions_file.read_text()
        assert first.predictions_file.name == f"predictions_test_beam1_{order}.jsonl"
    beam = evaluate_run(run_dir, beam=3, out_dir=tmp_path, scorer=scorer, metrics=["CIDEr"])
    assert beam.beam == 3 and beam.n_videos == 6


def test_incompatible_features_and_empty_split_are_typed_errors(run, tmp_path):
    run_dir, cfg = run
    other = tmp_path / "other_features"
    other.mkdir()
    meta = json.loads((Path(cfg.features) / "features.json").read_text())
    (other / "features.json").write_text(json.dumps({**meta, "backbone": "resnet18", "feature_dim": 512}))
    with pytest.raises(FeatureError, match="resnet18"):
        evaluate_run(run_dir, features=other)

    no_test = tmp_path / "no_test.csv"
    with open(cfg.annotations) as src, open(no_test, "w", newline="") as dst:
        rows = [r for r in csv.DictReader(src) if r["split"] != "test"]
        writer = csv.DictWriter(dst, fieldnames=["video", "caption", "split"])
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DatasetError, match="test"):
        evaluate_checkpoint(run_dir / "best.pt", Path(cfg.features), "csv", Path(cfg.root), annotations=no_test)


def test_evaluate_cli_prints_the_report_json(run, tmp_path):
    run_dir, _ = run
    result = CliRunner().invoke(cli_app(), ["evaluate", "--run", str(run_dir), "--split", "val",
                                            "--out-dir", str(tmp_path), "--metrics", ",".join(FAST_METRICS),
                                            "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report)[:4] == REPORT_KEYS and report["split"] == "val" and report["n_videos"] == 6
    assert list(report["metrics"]) == FAST_METRICS
    assert Path(report["predictions_file"]).is_file()

    bad = CliRunner().invoke(cli_app(), ["evaluate", "--run", str(run_dir), "--frame-order", "sideways"])
    assert bad.exit_code != 0 and "sideways" in bad.output
    bad = CliRunner().invoke(cli_app(), ["evaluate", "--run", str(run_dir), "--metrics", "BLEU"])
    assert bad.exit_code == 2 and "BLEU" in bad.output
    missing = CliRunner().invoke(cli_app(), ["evaluate", "--run", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "not a finished training run" in missing.output


def test_train_cli_merges_config_file_and_flags(run, tmp_path):
    _, cfg = run
    config = tmp_path / "train.toml"
    config.write_text(
        f'dataset = "csv"\nroot = "{cfg.root}"\nannotations = "{cfg.annotations}"\nfeatures = "{cfg.features}"\n'
        'arch = "s2vt"\ncell = "rnn"\nmax_steps = 9\nval_every_steps = 3\nhidden_size = 8\nembed_size = 8\n'
        'min_count = 1\nprobe_every = 0\n'
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(cli_app(), ["train", "--config", str(config), "--max-steps", "3", "--cell", "gru",
                                            "--grad-clip", "0", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "config.json").read_text())
    assert (written["arch"], written["cell"], written["max_steps"], written["grad_clip"]) == ("s2vt", "gru", 3, None)
    assert json.loads(result.stdout)["steps_done"] == 3

    bad = CliRunner().invoke(cli_app(), ["train", "--config", str(config), "--arch", "transformer", "--out", str(out)])
    assert bad.exit_code != 0 and "transformer" in bad.output
    typo = tmp_path / "typo.toml"
    typo.write_text(config.read_text() + "hiden_size = 3\n")
    bad = CliRunner().invoke(cli_app(), ["train", "--config", str(typo), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "hiden_size" in bad.output


def test_run_config_round_trips(run):
    run_dir, cfg = run
    from vidcap_core.training import TrainConfig

    saved = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert saved == replace(cfg)


def test_a_model_that_says_nothing_scores_zero_with_a_note(run, tmp_path):
    from vidcap_core.checkpoint import load_checkpoint, save_checkpoint
    from vidcap_core.models import EOS_ID

    run_dir, cfg = run
    loaded = load_checkpoint(run_dir / "best.pt")
    with torch.no_grad():
        loaded.model.classifier.bias.fill_(-1e4)
        loaded.model.classifier.bias[EOS_ID] = 1e4  # EOS first, every time
    mute = save_checkpoint(tmp_path / "mute.pt", loaded.model, loaded.vocab, loaded.preprocessing)
    report = evaluate_checkpoint(mute, Path(cfg.features), "csv", Path(cfg.root), annotations=Path(cfg.annotations),
                                 out_dir=tmp_path, metrics=["CIDEr", "Bleu_4"])
    assert report.metrics["CIDEr"] == 0.0 and report.metrics["Bleu_4"] == 0.0
    assert any("captions are empty" in note for note in report.notes)
    rows = [json.loads(line) for line in report.predictions_file.read_text().splitlines()]
    assert len(rows) == report.n_videos and all(row["caption"] == "" for row in rows)
