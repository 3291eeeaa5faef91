"""The `data` suite (issue #21): test exact accuracy against the number of training clips, val and test fixed,
on SynthClips tiny with the smoke profile (the numbers mean nothing; files, sharing and keys are checked);
and `vidcap-bench estimate`, costed on that suite's measured runs."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.cost import Measured, estimate, makespan, measured_basis
from benchmark.identity import dataset_key_material, stable_hash
from benchmark.invocation import BenchOptions, build_context, run_benchmark
from benchmark.prepare import synth_source
from benchmark.suites import attention, data

from vidcap_core.errors import ConfigError
from vidcap_core.files import read_jsonl
from vidcap_core.numerics import DATASET_STAGES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data_run(tmp_path_factory):
    """The data suite once on the smoke profile: (results, cache, log)."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("data-suite")
    log = io.StringIO()
    run_benchmark(BenchOptions(suites=["data"], profile="smoke", out=base / "results", cache=base / "cache",
                               generalise=False), stream=log)
    return base / "results", base / "cache", log.getvalue()


def test_the_curve_is_measured_on_the_same_test_clips(data_run):
    results, _, _ = data_run
    table = pd.read_csv(results / "data.csv")
    assert sorted(zip(table["features"], table["multiplier"])) == [("learned", 1), ("learned", 2), ("oracle", 1), ("oracle", 2)]
    clips = dict(zip(table["multiplier"], table["train_clips"]))
    assert clips[2] == 2 * clips[1]
    stored = json.loads((results / "data.json").read_text(encoding="utf-8"))
    test_ids = set()
    for run in stored["runs"]:
        predictions = next(Path(p) for p in Path(results).parents[0].joinpath("cache", "runs", run["run_key"]).glob("evals/*.jsonl"))
        test_ids.add(frozenset(row["video_id"] for row in read_jsonl(predictions)))
    assert len(test_ids) == 1  # every point of the curve is tested on the same clips
    assert stored["facts"]["multipliers"] == [1, 2] and stored["facts"]["train_clips"] == {"1": clips[1], "2": clips[2]}
    assert {(p["features"], p["multiplier"]) for p in stored["facts"]["curve"]} == {("learned", 1), ("learned", 2),
                                                                                    ("oracle", 1), ("oracle", 2)}
    assert set(stored["comparisons"]) >= {"attention-lstm-regions-2x vs attention-lstm-regions-1x: sem_exact",
                                          "attention-lstm-regions-oracle-2x vs attention-lstm-regions-oracle-1x: sem_exact"}
    assert (results / "figures" / "data_exact.png").read_bytes()[:8] == PNG_MAGIC
    body = (results / "data.md").read_text(encoding="utf-8")
    assert "the val and test clips are the preset's in every set" in body and "train_multiplier" in body


def test_a_grown_set_links_the_clips_it_shares_instead_of_making_them_again(data_run):
    _, cache, log = data_run
    small, grown = synth_source(cache, "tiny", None), synth_source(cache, "tiny", None, train_multiplier=2)
    assert "linked 24 clips shared" in log
    assert log.count("24 more shared with a finished set grown from the same preset and seed: linked") == 2  # both features
    for i in (0, 5, 23):
        assert (grown.root / "videos" / f"video{i}.mp4").stat().st_ino == (small.root / "videos" / f"video{i}.mp4").stat().st_ino
    ctx = build_context(BenchOptions(suites=["data"], profile="smoke", cache=cache))
    found = data.sources(ctx)
    from vidcap_core.features.store import FeatureStore, feature_path, grid_path

    for features in ("learned", "oracle"):
        small_dir, grown_dir = found[(features, 1)].dir, found[(features, 2)].dir
        for path in (feature_path, grid_path):
            assert path(grown_dir, "video3").stat().st_ino == path(small_dir, "video3").stat().st_ino
        assert len(FeatureStore(grown_dir).video_ids()) == 41  # 24 linked + 17 extracted, one cache
    assert json.loads((grown.root / "synth.json").read_text(encoding="utf-8"))["train_multiplier"] == 2


def test_runs_at_the_main_size_are_the_attention_suites_runs(tmp_path):
    ctx = build_context(BenchOptions(suites=["data"], profile="smoke", claim_seeds=2, cache=tmp_path / "cache"))
    planned = data.groups(ctx)
    shared = attention.groups(ctx)
    for features in ("", "-oracle"):  # the main size's point is the attention suite's run, under its label
        point, run = planned[f"attention-lstm-regions{features}-1x"], shared[f"attention-lstm-regions{features}"]
        assert [(s.key, s.label) for s in point] == [(run[0].key, run[0].label)]  # one seed: no claim reads the curve
    assert len(shared["attention-lstm-regions"]) == 2  # the attention suite's claim seeds
    assert [s.label for s in planned["attention-lstm-regions-2x"]] == ["attention-lstm-regions-2x"]
    assert planned["attention-lstm-regions-2x"][0].key != shared["attention-lstm-regions"][0].key
    assert all(spec.config.regions for specs in planned.values() for spec in specs)


def test_a_presets_own_set_keeps_its_identity_and_key(tmp_path):
    """Growing sets must not move any existing key: a multiplier of 1 adds nothing to the identity."""
    before = {"dataset": "synth", "preset": "standard", "clips": None, "seed": 0, **dataset_key_material(DATASET_STAGES)}
    source = synth_source(tmp_path, "standard", None)
    assert source.identity() == before and source.root.name == f"standard-{stable_hash(before)}"
    grown = synth_source(tmp_path, "standard", None, train_multiplier=4)
    assert grown.identity() == {**before, "train_multiplier": 4} and grown.root.name.startswith("standard-x4-")
    assert "4 x its training clips" in grown.label


