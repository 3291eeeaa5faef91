"""vidcap-bench: run keys, the verdict rule, the runner on SynthClips tiny, the report, the CLI, real-data formats.

The runner tests train real (tiny) models on real generated clips with the `smoke` profile (1 seed,
20 steps, hidden size 16): the numbers mean nothing, the files, skips and verdict logic are checked.
Convergence, collapse and selection rules are also checked on hand-made run records and tables.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from benchmark.claims import CLAIMS, Claim, judge
from benchmark.cli import app
from benchmark.identity import stable_hash
from benchmark.invocation import BenchOptions, run_benchmark
from benchmark.prepare import DatasetSource, FeatureSource
from benchmark.report import README_END, README_START, build_report
from benchmark.runner import EvalRequest, FinetuneStage, RunRecord, RunSpec, RunStore, count_pending, training_waves
from benchmark.selection import choose, grid_labels
from benchmark.stats import (
    NOT_JUDGED,
    Comparison,
    compare_independent,
    compare_per_video,
    is_collapsed,
    summarise_seeds,
    verdict,
)
from benchmark.tables import per_seed, run_health, suite_summary
from benchmark.verify import rekey_results
from vidcap_core.errors import ConfigError
from vidcap_core.files import json_safe
from vidcap_core.training.config import TrainConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPORT_SUITES = ["cells", "attention", "temporal", "gradients", "seeds", "beam"]


def comparison(diff: float, low: float, high: float, mean_b: float = 1.0, converged: tuple[int, int] = (3, 3)) -> Comparison:
    """A - B with its CI; `converged`: runs of A and of B that converged (of 3 each)."""
    return Comparison(a="A", b="B", metric="CIDEr", mean_a=mean_b + diff, mean_b=mean_b, diff=diff, ci_low=low,
                      ci_high=high, p_value=0.5, n=10, unit="videos", n_resamples=1000, method="test",
                      a_converged=converged[0], a_runs=3, b_converged=converged[1], b_runs=3)


# ----------------------------------------------------------------------------- verdict rule


@pytest.mark.parametrize(("diff", "low", "high", "better", "expected"), [
    (0.20, 0.05, 0.35, "higher", "supported"),  # whole CI above zero
    (0.01, -0.02, 0.04, "higher", "not supported"),  # CI below delta: no effect of interest
    (-0.30, -0.50, -0.10, "higher", "not supported"),  # significant the other way
    (0.05, -0.10, 0.20, "higher", "inconclusive"),  # spans zero and delta
    (-0.20, -0.35, -0.05, "lower", "supported"),  # lower is better: A - B < 0 everywhere
    (0.20, 0.05, 0.35, "lower", "not supported"),
    (-0.05, -0.20, 0.10, "lower", "inconclusive"),
])
def test_verdict_rule(diff, low, high, better, expected):
    assert verdict(comparison(diff, low, high), better, delta=0.05).name == expected


def test_verdict_edges_and_bad_input():
    assert verdict(None, "higher", 0.05).name == "not measured"
    assert verdict(comparison(0.0, 0.0, 0.1), "higher", 0.05).name == "inconclusive"  # lo == 0 is not > 0
    assert verdict(comparison(0.0, -0.01, 0.05), "higher", 0.05).name == "inconclusive"  # hi == delta
    with pytest.raises(ConfigError, match="better"):
        verdict(comparison(0.1, 0.0, 0.2), "bigger", 0.05)
    with pytest.raises(ConfigError, match="delta"):
        verdict(comparison(0.1, 0.0, 0.2), "higher", -1.0)


def test_relative_delta_uses_the_baseline_mean():
    claim = Claim("x", "x", "x", "cells", "A vs B: CIDEr", "x", "higher", 0.05, relative=True)
    # delta = 5% of 2.0 = 0.1: an interval [-0.02, 0.08] rules out 0.1 -> not supported
    assert claim.resolve_delta(comparison(0.03, -0.02, 0.08, mean_b=2.0)) == pytest.approx(0.1)
    suites = {"cells": {"comparisons": {"A vs B: CIDEr": comparison(0.03, -0.02, 0.08, mean_b=2.0).to_dict()}}}
    assert judge(claim, suites).verdict.name == "not supported"
    suites["cells"]["comparisons"]["A vs B: CIDEr"] = comparison(0.03, -0.02, 0.12, mean_b=2.0).to_dict()
    assert judge(claim, suites).verdict.name == "inconclusive"
    assert judge(claim, {}).verdict.name == "not measured"


@pytest.mark.parametrize("converged", [(2, 3), (3, 0), (0, 0)])
def test_no_verdict_unless_every_compared_run_converged(converged):
    decisive = comparison(0.20, 0.05, 0.35, converged=converged)  # would be "supported"
    judged = verdict(decisive, "higher", delta=0.05)
    assert judged.name == NOT_JUDGED == "not judged (undertrained)"  # comparisons without training status: convergence decides
    assert judged.effect == pytest.approx(0.20)  # the effect is still reported, only not judged
    assert verdict(comparison(0.01, -0.02, 0.04, converged=converged), "higher", 0.05).name == NOT_JUDGED
    # a claim about training itself (gradients exploding without clipping) judges unconverged runs
    assert verdict(decisive, "higher", 0.05, needs_convergence=False).name == "supported"


def test_a_comparison_without_convergence_counts_is_not_judged():
    """Stored before convergence was recorded (old <suite>.json): no verdict rather than a guess."""
    stored = {k: v for k, v in comparison(0.2, 0.05, 0.35).to_dict().items() if not k.endswith(("_converged", "_runs"))}
    old = Comparison.from_dict(stored)
    assert old.all_converged is None and verdict(old, "higher", 0.05).name == NOT_JUDGED
    assert Comparison.from_dict(comparison(0.2, 0.05, 0.35).to_dict()).all_converged is True


def test_claims_use_the_convergence_of_their_comparison():
    lstm = next(c for c in CLAIMS if c.id == "lstm_vs_rnn")
    exploding = next(c for c in CLAIMS if c.id == "exploding")
    for claim in (lstm, exploding):
        stored = {claim.suite: {"comparisons": {claim.comparison: comparison(0.5, 0.3, 0.7, converged=(3, 1)).to_dict()}}}
        expected = "supported" if claim is exploding else NOT_JUDGED  # divergence is what `exploding` measures
        assert judge(claim, stored).verdict.name == expected
    oracle = next(c for c in CLAIMS if c.id == "lstm_vs_rnn_oracle")
    assert oracle.comparison == "s2vt-lstm-oracle vs s2vt-rnn-oracle: CIDEr" and "oracle features" in oracle.text
    assert {c.id for c in CLAIMS} >= {"attention_precise_oracle", "attention_faster_oracle"}


def test_collapse_rule_allows_for_references_that_repeat():
    assert is_collapsed(distinct_captions=1, distinct_references=120)  # one caption for every clip
    assert is_collapsed(59, 120) and not is_collapsed(60, 120)  # the 50% line
    # 120 clips but only 2 different reference sets: 1 caption is half of what a perfect model needs
    assert not is_collapsed(1, 2) and not is_collapsed(0, 0)


def health_rows() -> pd.DataFrame:
    return pd.DataFrame([
        {"config": "s2vt-rnn", "seed": 0, "CIDEr": 0.1, "converged": False, "distinct_captions": 1, "test_clips": 10, "collapsed": True},
        {"config": "s2vt-rnn", "seed": 1, "CIDEr": 0.3, "converged": True, "distinct_captions": 9, "test_clips": 10, "collapsed": False},
        {"config": "s2vt-lstm", "seed": 0, "CIDEr": 0.5, "converged": True, "distinct_captions": 10, "test_clips": 10, "collapsed": False},
        {"config": "s2vt-lstm", "seed": 1, "CIDEr": 0.7, "converged": True, "distinct_captions": 8, "test_clips": 10, "collapsed": False},
    ])


def test_suite_tables_show_convergence_distinct_captions_and_collapse():
    health = run_health(health_rows(), ["config"]).set_index("config")
    assert health.loc["s2vt-rnn", "converged"] == "1/2" and health.loc["s2vt-lstm", "converged"] == "2/2"
    assert health.loc["s2vt-rnn", "distinct captions"] == "0.50 (5/10)"
    assert health.loc["s2vt-rnn", "collapsed"] == "yes (1/2)" and health.loc["s2vt-lstm", "collapsed"] == "no"
    table = suite_summary(health_rows(), ["config"], ["CIDEr"])
    assert list(table.columns) == ["config", "seeds", "CIDEr", "converged", "distinct captions", "collapsed"]
    assert table.iloc[0].tolist() == ["s2vt-rnn", "2", "0.200 ± 0.141", "1/2", "0.50 (5/10)", "yes (1/2)"]
    no_eval = health_rows().drop(columns=["distinct_captions", "test_clips", "collapsed"])  # e.g. the gradients suite
    assert run_health(no_eval, ["config"])["collapsed"].tolist() == ["n/a", "n/a"]


def test_suite_tables_print_counts_as_integers():
    rows = health_rows().assign(steps=[3000, 1700, 2800, 2800], sem_exact=[0.0, 1.0, 1.0, 0.0])
    rows = pd.concat([rows, pd.DataFrame([{"config": "attention-gru", "seed": 1, "CIDEr": 0.4, "steps": 2600}])],
                     ignore_index=True)  # a seed of its own: the pivot below has NaN, so its counts turn float
    table = suite_summary(rows, ["config"], ["CIDEr", "sem_exact", "steps", "distinct_captions"]).set_index("config")
    assert table.loc["s2vt-rnn", ["steps", "distinct_captions"]].tolist() == ["2350 ± 919.2", "5 ± 5.7"]
    assert table.loc["s2vt-lstm", ["steps", "distinct_captions"]].tolist() == ["2800 ± 0", "9 ± 1.4"]
    assert table.loc["attention-gru", ["steps", "distinct_captions"]].tolist() == ["2600", "n/a"]
    assert table.loc["s2vt-lstm", "sem_exact"] == "0.500 ± 0.707"  # a score stays a score, even when whole
    assert table.loc["attention-gru", "sem_exact"] == "n/a"
    assert per_seed(rows, ["config"], "steps").values.tolist() == [
        ["s2vt-rnn", "3000", "1700"], ["s2vt-lstm", "2800", "2800"], ["attention-gru", "n/a", "2600"]]
    assert per_seed(rows, ["config"], "CIDEr").iloc[0].tolist() == ["s2vt-rnn", "0.100", "0.300"]
    undeclared = suite_summary(health_rows().assign(frames=[8, 8, 16, 32]), ["config"], ["frames"])  # int dtype
    assert undeclared["frames"].tolist() == ["8 ± 0", "24 ± 11.3"]


def record_with(tmp: Path, name: str, dataset: str, seed: int, exact: float | None, cider: float) -> RunRecord:
    directory = tmp / name
    (directory / "train").mkdir(parents=True)
    (directory / "train" / "best.pt").write_bytes(b"checkpoint")
    best_val = {"CIDEr": cider, **({"exact": exact} if exact is not None else {})}
    return RunRecord(key=name, label=name.split("_")[0], config={"seed": seed, "dataset": dataset}, dir=directory,
                     result={"best_val": best_val, "convergence": {"converged": True}}, wall_seconds=0.0)


def test_selection_uses_exact_accuracy_on_synthclips_and_cider_on_real_data(tmp_path):
    synth = {"attention-lstm": [record_with(tmp_path, "attention-lstm_0", "synth", 0, 0.50, 0.9),
                                record_with(tmp_path, "attention-lstm_1", "synth", 1, 0.60, 0.8)],
             "s2vt-lstm": [record_with(tmp_path, "s2vt-lstm_0", "synth", 0, 0.40, 1.5)]}
    choice = choose(synth)
    assert choice.label == "attention-lstm" and choice.record.seed == 1  # exact first, CIDEr-D second
    assert choice.mean_key == pytest.approx((0.55, 0.85)) and "val exact 0.550" in choice.describe()
    tie = {"a-lstm": [record_with(tmp_path, "a-lstm_0", "synth", 0, 0.5, 0.7)],
           "b-lstm": [record_with(tmp_path, "b-lstm_0", "synth", 0, 0.5, 0.9)]}
    assert choose(tie).label == "b-lstm"  # equal exact accuracy: CIDEr-D breaks the tie
    real = {"attention-lstm": [record_with(tmp_path, "r-attention_0", "msvd", 0, None, 0.3)],
            "s2vt-lstm": [record_with(tmp_path, "r-s2vt_0", "msvd", 0, None, 0.4)]}
    assert choose(real).label == "s2vt-lstm"


def test_independent_comparison_of_two_clip_sets():
    same = compare_independent([1.0, 0.0] * 50, [1.0, 0.0, 1.0, 0.0] * 30)
    assert same.mean_a == same.mean_b == 0.5 and same.within_sampling_error and same.n_b == 120
    worse = compare_independent([1.0] * 10 + [0.0] * 90, [1.0] * 90 + [0.0] * 10)
    assert worse.diff == pytest.approx(-0.8) and not worse.within_sampling_error
    assert worse.ci_a[0] <= 0.1 <= worse.ci_a[1] and compare_independent([], [1.0]) is None


def test_paired_comparison_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(1)
    base = {f"video{i}": float(v) for i, v in enumerate(rng.uniform(0.2, 0.8, 60))}
    better = [{k: v + 0.1 + rng.normal(0, 0.02) for k, v in base.items()} for _ in range(3)]
    same = [{k: v + rng.normal(0, 0.02) for k, v in base.items()} for _ in range(3)]
    up = compare_per_video("A", better, "B", [base], "CIDEr")
    null = compare_per_video("A", same, "B", [base], "CIDEr")
    assert up is not None and null is not None
    assert up.ci_low > 0.05 and up.diff == pytest.approx(0.1, abs=0.02) and up.n == 60
    assert null.ci_low < 0 < null.ci_high
    assert compare_per_video("A", [{"x": 1.0}], "B", [{"y": 1.0}], "CIDEr") is None


def test_seed_summary():
    summary = summarise_seeds([1.0, 2.0, 3.0, float("nan")])
    assert (summary.mean, summary.n) == (2.0, 3) and summary.std == pytest.approx(1.0)
    assert summarise_seeds([]).format() == "n/a"


# ----------------------------------------------------------------------------- run keys


def make_spec(tmp: Path, **overrides) -> RunSpec:
    data = DatasetSource("synth", tmp / "data", synth_preset="tiny", synth_clips=None)
    features = FeatureSource(data, "synth-cnn", 8, tmp / "features", weights_id="sha256:abc")
    values = {"dataset": "synth", "root": str(data.root), "features": str(features.dir), "arch": "s2vt",
              "cell": "lstm", "hidden_size": 16, "seed": 0, **overrides}
    return RunSpec("s2vt-lstm", TrainConfig.from_dict(values), features)


def test_stable_hash_is_canonical():
    assert stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": [1, 2], "b": 1})
    assert stable_hash({"a": 1}) == "015abd7f5cc57a2d"  # sha256('{"a":1}')[:16]: fixed across versions
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_run_key_covers_what_changes_results_only(tmp_path):
    key = make_spec(tmp_path).key
    assert key == make_spec(tmp_path).key
    assert key == make_spec(tmp_path, torch_threads=1, device="cpu").key  # how it runs, not what it computes
    assert key == make_spec(tmp_path / "moved").key  # paths are replaced by data identity
    assert key != make_spec(tmp_path, hidden_size=32).key
    assert key != make_spec(tmp_path, seed=1).key
    assert key != make_spec(tmp_path, grad_clip=None).key
    other_weights = make_spec(tmp_path)
    other_weights = RunSpec(other_weights.label, other_weights.config,
                            FeatureSource(other_weights.features.dataset, "synth-cnn", 8, tmp_path / "features", weights_id="sha256:def"))
    assert key != other_weights.key


def test_keys_follow_the_declared_numerics_versions_not_the_source(tmp_path, monkeypatch):
    from vidcap_core import numerics

    spec = make_spec(tmp_path)
    material = spec.key_material()
    assert material["numerics"] == {"data": 1, "decoding": 1, "evaluation": 1, "text": 1, "training": 1}
    assert material["torch"].count(".") == 1 and material["device"].startswith("cpu:") and material["torch_threads"] == 1
    assert "code" not in material and "code" not in material["features"]  # no source digest anywhere
    assert material["features"]["numerics"] == {"backbone.synth-cnn": 1, "data": 1, "features": 1, "video": 1}
    data_key, features_key, run_key = stable_hash(spec.features.dataset.identity()), stable_hash(spec.features.identity()), spec.key
    monkeypatch.setitem(numerics.NUMERICS_VERSIONS, "backbone.oracle", 2)  # another backbone: nothing moves
    assert (stable_hash(spec.features.identity()), spec.key) == (features_key, run_key)
    monkeypatch.setitem(numerics.NUMERICS_VERSIONS, "training", 2)  # training: the run, not its data or features
    assert stable_hash(spec.features.identity()) == features_key and spec.key != run_key
    monkeypatch.setitem(numerics.NUMERICS_VERSIONS, "training", 1)
    monkeypatch.setitem(numerics.NUMERICS_VERSIONS, "backbone.synth-cnn", 2)  # the features and every run on them
    assert stable_hash(spec.features.dataset.identity()) == data_key
    assert stable_hash(spec.features.identity()) != features_key and spec.key != run_key
    monkeypatch.setitem(numerics.NUMERICS_VERSIONS, "backbone.synth-cnn", 1)
    monkeypatch.setitem(numerics.NUMERICS_VERSIONS, "synth", 2)  # the data, hence everything made from it
    assert stable_hash(spec.features.dataset.identity()) != data_key and spec.key != run_key
    monkeypatch.setitem(numerics.NUMERICS_VERSIONS, "synth", 1)
    finetune = finetune_of(spec)
    before = finetune.key
    monkeypatch.setitem(numerics.NUMERICS_VERSIONS, "finetune", 2)  # fine-tunes only
    assert spec.key == run_key and finetune.key != before


def test_synth_slots_features_depend_on_synth_cnn_too():
    from vidcap_core.errors import ConfigError
    from vidcap_core.numerics import backbone_stages

    assert backbone_stages("synth-slots") == ("backbone.synth-cnn", "backbone.synth-slots")
    assert backbone_stages("resnet152") == ("backbone.resnet",) and backbone_stages("vgg16") == ("backbone.vgg",)
    with pytest.raises(ConfigError, match="numerics.py"):
        backbone_stages("clip-vit")


def finetune_of(parent: RunSpec, method: str = "scst", **options) -> RunSpec:
    return RunSpec(f"{parent.label}-{method}", parent.config, parent.features,
                   FinetuneStage(parent, method, tuple(sorted(options.items()))))


def test_a_finetune_is_keyed_on_its_parent_and_trained_after_it(tmp_path):
    parent = make_spec(tmp_path)
    child = finetune_of(parent, reward="cider")
    assert "finetune" not in parent.key_material()
    assert child.key_material()["finetune"] == {"parent": parent.key, "method": "scst", "options": {"reward": "cider"}}
    assert child.key != parent.key  # same TrainConfig, but a fine-tune of it
    assert child.key == finetune_of(make_spec(tmp_path / "moved"), reward="cider").key  # parent keyed by data identity
    assert child.key != finetune_of(make_spec(tmp_path, hidden_size=32), reward="cider").key  # another parent
    assert child.key != finetune_of(make_spec(tmp_path, seed=1), reward="cider").key
    assert child.key != finetune_of(parent, reward="semantic").key
    assert child.key != finetune_of(parent, "adversarial").key
    grandchild = finetune_of(child, "adversarial")
    other = make_spec(tmp_path, seed=2)
    waves = training_waves([grandchild, child, other, parent])
    assert [[s.key for s in wave] for wave in waves] == [[other.key, parent.key], [child.key], [grandchild.key]]
    assert training_waves([child]) == [[child]]  # a parent finished earlier is not waited for


def test_run_key_is_the_same_in_a_fresh_interpreter(tmp_path):
    code = ("import sys; from pathlib import Path; sys.path.insert(0, 'tests'); "
            "from test_bench import make_spec; print(make_spec(Path(sys.argv[1])).key)")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == make_spec(tmp_path).key


# ----------------------------------------------------------------------------- the runner on SynthClips tiny


@pytest.fixture(scope="module")
def bench_dirs(tmp_path_factory):
    """Run the report suites once with the smoke profile; yields (results, cache, summary, log)."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("bench")
    results, cache = base / "results", base / "cache"
    log = io.StringIO()
    summary = run_benchmark(BenchOptions(suites=REPORT_SUITES, profile="smoke", out=results, cache=cache), stream=log)
    return results, cache, summary, log.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_cells_suite_writes_csv_md_and_figures(bench_dirs):
    results, _, summary, log = bench_dirs
    rows = read_csv(results / "cells.csv")
    assert sorted(r["config"] for r in rows) == ["s2vt-gru", "s2vt-gru-oracle", "s2vt-lstm", "s2vt-lstm-oracle",
                                                 "s2vt-rnn", "s2vt-rnn-oracle"]
    assert all(r["seed"] == "0" and r["CIDEr"] != "" and len(r["run_key"]) == 16 for r in rows)
    text = (results / "cells.md").read_text()
    assert "CIDEr seed 0" in text and re.search(r"^\| s2vt-lstm +\| s2vt-rnn +\| CIDEr +\|", text, re.M)
    for figure in json.loads((results / "cells.json").read_text())["figures"]:
        assert (results / "figures" / figure).read_bytes()[:8] == PNG_MAGIC
    assert "training" in log and summary.runs_trained == summary.runs_total > 0


