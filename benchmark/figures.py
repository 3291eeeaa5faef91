"""Figures of the suites (PNG, matplotlib's Agg backend): bars with seeds, curves with bands."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vidcap_core.files import atomic_write_bytes

DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def grouped_bars(path: Path, groups: Sequence[str], series: Mapping[str, Mapping[str, Sequence[float]]],
                 ylabel: str, title: str) -> Path:
    """Bars: mean over seeds per (series, group), std as error bar, each seed as a dot."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(groups) * max(len(series), 1) / 1.5), 3.2))
    width = 0.8 / max(len(series), 1)
    for i, (name, by_group) in enumerate(series.items()):
        xs = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        means, stds = [], []
        for g, x in zip(groups, xs):
            values = _finite(by_group.get(g, []))
            means.append(np.mean(values) if values else np.nan)
            stds.append(np.std(values, ddof=1) if len(values) > 1 else 0.0)
            ax.scatter([x] * len(values), values, color="black", s=10, zorder=3)
        ax.bar(xs, means, width=width * 0.95, yerr=stds, capsize=3, label=name, alpha=0.85)
    ax.set_xticks(np.arange(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def lines_over_x(path: Path, xs: Sequence[float], series: Mapping[str, Sequence[Sequence[float]]], xlabel: str,
                 ylabel: str, title: str, logy: bool = False, logx: bool = False) -> Path:
    """One line per series: mean over seeds at each x, a band of +- 1 std."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.3))
    for name, per_x in series.items():
        means = np.array([np.mean(_finite(v)) if _finite(v) else np.nan for v in per_x])
        stds = np.array([np.std(_finite(v), ddof=1) if len(_finite(v)) > 1 else 0.0 for v in per_x])
        ax.plot(xs, means, marker="o", label=name)
        ax.fill_between(xs, means - stds, means + stds, alpha=0.2)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def curves(path: Path, series: Mapping[str, Sequence[tuple[Sequence[float], Sequence[float]]]], xlabel: str,
           ylabel: str, title: str, logy: bool = False, panels: Mapping[str, Mapping[str, Sequence]] | None = None) -> Path:
    """Every seed's curve, thin, one colour per series (e.g. val CIDEr against seconds)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.3))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, runs) in enumerate(series.items()):
        for j, (x, y) in enumerate(runs):
            ax.plot(x, y, color=colours[i % len(colours)], alpha=0.8, linewidth=1.2, label=name if j == 0 else None)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def gradient_panels(path: Path, panels: Mapping[str, Mapping[str, Sequence[Sequence[float]]]], title: str) -> Path:
    """One panel per moment (e.g. 'at initialisation', 'after training'): ||dL/dx_t|| (log) against
    distance from the last frame, one line per cell (mean over seeds, band = min..max)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.3), sharey=True, squeeze=False)
    for ax, (moment, by_cell) in zip(axes[0], panels.items()):
        for cell, runs in by_cell.items():
            if not runs:
                continue
            length = min(len(r) for r in runs)
            stack = np.array([np.asarray(r[-length:], dtype=float)[::-1] for r in runs])  # (S, T) last frame first
            stack = np.where(stack > 0, stack, np.nan)
            distance = np.arange(length)
            ax.plot(distance, np.nanmean(stack, axis=0), label=cell)
            ax.fill_between(distance, np.nanmin(stack, axis=0), np.nanmax(stack, axis=0), alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("distance from the last frame (frames)")
        ax.set_title(moment, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("||dL/dx_t||")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def field_heatmap(path: Path, values: np.ndarray, rows: Sequence[str], columns: Sequence[str],
                  higher_is_better: Sequence[bool], title: str, digits: Sequence[int]) -> Path:
    """A table as a heatmap: rows x columns of numbers written in their cells, each column coloured
    from its worst (red) to its best (green) value, so a row that lags shows at a glance; NaN is grey."""
    plt = _pyplot()
    values = np.asarray(values, dtype=float)  # (rows, columns)
    shade = np.full(values.shape, np.nan)
    for j, better in enumerate(higher_is_better):
        column = values[:, j]
        finite = column[np.isfinite(column)]
        if len(finite):
            low, high = float(finite.min()), float(finite.max())
            scaled = (column - low) / (high - low) if high > low else np.ones_like(column)
            shade[:, j] = scaled if better else 1.0 - scaled
    fig, ax = plt.subplots(figsize=(1.0 + 0.95 * len(columns), 0.8 + 0.34 * len(rows)))
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="#dddddd")
    ax.imshow(np.ma.masked_invalid(shade), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            text = "n/a" if not np.isfinite(values[i, j]) else f"{values[i, j]:.{digits[j]}f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(np.arange(len(columns)))
    ax.set_xticklabels(columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
