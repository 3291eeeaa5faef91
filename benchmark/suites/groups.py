"""Train and evaluate groups of runs: one `Trained` per configuration (its seeds' records and
evaluations), re-evaluated another way (beam, frame order), and the series figures need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmark.runner import EvalRecord, EvalRequest, RunRecord, RunSpec
from benchmark.suites.context import PRIMARY, BenchContext
from benchmark.suites.rows import eval_facts, history_facts, run_row


@dataclass
class Trained:
    """The seeds of one configuration: their records and one evaluation of each."""

    label: str
    records: list[RunRecord]
    evals: list[EvalRecord | None]

    def facts(self, column: str) -> dict[int, float]:
        """{seed: value} of a training fact (history_facts) or a test column (eval_facts)."""
        out: dict[int, float] = {}
        for record, evaluation in zip(self.records, self.evals):
            values = {**history_facts(record), **eval_facts(evaluation)}
            out[record.seed] = float(values.get(column, float("nan")))
        return out


def train_and_evaluate(ctx: BenchContext, suite: str, groups: dict[str, list[RunSpec]],
                       request: EvalRequest | None = EvalRequest()) -> dict[str, Trained]:
    """Train (or reuse) every run of every group, then evaluate each on `request` (None: do not evaluate)."""
    records = ctx.executor.ensure(suite, [spec for specs in groups.values() for spec in specs])
    trained: dict[str, Trained] = {}
    for label, specs in groups.items():
        runs = [records[spec.key] for spec in specs]
        evals = [ctx.evaluate(r, request) if request is not None else None for r in runs]
        trained[label] = Trained(label, runs, evals)
    return trained


def reevaluate(ctx: BenchContext, group: Trained, request: EvalRequest) -> Trained:
    """The same runs evaluated another way (beam size, test-time frame order)."""
    return Trained(group.label, group.records, [ctx.evaluate(r, request) for r in group.records])



def rows_of(suite: str, group: Trained, **variant: Any) -> list[dict[str, Any]]:
    """One row per seed of the group (`run_row`), each with the same `variant` columns."""
    return [run_row(suite, record, evaluation, **variant) for record, evaluation in zip(group.records, group.evals)]


def curves_of(group: Trained, x: str = "seconds") -> list[tuple[list[float], list[float]]]:
    """Per seed: (cumulative seconds, or the optimizer step with x="step", val CIDEr) at every validation."""
    out = []
    for record in group.records:
        xs, ys, total = [], [], 0.0
        for row in record.history:
            total += float(row.get("seconds") or 0.0)
            value = (row.get("val") or {}).get(PRIMARY)
            if value is not None:
                xs.append(total if x == "seconds" else float(row["step"]))
                ys.append(float(value))
        out.append((xs, ys))
    return out


def metric_values(groups: dict[str, Trained], metric: str) -> dict[str, list[float]]:
    """{label: per-seed test values of a metric column} for figures."""
    out: dict[str, list[float]] = {}
    for label, group in groups.items():
        out[label] = [eval_facts(e).get(metric, float("nan")) for e in group.evals]
    return out