def test_runs_are_shared_between_suites(bench_dirs):
    results, *_ = bench_dirs
    cells = {r["config"]: r["run_key"] for r in read_csv(results / "cells.csv")}
    attention = {r["config"]: r["run_key"] for r in read_csv(results / "attention.csv")}
    assert cells["s2vt-lstm"] == attention["s2vt-lstm"]
    assert json.loads((results / "attention.json").read_text())["runs_reused"] == 6  # the s2vt runs, main + oracle


def test_attention_over_regions_reads_object_slots(bench_dirs):
    """With synth-cnn as the main backbone, attention over regions reads synth-slots' tracked object
    slots (a slot per object), the oracle variant the oracle's; attention over frames reads synth-cnn."""
    results, cache, *_ = bench_dirs
    keys = {r["config"]: r["run_key"] for r in read_csv(results / "attention.csv")}
    backbone = {label: json.loads((cache / "runs" / key / "spec.json").read_text())["features"]["backbone"]
                for label, key in keys.items()}
    assert (backbone["attention-lstm-regions"], backbone["attention-lstm-regions-oracle"]) == ("synth-slots", "oracle")
    assert backbone["attention-lstm"] == "synth-cnn"
    assert "synth-slots' object slots" in (results / "attention.md").read_text()


def test_rerun_skips_finished_runs(bench_dirs):
    results, cache, first, _ = bench_dirs
    before = (results / "cells.csv").read_text()
    log = io.StringIO()
    again = run_benchmark(BenchOptions(suites=["cells"], profile="smoke", out=results, cache=cache), stream=log)
    assert again.runs_total == 6 and again.runs_trained == 0
    assert log.getvalue().count("finished earlier: skipped") == 6
    assert (results / "cells.csv").read_text() == before  # same runs, same cached evaluations, same rows


