"""Benchmark tables as pandas DataFrames (STYLE.md rule 16).

Results are DataFrames first: one row per run and seed (`<suite>.csv`), summaries over seeds by
`groupby().agg`, per-seed values by `pivot`. Markdown comes from `DataFrame.to_markdown` (tabulate),
CSV from `DataFrame.to_csv`. Numbers are formatted into strings before `to_markdown` (with number
parsing off), so a table shows exactly the digits asked for ("0.300", not tabulate's "0.3"), and a
column of counts (steps, clips, distinct captions: `is_count_column`) as whole numbers ("3000", not
"3000.000").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

NOT_AVAILABLE = "n/a"
CSV_FLOAT_FORMAT = "%.6g"
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
# The counts a suite row holds (benchmark/suites/rows.py, vidcap_core/evaluation/diversity.py), named because a row
# without one (a run without an evaluation) turns the whole column into floats.
COUNT_COLUMNS = frozenset({"steps", "best_step", "test_clips", "distinct_captions", "distinct_references",
                           "clips_in", "clips_heldout", "vocabulary"})


def fmt(value: Any, digits: int = 3) -> str:
    """One value for a table cell: floats to `digits` decimals, None / NaN / inf as "n/a"."""
    if value is None:
        return NOT_AVAILABLE
    if isinstance(value, (float, np.floating)):
        return NOT_AVAILABLE if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def one_line(text: Any, chars: int | None = None) -> str:
    """Text fit for one markdown table cell: one line, pipes escaped (once: applying it again changes
    nothing), cut to `chars` ("..." at the end)."""
    text = UNESCAPED_PIPE.sub(r"\\|", " ".join(str(text).split()))
    if chars is None or len(text) <= chars:
        return text
    return text[: chars - 3] + "..."


def markdown_table(frame: pd.DataFrame, align: Sequence[str] | None = None) -> str:
    """A pipe table of `frame`'s cells as they are (format numbers first); `align`: "left" / "right"
    per column (default: all left)."""
    cells = frame.apply(lambda column: column.map(one_line)) if len(frame) else frame.astype(str)
    return cells.to_markdown(index=False, tablefmt="pipe", disable_numparse=True,
                             colalign=None if align is None else tuple(align))


def finite_numbers(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`columns` of `frame` as floats, with missing columns, non-numbers and +-inf as NaN."""
    values = frame.reindex(columns=list(columns)).apply(pd.to_numeric, errors="coerce")
    return values.astype(float).replace([np.inf, -np.inf], np.nan)


def is_count_column(column: pd.Series) -> bool:
    """True for a column of whole counts: one of COUNT_COLUMNS (pandas stores an int column with a
    missing row as floats), an integer dtype, or ints wherever an object column has a value. Bools
    (converged, collapsed) are not counts, and neither is a float column whose values happen to be
    whole (a score of 0.000 stays 0.000)."""
    if column.name in COUNT_COLUMNS:
        return True
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_integer_dtype(column):
        return True
    present = column.dropna()
    return (column.dtype == object and len(present) > 0
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present))


def count_text(value: float) -> str:
    """A count, or a mean or spread of counts: whole as an integer ("3000"), else one decimal ("2166.7")."""
    if not math.isfinite(value):
        return NOT_AVAILABLE
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def mean_std_text(mean: float, std: float, count: int, digits: int = 3, counts: bool = False) -> str:
    """'mean ± std' over the finite values (sample std); the mean alone for one value; "n/a" for none.
    `counts`: the values are whole counts, shown by `count_text` instead of to `digits` decimals."""
    if count == 0 or not math.isfinite(mean):
        return NOT_AVAILABLE
    text = count_text if counts else (lambda value: f"{value:.{digits}f}")
    if count == 1:
        return text(mean)
    return f"{text(mean)} ± {text(std)}"


def seed_summary(rows: pd.DataFrame, group_by: Sequence[str], columns: Sequence[str], digits: int = 3,
                 count_column: str | None = "seeds") -> pd.DataFrame:
    """One row per group (in order of first appearance): the group keys, `count_column` (rows in the
    group, i.e. seeds) and each of `columns` as 'mean ± std' over its finite values (counts whole)."""
    keys = rows.reindex(columns=list(group_by))
    values = finite_numbers(rows, columns)
    grouped = pd.concat([keys, values], axis=1).groupby(list(group_by), sort=False, dropna=False)
    stats = grouped[list(columns)].agg(["mean", "std", "count"])  # columns: (column, statistic)
    table = pd.DataFrame({g: [fmt(k) for k in stats.index.get_level_values(g)] for g in group_by})
    if count_column is not None:
        table[count_column] = grouped.size().to_numpy().astype(str)
    for column in columns:
        counts = column in rows and is_count_column(rows[column])
        table[column] = [mean_std_text(m, s, int(n), digits, counts)
                         for m, s, n in zip(stats[(column, "mean")], stats[(column, "std")], stats[(column, "count")])]
    return table


