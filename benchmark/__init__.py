"""vidcap-bench: regenerate the report's comparisons as tables, figures and claim verdicts.

Which module runs what:
  cli.py          the Typer app `vidcap-bench` (run, report, verify, rekey, perf, robustness, ood, index): parses, calls, prints
  invocation.py   one `vidcap-bench run`: prepare data, plan every suite's runs, run the suites,
                  export the best model, append to bench_run.json (`run_benchmark(BenchOptions)`)
  runner/         the training runs: spec.py (RunSpec and its key on config, data and numerics versions),
                  records.py, store.py (RunStore: the cache of runs, cached evaluations), progress.py,
                  executor.py (Executor: trains what is missing, in parallel with --jobs),
                  ray_executor.py (RayExecutor: the same runs as Ray tasks, --executor ray; docs/ray.md)
  suites/         one module per comparison (perception, cells, attention, data, temporal, gradients,
                  backbone, length, seeds, beam), each `plan(ctx)` + `run(ctx) -> SuiteResult`; shared pieces by job:
                  context.py (BenchContext), groups.py (train and evaluate seeds of a config),
                  rows.py (one row per run), compare.py (paired comparisons), results.py
                  (SuiteResult -> <suite>.csv/.md/.json)
  tables.py       DataFrame tables: seed summaries (groupby), per-seed pivots, markdown, CSV
  stats.py        bootstraps, seed summaries and the verdict rule; claims.py the claims judged
  report/         REPORT.md from a results folder, by job: verdicts (claims table, how each was decided),
                  runs (convergence, collapse, ceiling, generalisation, seeds), manifest (cost, machine,
                  commands), build (REPORT.md, the README's claims table); best.py the best model and its card;
                  checkpoint_index.py what index.json says of each exported checkpoint (title,
                  Compare-view column, data, features: what the demo reads);
                  selection.py how the best configuration is chosen on validation (the training
                  loop's selection key); generalise.py the best model on a fresh SynthClips seed;
                  demo_examples.py the best model on the demo's bundled examples
  prepare.py      SynthClips and features for the runs; identity.py the keys (numerics versions,
                  torch, device, threads); verify.py `verify` and `rekey` of a results folder;
                  profiles.py quick / full / smoke; machine.py the machine description; cost.py
                  `estimate` (a profile's cost from a results folder's measured runs)
  figures.py      matplotlib figures
  perf/           `vidcap-bench perf`, by job: timing (the harness), clips, measure (the stages),
                  demo_server (the real demo's latency), cpu (/proc accounting), report (perf.md), run
  perf_training.py, perf_tracking.py   `vidcap-bench perf-training` (a training step against the machine's
                  limit and another revision) and `perf-tracking` (synth-slots' tracker against another revision's)
  robustness/     `vidcap-bench robustness`: cases, drivers, load_test, report, run
  ood/            `vidcap-bench ood`: patterns (generated videos), scoring, report
"""