def test_a_semantic_slot_no_caption_touched_is_null_on_disk_and_nan_in_memory(bench_dirs):
    """Regression: a model that never states an order left semantic["order"] NaN, and writing the
    cached evaluation (strict JSON) crashed the length suite of the full profile."""
    _, cache, *_ = bench_dirs
    store = RunStore(cache / "runs")
    run = next(d for d in sorted((cache / "runs").iterdir()) if (d / "evals" / "test-beam1-ordered.json").is_file())
    payload = json.loads((run / "evals" / "test-beam1-ordered.json").read_text())  # (gradients runs have no test eval)
    payload["semantic"]["order"] = math.nan
    request = EvalRequest(split="nan-check", beam=1, frame_order="ordered")  # a name no suite asks for
    cached = run / "evals" / f"{request.name}.json"
    cached.write_text(json.dumps(json_safe(payload), allow_nan=False))
    assert json.loads(cached.read_text())["semantic"]["order"] is None
    record = RunRecord(key=run.name, label="any", config=json.loads((run / "result.json").read_text())["config"],
                       dir=run, result={}, wall_seconds=0.0)
    evaluation = store.evaluate(record, request, scorer=None)  # cached: read back, not recomputed
    assert math.isnan(evaluation.semantic["order"]) and math.isfinite(evaluation.semantic["colour"])


