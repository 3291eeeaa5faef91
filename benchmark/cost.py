"""`vidcap-bench estimate`: what a profile would cost, before running it, from a results folder's measured runs.

Every run the chosen suites plan (each distinct run key once, in the suite that trains it first, as
`vidcap-bench run` does) is matched to a measured run of the results folder by label (`measured_basis`:
the same label, else the label with its last `-part`s dropped, e.g. `s2vt-rnn-noclip` -> `s2vt-rnn`,
`attention-lstm-regions-oracle-4x` -> `attention-lstm-regions-oracle`, else a measured run of the same
architecture). Its expected steps: the measured steps when the measured run stopped on a plateau (or
diverged) within the planned budget, else the planned budget (a run that ran out of budget may stop
earlier under a larger one: an upper bound). Its seconds: the measured seconds per step (training and
validation, `train_seconds` of the suite CSVs) x expected steps / `speedup`.

Every planned run trains before the suites run, in one pool `jobs` at a time, longest budget first
(runner.executor.training_order; fine-tunes after every run from scratch), which `makespan` simulates:
the TOTAL row's training minutes; a suite's row shows its runs' own minutes. To that come the data
preparation (generation and feature extraction at the measured rates below, of the clips no set made before holds: grown sets
share their first clips, benchmark.prepare links them) and the evaluations (test decoding,
scoring, bootstraps) at EVAL_SECONDS each, and END_SECONDS for the best model's export and the
generalisation check. With a cache (`estimate --cache`: a `run` resuming there), a run finished in it costs
nothing, an interrupted one only the steps its log has not reached, and a data set or feature cache
marked complete nothing to prepare. The constants are measured on this 2-core machine from the committed logs of the
full profile (results/logs/full_profile_part1.log, _part2.log: 1 seed, --jobs 2, issue #19's round):
- GENERATE_CLIPS_PER_S: "generated SynthClips long, 600 clips (seed 0) in 4 s" (3000 standard clips ~20 s);
- EXTRACT_FRAMES_PER_S: the "extracted ... features" lines (3000 clips x 32 frames: synth-cnn 50 s, synth-slots
  33 s, oracle 4 s, random 32 s);
- EVAL_SECONDS: suite wall time minus the simulated training makespan (the logged run times) minus extraction,
  over the evaluations each suite made: cells 45 s / 6, attention 63 s / 8, temporal 69 s / 13, beam 36 s / 5,
  seeds 47 s / 8: 260 s over 40 evaluations, about 6.5 s each;
- END_SECONDS: the best model's export, demo examples and the generalisation check (fresh set, its features
  and evaluation) of the final invocation over the finished cache.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.invocation import BenchOptions, build_context
from benchmark.prepare import ORACLE_BACKBONE, FeatureSource, is_complete, without_multiplier
from benchmark.runner import RunSpec
from benchmark.runner.store import RunStore, last_logged_step
from benchmark.suites import SUITES
from benchmark.suites.context import BenchContext
from vidcap_core.errors import ConfigError

GENERATE_CLIPS_PER_S = 150.0
EXTRACT_FRAMES_PER_S = {"synth-cnn": 1947.0, "synth-slots": 2937.0, ORACLE_BACKBONE: 28537.0, "random": 2999.0}
DEFAULT_FRAMES_PER_S = 1947.0  # another backbone: synth-cnn's rate
EVAL_SECONDS = 6.5
END_SECONDS = 90.0
EXTRA_TEST_ORDERS = {"temporal": 2}  # each ordered-trained model is also tested shuffled and reversed
STOPPED_EARLY = ("plateau", "diverged")  # a measured run that stopped before its budget


@dataclass(frozen=True)
class Measured:
    """One measured run: its label, steps, why it stopped, and its training + validation seconds."""

    label: str
    steps: int
    stop_reason: str
    seconds: float

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.steps


def measured_runs(results: Path) -> dict[str, Measured]:
    """The runs of every `<suite>.csv` in `results` with their training seconds, by run label (seed 0 first)."""
    frames = [pd.read_csv(path) for path in sorted(Path(results).glob("*.csv"))]
    rows = [f for f in frames if {"run_label", "steps", "train_seconds"} <= set(f.columns)]
    if not rows:
        raise ConfigError(f"{results} holds no suite CSV with run_label, steps and train_seconds: point --results at "
                          "a folder `vidcap-bench run` wrote")
    table = pd.concat(rows, ignore_index=True).dropna(subset=["run_label", "steps", "train_seconds"])
    table = table[table["steps"] > 0].sort_values("seed", kind="stable").drop_duplicates("run_label")
    return {str(r.run_label): Measured(str(r.run_label), int(r.steps), str(r.stop_reason), float(r.train_seconds))
            for r in table.itertuples()}


def measured_basis(label: str, arch: str, measured: dict[str, Measured]) -> Measured | None:
    """The measured run a planned run is costed on (see the module docstring); None when nothing fits."""
    parts = label.split("-")
    for end in range(len(parts), 1, -1):
        found = measured.get("-".join(parts[:end]))
        if found is not None:
            return found
    return next((m for name, m in sorted(measured.items()) if name.startswith(f"{arch}-")), None)


def makespan(durations: Sequence[float], jobs: int) -> float:
    """Wall time of `durations` run `jobs` at a time, each started in order on the first free worker."""
    workers = [0.0] * max(1, min(jobs, len(durations) or 1))
    for seconds in durations:
        workers[workers.index(min(workers))] += seconds
    return max(workers)


def pool_seconds(runs: pd.DataFrame, jobs: int) -> float:
    """Wall seconds of training every planned run as `vidcap-bench run` does (Executor.train_ahead): the runs
    from scratch, longest budget first, then the fine-tunes, `jobs` at a time."""
    seconds = 0.0
    for _, wave in runs.groupby("finetune", sort=True):  # False (from scratch) first
        ordered = wave.sort_values("budget", ascending=False, kind="stable")
        seconds += makespan(list(ordered["seconds"]), jobs)
    return seconds


def planned_runs(ctx: BenchContext, suites: Sequence[str]) -> list[tuple[str, RunSpec]]:
    """(suite, spec) of every distinct run, in the suite that would train it first."""
    seen: set[str] = set()
    out = []
    for name in suites:
        for spec in SUITES[name].plan(ctx):
            if spec.key not in seen:
                seen.add(spec.key)
                out.append((name, spec))
    return out


def run_rows(planned: list[tuple[str, RunSpec]], measured: dict[str, Measured], speedup: float,
             store: RunStore | None = None) -> pd.DataFrame:
    """One row per planned run: suite, label, seed, budget, expected steps, the steps left to train (all
    of them without `store`; none for a run finished there, those past its logged step for an interrupted
    one) and their seconds, and the basis they were costed on."""
    rows = []
    for suite, spec in planned:
        basis = measured_basis(spec.label, spec.config.arch, measured)
        budget = spec.config.max_steps
        if basis is None:
            raise ConfigError(f"no measured run to cost {spec.label} on: the results folder has no {spec.config.arch} run")
        stopped = basis.stop_reason in STOPPED_EARLY and basis.steps <= budget
        steps = basis.steps if stopped else budget
        left = steps if store is None else steps_left(store, spec, steps)
        rows.append({"suite": suite, "config": spec.label, "seed": spec.seed, "budget": budget, "steps": steps,
                     "steps left": left, "seconds": basis.seconds_per_step * left / speedup, "basis": basis.label,
                     "basis_steps": basis.steps, "basis_stop": basis.stop_reason,
                     "finetune": spec.stage is not None, "key": spec.key})
    return pd.DataFrame(rows)


def steps_left(store: RunStore, spec: RunSpec, steps: int) -> int:
    """Of a run's expected `steps`, those a `run` over `store` would still train (an interrupted run
    resumes from its last validation, which its log's last row records)."""
    if store.is_finished(spec):
        return 0
    return max(0, steps - last_logged_step(store.dir(spec) / "train" / "log.jsonl"))


