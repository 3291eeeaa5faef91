"""vidcap-bench: run keys, the verdict rule, the runner on SynthClips tiny, the report, the CLI, real-data formats.

The runner tests train real (tiny) models on real generated clips with the `smoke` profile (1 seed,
1 epoch, hidden size 16): the numbers mean nothing, the files, skips and verdict logic are checked.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from benchmark.claims import CLAIMS, Claim, judge
from benchmark.cli import app
from benchmark.identity import stable_hash
from benchmark.invocation import BenchOptions, run_benchmark
from benchmark.prepare import DatasetSource, FeatureSource
from benchmark.report import README_END, README_START, build_report
from benchmark.runner import EvalRequest, RunRecord, RunSpec, RunStore
from benchmark.stats import Comparison, compare_per_video, summarise_seeds, verdict
from vidcap_core.errors import ConfigError
from vidcap_core.files import json_safe
from vidcap_core.training.config import TrainConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPORT_SUITES = ["cells", "attention", "temporal", "gradients", "beam"]


def comparison(diff: float, low: float, high: float, mean_b: float = 1.0) -> Comparison:
    return Comparison(a="A", b="B", metric="CIDEr", mean_a=mean_b + diff, mean_b=mean_b, diff=diff, ci_low=low,
                      ci_high=high, p_value=0.5, n=10, unit="videos", n_resamples=1000, method="test")


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
    assert sorted(r["config"] for r in rows) == ["s2vt-gru", "s2vt-lstm", "s2vt-rnn"]
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
    assert json.loads((results / "attention.json").read_text())["runs_reused"] == 3  # the three s2vt runs


def test_rerun_skips_finished_runs(bench_dirs):
    results, cache, first, _ = bench_dirs
    before = (results / "cells.csv").read_text()
    log = io.StringIO()
    again = run_benchmark(BenchOptions(suites=["cells"], profile="smoke", out=results, cache=cache), stream=log)
    assert again.runs_total == 3 and again.runs_trained == 0
    assert log.getvalue().count("finished earlier: skipped") == 3
    assert (results / "cells.csv").read_text() == before  # same runs, same cached evaluations, same rows


def test_a_semantic_slot_no_caption_touched_is_null_on_disk_and_nan_in_memory(bench_dirs):
    """Regression: a model that never states an order left semantic["order"] NaN, and writing the
    cached evaluation (strict JSON) crashed the length suite of the full profile."""
    _, cache, *_ = bench_dirs
    store = RunStore(cache / "runs")
    run = next(d for d in sorted((cache / "runs").iterdir()) if (d / "result.json").is_file())
    payload = json.loads(next(run.glob("evals/test-beam1-ordered.json")).read_text())
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
    best_val = max(entry["val_CIDEr"] for entry in index.values())
    assert index[summary["config"]]["val_CIDEr"] == pytest.approx(best_val)  # one seed: best config = best run
    assert summary["val"]["CIDEr"] == pytest.approx(best_val)
    assert (results / "best" / "model.pt").stat().st_size > 0
    card = (results / "best" / "MODEL_CARD.md").read_text()
    assert "validation" in card and "vidcap caption" in card and "vidcap-bench run" in card
    for entry in index.values():
        assert entry["file"] is None or (results / "checkpoints" / entry["file"]).is_file()


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
    assert "## About this run" not in text
    (results / "report_notes.md").write_text("Hand-written note.\n")
    try:
        assert "## About this run\n\nHand-written note.\n" in build_report(results)
    finally:
        (results / "report_notes.md").unlink()


# ----------------------------------------------------------------------------- CLI


def test_cli_run_and_report(bench_dirs):
    results, cache, *_ = bench_dirs
    runner = CliRunner()
    done = runner.invoke(app, ["run", "--suite", "cells", "--profile", "smoke", "--out", str(results), "--cache", str(cache)])
    assert done.exit_code == 0, done.output
    assert "0 of 3 runs trained now" in done.output
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