def test_budget_verdict_only_for_an_invocation_that_trained_every_run():
    from benchmark.report import budget_text

    def manifest(trained: int, total: int, seconds: float) -> dict:
        return {"invocations": [{"profile": "full", "profile_settings": {"budget_s": 3600}, "wall_seconds": seconds,
                                 "suites": ["cells"], "runs_trained": trained, "runs_total": total, "jobs": 2,
                                 "suite_seconds": {"cells": seconds}}]}

    assert "within its 60-minute budget" in budget_text(manifest(81, 81, 3000))
    assert "over its 60-minute budget" in budget_text(manifest(81, 81, 4000))
    partial = budget_text(manifest(6, 81, 500))  # a resumed run's wall time says nothing about the budget
    assert "reused 75 of its 81 runs" in partial and "within" not in partial and "over its" not in partial


def test_json_safe_turns_every_non_finite_float_into_null():
    value = {"a": math.nan, "b": [math.inf, 1.5, (-math.inf, 2)], "c": {"d": math.nan, "e": "text"}}
    assert json_safe(value) == {"a": None, "b": [None, 1.5, [None, 2]], "c": {"d": None, "e": "text"}}
    json.dumps(json_safe(value), allow_nan=False)


def test_best_model_is_chosen_on_validation(bench_dirs):
    results, *_ = bench_dirs
    summary = json.loads((results / "best" / "summary.json").read_text())
    index = json.loads((results / "checkpoints" / "index.json").read_text())
    ranked = {label: entry for label, entry in index.items() if entry["ranked"]}  # the grid, not the seeds suite's extras
    assert ranked and set(ranked) <= set(grid_labels())
    best_key = max((entry["val_exact"], entry["val_CIDEr"]) for entry in ranked.values())  # exact, then CIDEr-D
    chosen = index[summary["config"]]
    assert (chosen["val_exact"], chosen["val_CIDEr"]) == pytest.approx(best_key)  # one seed: best config = best run
    assert (summary["val"]["exact"], summary["val"]["CIDEr"]) == pytest.approx(best_key)
    assert not summary["config"].endswith("-oracle")  # oracle features need ground truth: never the exported model
    assert (results / "best" / "model.pt").stat().st_size > 0
    card = (results / "best" / "MODEL_CARD.md").read_text()
    assert "validation" in card and "vidcap caption" in card and "vidcap-bench run" in card
    for entry in index.values():
        assert entry["file"] is None or (results / "checkpoints" / entry["file"]).is_file()


