"""The beam suite's claim seeds, trained after the plan was counted: the beam claim reads the configuration
chosen on validation, which gets the claim seeds (benchmark/suites/beam.py `choose_with_claim_seeds`) once it
has been chosen, so the executor counts them when the suite asks for them (`Executor.count_unplanned`). A
smoke `vidcap-bench run --suite beam --claim-seeds 2` on SynthClips tiny (real tiny runs; the numbers mean
nothing) checks that the progress lines and bench_run.json count those runs too."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace

import torch

from benchmark.invocation import BenchOptions, run_benchmark
from benchmark.profiles import PROFILES
from benchmark.selection import grid_labels


def test_runs_the_beam_suite_adds_are_counted_in_its_progress_and_manifest(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    # every candidate planned with one seed, so whichever is chosen gets its second claim seed in the suite
    one_seed = {label: 1 for label in grid_labels()}
    monkeypatch.setitem(PROFILES, "smoke", replace(PROFILES["smoke"], config_seeds=one_seed))
    log = io.StringIO()
    summary = run_benchmark(BenchOptions(suites=["beam"], profile="smoke", claim_seeds=2, out=tmp_path / "out",
                                         cache=tmp_path / "cache"), stream=log)
    trained_dirs = [d for d in (tmp_path / "cache" / "runs").iterdir() if (d / "result.json").is_file()]
    counts = [(int(done), int(total)) for done, total in re.findall(r"^\[ *(\d+)/(\d+)\]", log.getvalue(), re.M)]
    first_total = counts[0][1]
    assert summary.runs_total == summary.runs_trained == len(trained_dirs) > first_total  # seeds added after the plan
    assert all(done <= total for done, total in counts)  # before: "[ 64/63]"
    manifest = json.loads((tmp_path / "out" / "bench_run.json").read_text())["invocations"][-1]
    assert (manifest["runs_total"], manifest["runs_trained"]) == (len(trained_dirs), len(trained_dirs))