def preparation_seconds(sources: Sequence[FeatureSource], covered: dict[str, int]) -> float:
    """Generating and extracting the clips of `sources` that no earlier source of the same base set covered:
    sets grown from one preset and seed share their first clips (benchmark.prepare links them), so a set
    costs only the clips beyond the largest one made before, and one already complete in the cache nothing.
    `covered` (base identity -> clips made) is updated."""
    seconds = 0.0
    for source in sources:
        clips = data_clips(source)
        data_key = json.dumps(without_multiplier(source.dataset.identity()), sort_keys=True, default=str)
        feature_key = json.dumps(without_multiplier(source.identity()), sort_keys=True, default=str)
        if is_complete(source.dir) and is_complete(source.dataset.root):  # made: a larger set grown later shares it
            covered[data_key] = max(clips, covered.get(data_key, 0))
            covered[feature_key] = max(clips, covered.get(feature_key, 0))
            continue
        if source.dataset.synth_preset is not None:
            seconds += max(0, clips - covered.get(data_key, 0)) / GENERATE_CLIPS_PER_S
            covered[data_key] = max(clips, covered.get(data_key, 0))
        new = max(0, clips - covered.get(feature_key, 0))
        covered[feature_key] = max(clips, covered.get(feature_key, 0))
        seconds += new * source.num_frames / EXTRACT_FRAMES_PER_S.get(source.backbone, DEFAULT_FRAMES_PER_S)
    return seconds