def test_best_model_is_judged_on_the_demo_examples(bench_dirs):
    """The model card says how many of the demo's shown examples the best model gets exactly, captioned
    as the demo captions them; the verdicts are the semantic checker's on the demo's own clips."""
    from demo.examples import EXAMPLES_SHOWN, load_examples
    from vidcap_core.synth.checker import score_caption

    results, cache, *_ = bench_dirs
    scored = json.loads((results / "best" / "summary.json").read_text())["demo_examples"]
    assert (scored["shown"], scored["beam"], scored["no_repeat_ngram"]) == (EXAMPLES_SHOWN, 3, 3)
    truths = {e.video_id: e.truth for e in load_examples(cache / "demo-examples")}
    assert [row["video_id"] for row in scored["examples"]] == list(truths)
    for row in scored["examples"]:
        assert row["exact"] == (score_caption(row["caption"], truths[row["video_id"]])["exact"] == 1.0)
    assert scored["exact"] == sum(row["exact"] for row in scored["examples"])
    card = (results / "best" / "MODEL_CARD.md").read_text()
    assert f"**{scored['exact']} of {scored['shown']}** state every event exactly" in card


def test_suite_rows_carry_convergence_caption_health_and_the_heldout_split(bench_dirs):
    results, *_ = bench_dirs
    from vidcap_core.synth import load_ground_truth

    rows = read_csv(results / "cells.csv")
    truths = None
    for row in rows:
        assert row["converged"] in ("True", "False") and row["convergence"]  # the verdict's reason
        clips, distinct = int(row["test_clips"]), int(row["distinct_captions"])
        assert 1 <= distinct <= clips and float(row["distinct_ratio"]) == pytest.approx(distinct / clips)
        assert row["collapsed"] == str(is_collapsed(distinct, int(row["distinct_references"])))
        assert int(row["clips_in"]) + int(row["clips_heldout"]) == clips
        weighted = int(row["clips_in"]) * float(row["sem_exact_in"]) + int(row["clips_heldout"]) * float(row["sem_exact_heldout"])
        assert weighted == pytest.approx(clips * float(row["sem_exact"]))
        if truths is None:
            config = json.loads(next((Path(bench_dirs[1]) / "runs").glob(f"{row['run_key']}/result.json")).read_text())["config"]
            truths = load_ground_truth(Path(config["root"]))
    test = [t for t in truths.values() if t.split == "test"]
    assert int(rows[0]["clips_heldout"]) == sum(t.heldout for t in test) > 0  # the generator's marking
    table = (results / "cells.md").read_text()
    assert "| converged   | distinct captions   | collapsed   |" in table and "sem_exact_heldout" in table
    runs = json.loads((results / "cells.json").read_text())["runs"]
    assert {r["config"] for r in runs} >= {"s2vt-lstm", "s2vt-lstm-oracle"} and all("converged" in r for r in runs)


def test_generalisation_check_on_a_fresh_seed(bench_dirs):
    results, *_ = bench_dirs
    from benchmark.generalise import GENERALISATION_SEED

    data = json.loads((results / "generalisation.json").read_text())
    best = json.loads((results / "best" / "summary.json").read_text())
    assert data["seed"] == GENERALISATION_SEED != 0 and f"seed {GENERALISATION_SEED}" in data["data"]
    assert data["config"] == best["config"] and data["run_key"] == best["run_key"]
    assert data["all"]["n_a"] == data["in"]["n_a"] + data["heldout"]["n_a"]
    assert data["all"]["mean_b"] == pytest.approx(best["test"]["semantic"]["exact"])  # the committed split's