def per_seed(rows: pd.DataFrame, group_by: Sequence[str], column: str, digits: int = 3) -> pd.DataFrame:
    """One row per group (first-appearance order), one column per seed ('<column> seed <s>', seeds
    ascending): the values behind a summary column ("n/a" where a seed has none; counts whole)."""
    frame = rows.reindex(columns=[*group_by, "seed", column]).drop_duplicates([*group_by, "seed"], keep="last")
    wide = frame.pivot(index=list(group_by), columns="seed", values=column).sort_index(axis=1)
    order = frame[list(group_by)].drop_duplicates()
    wide = wide.reindex(pd.MultiIndex.from_frame(order) if len(group_by) > 1 else pd.Index(order[group_by[0]]))
    table = pd.DataFrame({g: [fmt(k) for k in wide.index.get_level_values(g)] for g in group_by})
    counts = column in rows and is_count_column(rows[column])
    for seed in wide.columns:  # a seed missing from a group makes the pivot's counts floats (NaN): count_text
        table[f"{column} seed {seed}"] = [count_text(float(v)) if counts and pd.notna(v) else fmt(v, digits)
                                          for v in wide[seed]]
    return table


def csv_text(rows: pd.DataFrame) -> str:
    """CSV of one row per run: floats to 6 significant digits, NaN / inf / None as empty cells."""
    return rows.replace([np.inf, -np.inf], np.nan).to_csv(index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n")


HEALTH_COLUMNS = ("converged", "distinct captions", "collapsed")


def run_health(rows: pd.DataFrame, group_by: Sequence[str]) -> pd.DataFrame:
    """One row per group (first-appearance order): `converged` (runs converged / runs), `trained` (runs
    trained to completion / runs: convergence.training_status; only when the rows say), `distinct
    captions` (mean share of distinct test captions over the runs, with the mean count of distinct
    captions / test clips) and `collapsed` ("no", or "yes (k/n)": runs flagged by the collapse rule,
    benchmark.stats.COLLAPSE_RULE). Rows without those facts show "n/a"."""
    with_trained = "trained" in rows
    frame = rows.reindex(columns=[*group_by, "converged", "trained", "distinct_captions", "test_clips", "collapsed"])
    grouped = frame.groupby(list(group_by), sort=False, dropna=False)
    out = []
    for keys, group in grouped:
        keys = keys if isinstance(keys, tuple) else (keys,)
        runs = len(group)
        converged = group["converged"].dropna()
        clips = pd.to_numeric(group["test_clips"], errors="coerce")
        distinct = pd.to_numeric(group["distinct_captions"], errors="coerce")
        has_clips = bool((clips > 0).any())
        collapsed = int(pd.to_numeric(group["collapsed"], errors="coerce").fillna(0).astype(bool).sum())
        trained = group["trained"].dropna()
        out.append({
            **{g: fmt(k) for g, k in zip(group_by, keys)},
            "converged": f"{int(converged.astype(bool).sum())}/{runs}" if len(converged) else NOT_AVAILABLE,
            **({"trained": f"{int(trained.astype(bool).sum())}/{runs}" if len(trained) else NOT_AVAILABLE}
               if with_trained else {}),
            "distinct captions": (f"{(distinct / clips).mean():.2f} ({distinct.mean():.0f}/{clips.mean():.0f})"
                                  if has_clips else NOT_AVAILABLE),
            "collapsed": (f"yes ({collapsed}/{runs})" if collapsed else "no") if has_clips else NOT_AVAILABLE,
        })
    return pd.DataFrame(out, columns=[*group_by, *health_columns(with_trained)])


def health_columns(with_trained: bool) -> list[str]:
    return [*HEALTH_COLUMNS, *(["trained"] if with_trained else [])]


def suite_summary(rows: pd.DataFrame, group_by: Sequence[str], columns: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """A suite's main table: `seed_summary` (seeds, each column as mean ± std) followed by the runs'
    health: converged of seeds, distinct captions, collapsed (`run_health`)."""
    summary = seed_summary(rows, group_by, columns, digits)
    health = run_health(rows, group_by)
    columns = health_columns("trained" in rows)
    return pd.concat([summary.reset_index(drop=True), health[columns].reset_index(drop=True)], axis=1)