# ----------------------------------------------------------------------------- vidcap-bench estimate


def test_makespan_and_the_measured_basis_of_a_planned_run():
    assert makespan([3.0, 3.0, 2.0, 2.0], jobs=2) == 5.0 and makespan([3.0, 1.0], jobs=1) == 4.0 and makespan([], 2) == 0.0
    measured = {"s2vt-rnn": Measured("s2vt-rnn", 1700, "plateau", 70.6),
                "attention-lstm-regions-oracle": Measured("attention-lstm-regions-oracle", 2800, "plateau", 323.0),
                "meanpool-lstm": Measured("meanpool-lstm", 2500, "plateau", 52.0)}
    assert measured_basis("s2vt-rnn-noclip", "s2vt", measured).label == "s2vt-rnn"
    assert measured_basis("attention-lstm-regions-oracle-8x", "attention", measured).label == "attention-lstm-regions-oracle"
    assert measured_basis("meanpool-gru", "meanpool", measured).label == "meanpool-lstm"  # the same architecture
    assert measured_basis("concepts-lstm", "concepts", measured) is None


def test_runs_train_longest_budget_first_and_the_estimate_schedules_them_so(tmp_path):
    from dataclasses import replace as replaced

    from benchmark.cost import pool_seconds
    from benchmark.runner.executor import training_order
    from benchmark.suites import SUITES

    ctx = build_context(BenchOptions(suites=["data"], profile="smoke", cache=tmp_path / "empty"))
    specs = SUITES["data"].plan(ctx)[:3]
    budgets = [40, 20, 60]
    specs = [replaced(spec, config=replaced(spec.config, max_steps=b)) for spec, b in zip(specs, budgets)]
    assert [s.config.max_steps for s in training_order(specs)] == [60, 40, 20]
    runs = pd.DataFrame({"budget": [20, 60, 40, 400], "seconds": [2.0, 6.0, 4.0, 1.0],
                         "finetune": [False, False, False, True]})
    # from scratch, longest first on 2 workers: 6 | 4 + 2 -> 6 s; then the fine-tune: 1 s
    assert pool_seconds(runs, jobs=2) == makespan([6.0, 4.0, 2.0], 2) + 1.0 == 7.0


def test_estimate_costs_every_planned_run_on_the_measured_ones(data_run, tmp_path):
    results, *_ = data_run
    options = BenchOptions(suites=["data"], profile="smoke", jobs=2, cache=tmp_path / "empty")
    runs, totals = estimate(options, results, speedup=2.0)
    measured = pd.read_csv(results / "data.csv").set_index("run_label")
    assert len(runs) == 4 and set(runs["config"]) == set(measured.index)
    for row in runs.itertuples():  # stopped on their budget: costed at the planned budget, at twice the speed
        basis = measured.loc[row.config]
        assert row.steps == row.budget == 20
        assert row.seconds == pytest.approx(basis["train_seconds"] / basis["steps"] * 20 / 2)
    total = totals.set_index("suite").loc["TOTAL"]
    assert total["runs"] == 4 and total["evaluations"] == 4 and total["wall minutes"] > total["training minutes"] > 0
    with pytest.raises(ConfigError, match="no measured run"):
        estimate(BenchOptions(suites=["cells"], profile="smoke", cache=tmp_path / "empty"), results)
    with pytest.raises(ConfigError, match="speedup"):
        estimate(options, results, speedup=0)


def test_estimate_over_a_cache_costs_only_what_a_resumed_run_has_left(data_run, tmp_path):
    results, cache, _ = data_run
    resumed = tmp_path / "cache"
    shutil.copytree(cache, resumed, symlinks=True)
    options = BenchOptions(suites=["data"], profile="smoke", jobs=2, cache=resumed)
    runs, totals = estimate(options, results, resume=True)
    total = totals.set_index("suite").loc["TOTAL"]
    assert (runs["steps left"] == 0).all() and total["training minutes"] == 0 and total["preparation minutes"] == 0
    interrupted = resumed / "runs" / runs["key"].iloc[0]  # as if stopped after its first validation
    (interrupted / "result.json").unlink()
    log = interrupted / "train" / "log.jsonl"
    first = log.read_text().splitlines()[0]
    log.write_text(first + "\n")
    runs, totals = estimate(options, results, resume=True)
    left = runs.set_index("key").loc[interrupted.name]
    assert left["steps left"] == left["steps"] - json.loads(first)["step"] > 0
    assert (runs["steps left"] > 0).sum() == 1 and totals.set_index("suite").loc["TOTAL", "training minutes"] > 0
    fresh, _ = estimate(BenchOptions(suites=["data"], profile="smoke", jobs=2, cache=resumed), results)
    assert (fresh["steps left"] == fresh["steps"]).all()  # without resume: from an empty cache


def test_cli_estimate(data_run, tmp_path):
    results, *_ = data_run
    copied = tmp_path / "results"
    shutil.copytree(results, copied)
    done = CliRunner().invoke(app, ["estimate", "--suite", "data", "--profile", "smoke", "--results", str(copied),
                                    "--speedup", "2", "--jobs", "2"])
    assert done.exit_code == 0, done.output
    assert "| TOTAL " in done.output and "attention-lstm-regions-oracle-2x" in done.output
    assert "smoke: 4 runs, about" in done.output
    left = CliRunner().invoke(app, ["estimate", "--suite", "data", "--profile", "smoke", "--results", str(copied),
                                    "--cache", str(data_run[1]), "--no-runs"])
    assert left.exit_code == 0, left.output
    assert f"smoke: 4 runs, 0 of them left to train in {data_run[1]}, about" in left.output
    missing = CliRunner().invoke(app, ["estimate", "--profile", "smoke", "--results", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no suite CSV" in missing.output