def test_a_region_model_is_checked_on_the_object_slots_it_read(bench_dirs, tmp_path):
    """The generalisation check and the model card of a best model that attends over regions use its
    own features (synth-slots on a fresh seed), not the main synth-cnn features it never read."""
    from benchmark.generalise import GENERALISATION_SEED, check_generalisation
    from benchmark.invocation import build_context
    from benchmark.selection import Choice, region_options, run_key

    _, cache, *_ = bench_dirs
    ctx = build_context(BenchOptions(suites=["attention"], profile="smoke", out=tmp_path, cache=cache))
    try:
        record = ctx.store.load(ctx.spec("attention", "lstm", 0, **region_options("attention-lstm-regions")))
        assert ctx.source_of(record).backbone == "synth-slots"
        result = check_generalisation(ctx, Choice("attention-lstm-regions", [record], run_key(record), record))
    finally:
        ctx.close()
    assert result is not None and result["config"] == "attention-lstm-regions"
    fresh = [json.loads(p.read_text()) for p in (cache / "features").glob("synth-slots-*/features.json")]
    assert len(fresh) == 2  # the benchmark's seed 0 and the generalisation seed
    reports = list((cache / "generalisation" / record.key).glob("predictions_test*.jsonl"))
    assert reports and f"seed {GENERALISATION_SEED}" in result["data"]


def test_report_from_real_results(bench_dirs):
    results, *_ = bench_dirs
    text = build_report(results)
    claims = text.split("## Claims", 1)[1].split("\n\n")[1].splitlines()[2:]
    assert len(claims) == len(CLAIMS)
    suites = {name: json.loads((results / f"{name}.json").read_text()) for name in REPORT_SUITES}
    for claim, line in zip(CLAIMS, claims):
        judged = judge(claim, suites)
        assert judged.verdict.name in line  # the table shows the verdict the rule gives
        if judged.comparison is not None:
            assert f"[{judged.comparison.ci_low:+.3f}, {judged.comparison.ci_high:+.3f}]" in line
    for name in REPORT_SUITES:
        assert f"## Suite `{name}`" in text
    assert "## Machine and versions" in text and "CPU:" in text and "torch" in text
    assert "vidcap-bench run" in text and "vidcap-bench report --results" in text
    for section in ("## Convergence", "## Collapsed configurations", "## Oracle ceiling", "## Generalisation check"):
        assert section in text
    convergence = text.split("## Convergence", 1)[1].split("## Collapsed", 1)[0]
    assert "reached before the last 30% of steps" in convergence  # the rule, from the runs
    assert re.search(r"^\| s2vt-lstm-oracle +\| 0 +\| \*\*no\*\* ", convergence, re.M)
    assert re.search(r"^\| s2vt-lstm-trainshuffled +\| 0 ", convergence, re.M)  # the run's own label
    assert "fewer than 3 validations after the plateau was reached" in convergence
    ceiling = text.split("## Oracle ceiling", 1)[1].split("## Generalisation", 1)[0]
    assert all(f"| {label} " in ceiling for label in ("s2vt-lstm", "attention-lstm"))
    # smoke runs never converge: no claim is judged from them
    assert "| **supported** |" not in text.split("## Claims", 1)[1].split("Verdict rule", 1)[0]
    assert "## About this run" not in text
    (results / "report_notes.md").write_text("Hand-written note.\n")
    try:
        assert "## About this run\n\nHand-written note.\n" in build_report(results)
    finally:
        (results / "report_notes.md").unlink()


SEEDS_CONFIGS = ["s2vt-lstm", "attention-lstm", "concepts-lstm", "concepts-lstm-input", "attention-lstm-consistency",
                 "attention-lstm-adversarial", "attention-lstm-scst", "attention-lstm-scst-semantic"]
SEEDS_CLAIMS = ("concepts_init", "concepts_vs_s2vt", "gan_quality", "gan_quality_meteor", "gan_diversity",
                "consistency_meteor", "consistency_bleu", "scst_cider")


def test_seeds_suite_writes_its_table_finetunes_and_claims(bench_dirs):
    results, cache, *_ = bench_dirs
    rows = read_csv(results / "seeds.csv")
    assert [r["config"] for r in rows] == SEEDS_CONFIGS  # one seed on smoke
    by_config = {r["config"]: r for r in rows}
    cells = {r["config"]: r["run_key"] for r in read_csv(results / "cells.csv")}
    assert by_config["s2vt-lstm"]["run_key"] == cells["s2vt-lstm"]  # the baselines are the other suites' runs
    parent = by_config["attention-lstm"]
    for label in ("attention-lstm-adversarial", "attention-lstm-scst", "attention-lstm-scst-semantic"):
        row = by_config[label]
        assert row["parent_key"] == parent["run_key"] and row["parent_converged"] == parent["converged"] == "False"
        stored = json.loads((cache / "runs" / row["run_key"] / "result.json").read_text())
        assert stored["parent"]["key"] == parent["run_key"] and stored["parent"]["converged"] is False
        assert stored["result"]["finetune"]["init_from"].endswith(f"{parent['run_key']}/train/best.pt")
        assert int(row["steps"]) == 4 and row["CIDEr"] != ""  # the smoke profile's fine-tune budget, evaluated
    methods = {label: json.loads((cache / "runs" / by_config[label]["run_key"] / "result.json").read_text())["result"]["finetune"]
               for label in ("attention-lstm-adversarial", "attention-lstm-scst", "attention-lstm-scst-semantic")}
    assert [(m["method"], m["reward"]) for m in methods.values()] == [
        ("adversarial", "discriminator"), ("scst", "cider"), ("scst", "semantic")]
    for row in rows:  # benchmark.diversity's columns on the run's own test captions
        assert 0 <= float(row["vocabulary"]) and float(row["distinct_captions"]) <= float(row["test_clips"])
    concepts = json.loads((cache / "runs" / by_config["concepts-lstm-input"]["run_key"] / "result.json").read_text())
    consistency = json.loads((cache / "runs" / by_config["attention-lstm-consistency"]["run_key"] / "result.json").read_text())
    assert concepts["config"]["concept_mode"] == "input" and consistency["config"]["semantic_consistency"] == 0.5
    text = (results / "seeds.md").read_text()
    assert "| fine-tune " in text and "| parent converged " in text and "selection rule picks" in text
    stored = json.loads((results / "seeds.json").read_text())
    for claim in (c for c in CLAIMS if c.id in SEEDS_CLAIMS):
        assert claim.suite == "seeds"
        if claim.per_seed:  # diversity per seed: a CI needs 3 seeds, smoke has 1
            assert claim.comparison not in stored["comparisons"] and judge(claim, {"seeds": stored}).verdict.name == "not measured"
        else:
            assert claim.comparison in stored["comparisons"]
            assert judge(claim, {"seeds": stored}).verdict.name == NOT_JUDGED  # smoke runs never converge
    assert {c.id for c in CLAIMS} >= set(SEEDS_CLAIMS)
    report = build_report(results)
    assert "## Suite `seeds`" in report and re.search(r"^\| concepts-lstm +\| concepts-lstm-input +\| CIDEr ", report, re.M)