def data_clips(source: FeatureSource) -> int:
    """Clips of a generated SynthClips set (the preset's, grown by its multiplier); 0 for other data."""
    data = source.dataset
    if data.synth_preset is None:
        return 0
    from vidcap_core.synth.config import resolve_config
    from vidcap_core.synth.generator import grown_roles

    return len(grown_roles(resolve_config(data.synth_preset, data.synth_clips), data.synth_seed, data.synth_train_multiplier))


def evaluations(ctx: BenchContext, suite: str, specs: list[RunSpec]) -> int:
    """Distinct test evaluations a suite makes (a run evaluated the same way by another suite is cached)."""
    if suite == "gradients":
        return 0
    if suite == "beam":  # the best configuration's seeds at every beam size (assumed a claim configuration)
        return len(ctx.profile.beams) * len(ctx.claim_seeds or ctx.seeds)
    return len(specs) * (1 + EXTRA_TEST_ORDERS.get(suite, 0))


def estimate(options: BenchOptions, results: Path, speedup: float = 1.0,
             resume: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-run rows, per-suite totals with a final TOTAL row) of `options`' invocation, costed on the runs
    measured in `results`: from an empty cache, or with `resume` from what `options.cache` holds already.
    Nothing is trained, generated or extracted."""
    if speedup <= 0 or not math.isfinite(speedup):
        raise ConfigError(f"--speedup {speedup} must be a positive number (2: steps twice as fast as measured)")
    ctx = build_context(options)
    names = options.resolved_suites()
    store = ctx.store if resume else None
    runs = run_rows(planned_runs(ctx, names), measured_runs(results), speedup, store)
    totals = []
    evaluated: set[str] = set()  # run keys evaluated on the default request already
    prepared: set[Path] = set()  # feature caches an earlier suite prepared
    covered: dict[str, int] = {}  # clips made so far per base set (preparation_seconds)
    for name in names:
        mine = runs[runs["suite"] == name]
        specs = SUITES[name].plan(ctx)
        fresh = [s for s in specs if s.key not in evaluated or name in EXTRA_TEST_ORDERS]
        evaluated.update(s.key for s in specs)
        sources = [s for s in {spec.features.dir: spec.features for spec in specs}.values() if s.dir not in prepared]
        prepared.update(s.dir for s in sources)
        evals = evaluations(ctx, name, fresh)
        totals.append({"suite": name, "runs": len(mine), "run minutes": mine["seconds"].sum() / 60,
                       "preparation minutes": preparation_seconds(sources, covered) / 60,
                       "evaluations": evals, "evaluation minutes": evals * EVAL_SECONDS / 60})
    totals.append({"suite": "best model, generalisation", "runs": 0, "run minutes": 0.0,
                   "preparation minutes": 0.0, "evaluations": 0, "evaluation minutes": END_SECONDS / 60})
    table = pd.DataFrame(totals)
    table["training minutes"] = 0.0  # a suite trains nothing itself: every run trains ahead, in one pool
    table["wall minutes"] = table["preparation minutes"] + table["evaluation minutes"]
    training = pool_seconds(runs, options.jobs) / 60
    total = {"suite": "TOTAL", **{c: table[c].sum() for c in table.columns if c != "suite"},
             "training minutes": training}
    total["wall minutes"] += training
    return runs, pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def config_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: seeds, budget, expected steps per run, minutes per run and in all, and its basis."""
    grouped = runs.groupby(["suite", "config"], sort=False)
    return pd.DataFrame({
        "seeds": grouped["seed"].nunique(), "budget": grouped["budget"].first(), "steps": grouped["steps"].first(),
        "minutes per run": grouped["seconds"].first() / 60, "minutes": grouped["seconds"].sum() / 60,
        "measured on": [f"{b} ({s} steps, {r})" for b, s, r in zip(grouped["basis"].first(), grouped["basis_steps"].first(),
                                                                      grouped["basis_stop"].first())],
    }).reset_index()
