"""One smoke `vidcap-bench run` of the report suites on SynthClips tiny (built once for the file), and what is
checked on it: the runner and its cache (runner.py, invocation.py), the suites' files, the best model and its
card (best.py, demo_examples.py, generalise.py), REPORT.md (report/), the seeds suite's fine-tunes, and the
CLI's run, report, verify and rekey over those results (cli.py, verify.py).

The runs train real (tiny) models on real generated clips with the `smoke` profile (1 seed, 20 steps, hidden
size 16): the numbers mean nothing, the files, skips and verdict logic are checked. Keep the tests that read
this run in this file: CI runs `pytest -n 2 --dist loadfile`, so a second file would build it a second time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from benchmark.claims import CLAIMS, judge
from benchmark.cli import app
from benchmark.invocation import BenchOptions, run_benchmark
from benchmark.perf_training import run_time_table
from benchmark.report import README_END, README_START, build_report
from benchmark.runner import EvalRequest, RunRecord, RunStore, count_pending
from benchmark.selection import grid_labels
from benchmark.stats import (
    NOT_JUDGED,
    is_collapsed,
)
from benchmark.verify import rekey_results
from vidcap_core.files import json_safe


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPORT_SUITES = ["cells", "attention", "temporal", "gradients", "seeds", "beam"]


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


def test_every_planned_run_trains_ahead_of_the_suites_and_counts_for_the_first_that_needs_it(bench_dirs):
    results, _, summary, log = bench_dirs
    first_suite_done = log.index("suite cells done")
    assert log[:first_suite_done].count(" training ... ") == summary.runs_trained > 0  # one pool, before any suite
    assert " training ... " not in log[first_suite_done:]
    trained = {name: json.loads((results / f"{name}.json").read_text())["runs_trained"] for name in REPORT_SUITES}
    assert sum(trained.values()) == summary.runs_trained and trained["cells"] == 6  # credited once each


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
    for row in rows:  # evaluation.diversity's columns on the run's own test captions
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
    from benchmark.checkpoint_index import describe
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
    for label in SEEDS_CONFIGS:  # under the suite's labels, with the title and column the demo's Compare view shows
        assert index[label]["ranked"] is (label in grid_labels()) and (out / "checkpoints" / f"{label}.pt").is_file()
        assert {key: index[label][key] for key in ("title", "compare_column")} == describe(label)
        assert index[label]["data"].startswith("SynthClips") and index[label]["features"]
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


def test_run_time_splits_every_finished_run_of_the_cache(bench_dirs, tmp_path):
    _, cache, summary, _ = bench_dirs
    done = CliRunner().invoke(app, ["run-time", "--runs", str(cache / "runs"), "--out", str(tmp_path / "t.md")])
    assert done.exit_code == 0, done.output
    text = (tmp_path / "t.md").read_text()
    assert "validation share" in text and "| s2vt-lstm " in text
    table = run_time_table(cache / "runs")
    mle_runs = [p for p in (cache / "runs").glob("*/result.json") if "finetune" not in json.loads((p.parent / "spec.json").read_text())]
    assert table["runs"].sum() == len(mle_runs)
    walls = sum(json.loads(p.read_text())["wall_seconds"] for p in mle_runs)
    assert table["wall s"].sum() == pytest.approx(walls)  # the parts add up to each run's whole train() call
    empty = CliRunner().invoke(app, ["run-time", "--runs", str(tmp_path / "nothing")])
    assert empty.exit_code != 0 and "no finished training run" in empty.output


def test_run_time_counts_a_resumed_runs_set_up_from_its_last_call_only(bench_dirs, tmp_path):
    _, cache, _, _ = bench_dirs
    source = next(p.parent for p in sorted((cache / "runs").glob("*/result.json"))
                  if "finetune" not in json.loads((p.parent / "spec.json").read_text()))
    result = json.loads((source / "result.json").read_text())
    assert result["resumed_at_step"] == 0  # trained in one call
    rows = [json.loads(line) for line in (source / "train" / "log.jsonl").read_text().splitlines()]
    first_step, later = rows[0]["step"], sum(r["seconds"] for r in rows[1:])
    runs = tmp_path / "runs"
    shutil.copytree(source, runs / "resumed")
    resumed = {**result, "wall_seconds": later + 2.0, "resumed_at_step": first_step}  # the call after the 1st interval
    (runs / "resumed" / "result.json").write_text(json.dumps(resumed))
    table = run_time_table(runs)
    assert table["resumed"].sum() == 1
    assert table["set-up, data loading, OOD calibration s"].sum() == pytest.approx(2.0)
    assert table["wall s"].sum() == pytest.approx(sum(r["seconds"] for r in rows) + 2.0)
    # recorded before the field existed: known resumed only when its logged intervals outlast its wall time
    legacy = {**{k: v for k, v in resumed.items() if k != "resumed_at_step"}, "wall_seconds": later}
    (runs / "resumed" / "result.json").write_text(json.dumps(legacy))
    table = run_time_table(runs)
    assert table["resumed"].sum() == 1 and table["set-up, data loading, OOD calibration s"].sum() == 0.0