def test_best_exports_the_seeds_suite_checkpoints_for_the_demo(bench_dirs, tmp_path):
    """Own results folder: other tests rerun `--suite cells` into the shared one, which rewrites its index."""
    _, cache, *_ = bench_dirs
    from benchmark.best import export_best
    from benchmark.invocation import build_context
    from benchmark.suites import seeds

    out = tmp_path / "results"
    ctx = build_context(BenchOptions(suites=["seeds"], profile="smoke", out=out, cache=cache))
    try:
        ctx.executor.ensure("seeds", seeds.plan(ctx))  # finished by the fixture: loaded, not trained
        choice = export_best(ctx, "vidcap-bench run --suite seeds")
    finally:
        ctx.close()
    assert choice is not None and choice.label in ("s2vt-lstm", "attention-lstm")  # only the grid is ranked
    index = json.loads((out / "checkpoints" / "index.json").read_text())
    assert set(index) == set(SEEDS_CONFIGS)
    for label in SEEDS_CONFIGS:  # under the suite's labels, which the demo's compare view knows
        assert index[label]["ranked"] is (label in grid_labels()) and (out / "checkpoints" / f"{label}.pt").is_file()
    assert index["attention-lstm-scst"]["parent"] == "attention-lstm" and index["attention-lstm-scst"]["parent_converged"] is False
    assert "parent" not in index["concepts-lstm"]


def test_seeds_runs_are_cached_with_their_parents(bench_dirs):
    """A second invocation plans the same keys (fine-tunes included) and finds every run finished."""
    results, cache, *_ = bench_dirs
    from benchmark.invocation import build_context
    from benchmark.suites import seeds

    ctx = build_context(BenchOptions(suites=["seeds"], profile="smoke", out=results, cache=cache))
    planned = seeds.plan(ctx)
    assert count_pending(ctx.store, planned) == (len(SEEDS_CONFIGS), 0)
    child = next(spec for spec in planned if spec.label == "attention-lstm-scst")
    assert child.stage is not None and child.stage.parent.label == "attention-lstm"
    assert child.config.lr == pytest.approx(ctx.spec("attention", "lstm", 0).config.lr * 0.1)  # FINETUNE_LR_FACTOR
    records = ctx.executor.ensure("seeds", [child])  # loads, trains nothing
    assert records[child.key].parent["key"] == child.stage.parent.key and ctx.executor.tally["seeds"] == [0, 2]  # the child and its parent, reused


def test_a_finetune_trains_its_parent_first_and_resumes(bench_dirs, tmp_path):
    """RunStore.train on a fine-tune whose parent is not finished trains the parent, then the fine-tune;
    a fine-tune cut short after its last save (no result.json) is finished from its last.pt, not retrained."""
    _, cache, *_ = bench_dirs
    from benchmark.invocation import build_context

    ctx = build_context(BenchOptions(suites=["seeds"], profile="smoke", out=tmp_path / "results", cache=cache))
    store = RunStore(tmp_path / "runs")  # empty: neither run exists there
    parent = ctx.spec("s2vt", "lstm", 0, max_steps=10, val_every_steps=5)
    child = ctx.finetune_spec(parent, "scst", "-scst", reward="cider")
    record = store.train(child)
    assert store.is_finished(parent) and store.load(parent).best_checkpoint is not None
    assert record.parent["key"] == parent.key and record.result["steps_done"] == 4
    assert record.result["finetune"]["init_sha256"]  # started from the parent's best.pt
    (store.dir(child) / "result.json").unlink()  # as if cut short after its last save
    again = store.train(child)
    assert again.result["steps_done"] == 4 and again.result["best_val"] == record.result["best_val"]
    assert again.history == record.history  # no step trained twice


def test_diversity_of_hand_made_captions():
    from benchmark.diversity import caption_diversity, distinct_ratio, ngrams

    found = caption_diversity(["A red circle moves left.", "a red circle moves left", "a blue square", "square"])
    # tokens: [a red circle moves left] x2, [a blue square], [square]: 14 words, 7 distinct; 10 bigrams, 6 distinct
    assert (found.captions, found.distinct_captions, found.vocabulary) == (4, 3, 7)
    assert found.distinct_1 == pytest.approx(7 / 14) and found.distinct_2 == pytest.approx(6 / 10)
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")] and ngrams(["a"], 2) == []
    assert distinct_ratio([["a", "b"], ["b", "a"]], 2) == 1.0  # n-grams never cross captions
    same = caption_diversity(["a dog runs"] * 5)
    assert (same.distinct_captions, same.vocabulary) == (1, 3) and same.distinct_2 == pytest.approx(2 / 10)
    empty = caption_diversity(["", "one"])
    assert empty.vocabulary == 1 and empty.distinct_1 == 1.0 and math.isnan(empty.distinct_2)


# ----------------------------------------------------------------------------- CLI


