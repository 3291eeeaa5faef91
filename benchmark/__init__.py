"""vidcap-bench: regenerate the report's comparisons as tables, figures and claim verdicts.

Which module runs what:
  cli.py          the Typer app `vidcap-bench` (run, report, verify, rekey, perf, robustness, ood): parses, calls, prints
  invocation.py   one `vidcap-bench run`: prepare data, plan every suite's runs, run the suites,
                  export the best model, append to bench_run.json (`run_benchmark(BenchOptions)`)
  runner.py       one training run at a time: RunStore (runs keyed on config, data and numerics versions, cached
                  evaluations) and Executor (trains what is missing, in parallel with --jobs)
  suites/         one module per comparison (perception, cells, attention, temporal, gradients, backbone,
                  length, seeds, beam), each `plan(ctx)` + `run(ctx) -> SuiteResult`; shared pieces by job:
                  context.py (BenchContext), groups.py (train and evaluate seeds of a config),
                  rows.py (one row per run), compare.py (paired comparisons), results.py
                  (SuiteResult -> <suite>.csv/.md/.json)
  tables.py       DataFrame tables: seed summaries (groupby), per-seed pivots, markdown, CSV
  stats.py        bootstraps, seed summaries and the verdict rule; claims.py the claims judged
  diversity.py    how varied a run's captions are (distinct captions, distinct-1/2, vocabulary)
  report.py       REPORT.md from a results folder; best.py the best model and its card;
                  selection.py how the best configuration is chosen on validation (the training
                  loop's selection key); generalise.py the best model on a fresh SynthClips seed;
                  demo_examples.py the best model on the demo's bundled examples
  prepare.py      SynthClips and features for the runs; identity.py the keys (numerics versions,
                  torch, device, threads); verify.py `verify` and `rekey` of a results folder;
                  profiles.py quick / full / smoke; machine.py the machine description
  figures.py      matplotlib figures; perf.py `vidcap-bench perf`
  robustness/     `vidcap-bench robustness`: cases, drivers, load_test, report, run
"""
