"""`vidcap-bench report`: REPORT.md from the files `vidcap-bench run` wrote into a results folder.

Everything numeric comes from `<suite>.json`, `bench_run.json` and `perf.json`; the prose around
the tables lives here as templates, so regenerating the report never needs a hand edit.

The package, by job:
  verdicts.py  the claims table and how each claim was decided (runs compared, the rule)
  runs.py      the best model, convergence, collapsed configurations, the oracle ceiling,
               the generalisation check, the seeds
  manifest.py  from bench_run.json: cost per suite, budget per profile, machine, commands, data
  build.py     REPORT.md from those sections and the suites' bodies; the README's claims table
"""

from __future__ import annotations

from benchmark.report.verdicts import (
    DECIDED_NOTE,
    all_runs,
    claims_frame,
    claims_table,
    converged_text,
    decided_frame,
    decided_text,
    measured_text,
    not_measured_reason,
    rule_text,
    run_status_text,
    runs_text,
    seeds_of_configs,
    verdict_badge,
)
from benchmark.report.manifest import (
    BUDGET_MISSED,
    BUDGET_OK,
    BUDGET_PARTIAL,
    budget_text,
    commands_text,
    data_of,
    latest_invocations,
    machine_text,
    timing_frame,
    timing_table,
)
from benchmark.report.runs import (
    CEILING_NOTE,
    CONVERGENCE_NOTE,
    best_text,
    ceiling_rows,
    ceiling_text,
    collapsed_text,
    config_seed_groups,
    convergence_frame,
    convergence_text,
    distinct_runs,
    generalisation_text,
    seeds_text,
)
from benchmark.report.build import (
    INTRO,
    NOTES_FILE,
    README_END,
    README_START,
    REAL_NOTE,
    STATS_NOTE,
    SYNTH_NOTE,
    build_report,
    claims_section,
    load_results,
    update_readme,
    write_report,
)

__all__ = [
    "BUDGET_MISSED",
    "BUDGET_OK",
    "BUDGET_PARTIAL",
    "CEILING_NOTE",
    "CONVERGENCE_NOTE",
    "DECIDED_NOTE",
    "INTRO",
    "NOTES_FILE",
    "README_END",
    "README_START",
    "REAL_NOTE",
    "STATS_NOTE",
    "SYNTH_NOTE",
    "all_runs",
    "best_text",
    "budget_text",
    "build_report",
    "ceiling_rows",
    "ceiling_text",
    "claims_frame",
    "claims_section",
    "claims_table",
    "collapsed_text",
    "commands_text",
    "config_seed_groups",
    "converged_text",
    "convergence_frame",
    "convergence_text",
    "data_of",
    "decided_frame",
    "decided_text",
    "distinct_runs",
    "generalisation_text",
    "latest_invocations",
    "load_results",
    "machine_text",
    "measured_text",
    "not_measured_reason",
    "rule_text",
    "run_status_text",
    "runs_text",
    "seeds_of_configs",
    "seeds_text",
    "timing_frame",
    "timing_table",
    "update_readme",
    "verdict_badge",
    "write_report",
]