def test_cli_run_and_report(bench_dirs):
    results, cache, *_ = bench_dirs
    runner = CliRunner()
    done = runner.invoke(app, ["run", "--suite", "cells", "--profile", "smoke", "--out", str(results), "--cache", str(cache)])
    assert done.exit_code == 0, done.output
    assert "0 of 6 runs trained now" in done.output
    done = runner.invoke(app, ["report", "--results", str(results)])
    assert done.exit_code == 0, done.output
    report = (results / "REPORT.md").read_text()
    assert report.startswith("# vidcap benchmark report")

    readme = results.parent / "README.md"
    readme.write_text(f"# intro\n\n{README_START}\nold table\n{README_END}\n\nmore text\n")
    done = runner.invoke(app, ["report", "--results", str(results), "--readme", str(readme)])
    assert done.exit_code == 0, done.output
    text = readme.read_text()
    assert "old table" not in text and text.endswith(f"{README_END}\n\nmore text\n")
    table = text.split(README_START)[1].split(README_END)[0].strip()
    assert re.match(r"\| claim +\| where +\|", table) and table in report
    readme.write_text("no markers\n")
    done = runner.invoke(app, ["report", "--results", str(results), "--readme", str(readme)])
    assert done.exit_code == 2 and "claims table" in done.output and readme.read_text() == "no markers\n"


def test_verify_retrains_the_cheapest_run_and_finds_the_committed_numbers(bench_dirs, tmp_path):
    results, *_ = bench_dirs
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    runner = CliRunner()
    done = runner.invoke(app, ["verify", "--results", str(copy), "--runs", "1", "--cache", str(tmp_path / "fresh")])
    assert done.exit_code == 0, done.output
    assert "compared numbers of 1 run(s) reproduced" in done.output
    assert len(list((tmp_path / "fresh" / "runs").glob("*/result.json"))) == 1  # trained from scratch there
    # a committed number that this code does not give is reported, and the command fails
    key = re.search(r"\| ([0-9a-f]{16}) \|", done.output).group(1)
    for path in copy.glob("*.csv"):
        table = pd.read_csv(path)
        if "run_key" in table:
            table.loc[table["run_key"] == key, "steps"] += 10
            table.to_csv(path, index=False)
    done = runner.invoke(app, ["verify", "--results", str(copy), "--runs", "1", "--cache", str(tmp_path / "fresh")])
    assert done.exit_code == 1 and "differ" in done.output, done.output


def test_rekey_rewrites_recorded_keys_to_this_codes_keys(bench_dirs, tmp_path):
    results, cache, *_ = bench_dirs
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    assert rekey_results(copy, cache, say=lambda _: None) == {}  # keys already current: nothing to do
    key = read_csv(copy / "cells.csv")[0]["run_key"]
    stale = "0123456789abcdef"
    for path in (copy / "cells.csv", copy / "cells.json"):
        path.write_text(path.read_text().replace(key, stale))
    assert rekey_results(copy, cache, say=lambda _: None) == {stale: key}
    assert (copy / "cells.csv").read_text() == (results / "cells.csv").read_text()
    assert stale not in (copy / "cells.json").read_text()


def test_cli_errors_are_clear(tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, [])
    assert "run" in done.output and "report" in done.output and "perf" in done.output
    done = runner.invoke(app, ["run", "--suite", "nope", "--out", str(tmp_path)])
    assert done.exit_code == 2 and "unknown suite nope" in done.output
    done = runner.invoke(app, ["run", "--suite", "cells", "--dataset", "msvd", "--out", str(tmp_path)])
    assert done.exit_code == 2 and "needs --root" in done.output
    done = runner.invoke(app, ["report", "--results", str(tmp_path / "missing")])
    assert done.exit_code == 2 and "does not exist" in done.output
    assert not (tmp_path / "REPORT.md").exists()


# ----------------------------------------------------------------------------- real data formats


def write_msvd_fixture(root: Path, make_video) -> list[str]:
    """A tiny MSVD copy: YouTubeClips/<key>.avi (MPEG-4 in AVI, as the real archive) + the corpus CSV."""
    clips = root / "YouTubeClips"
    clips.mkdir(parents=True)
    rng = np.random.default_rng(0)
    keys, lines = [], ["VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,Description"]
    words = ["a man is cooking", "a cat plays with a ball", "someone slices a tomato", "a dog runs on grass"]
    for i in range(8):
        key = f"vid{i:02d}abcdEF_{i}_{i + 5}"
        frames = rng.integers(0, 255, size=(12, 48, 64, 3), dtype=np.uint8)
        make_video(clips / f"{key}.avi", frames, codec="mpeg4", pix_fmt="yuv420p")
        keys.append(key)
        for j in range(3):
            lines.append(f'vid{i:02d}abcdEF,{i},{i + 5},{j},clean,10,English,"{words[(i + j) % 4]}, quickly"')
        lines.append(f"vid{i:02d}abcdEF,{i},{i + 5},9,clean,10,German,ein Mann kocht")
    (root / "MSR Video Description Corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return keys


@pytest.mark.slow  # ~1 min: resnet18 features of real-format AVI clips, then the cells suite
def test_real_msvd_format_with_resnet18(tmp_path, make_video):
    import torchvision

    root = tmp_path / "msvd"
    write_msvd_fixture(root, make_video)
    weights = tmp_path / "resnet18-random.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    out, cache = tmp_path / "results", tmp_path / "cache"
    done = CliRunner().invoke(app, ["run", "--suite", "cells", "--profile", "smoke", "--dataset", "msvd", "--root", str(root),
                                    "--backbone", "resnet18", "--weights", str(weights), "--out", str(out), "--cache", str(cache)])
    assert done.exit_code == 0, done.output
    rows = read_csv(out / "cells.csv")
    assert len(rows) == 3 and all(r["CIDEr"] != "" for r in rows)
    assert "sem_exact" not in rows[0]  # no semantic checker outside SynthClips
    manifest = json.loads((out / "bench_run.json").read_text())["invocations"][-1]
    assert manifest["dataset"].startswith("msvd at") and "resnet18" in manifest["features"]
    features = json.loads(next((cache / "features").glob("resnet18-*/features.json")).read_text())
    assert features["weights"].startswith("sha256:") and features["frame_size"] == [224, 224]
