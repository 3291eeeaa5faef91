"""`vidcap-bench perf-training`: a training step of every full-profile architecture against the machine's limit,
and against another revision of the code, side by side.

- Against the limit (nanoGPT's estimate_mfu, on a CPU): each step's matrix-product FLOPs are counted with
  torch.utils.flop_counter.FlopCounterMode (oneDNN's fused LSTM layer, which it does not know, by the
  formula `lstm_layer_flop`), divided by the measured time, and compared with this machine's own
  `torch.mm` throughput on the step's matrix sizes at the same thread count (benchmark runs train on one
  torch thread: identity.BENCH_TORCH_THREADS). Element-wise work (tanh, sigmoid, dropout's random numbers,
  Adam) counts no FLOPs, as in MFU.
- Against a revision (`--base REV`): REV is copied out of git into a temporary folder and one worker process
  times it (benchmark/step_timing.py `--serve` with PYTHONPATH on the copy) while another times this
  checkout; the driver asks them in turns, the order reversed every other repeat, so drift and other work
  on the machine hit both alike. The ratio of medians is the speed-up. Times are CPU seconds of the worker
  (one thread: its wall time when nothing else ran) and wall seconds beside them.
- Where a run's time goes: `run_shares(rows)` (a run's log.jsonl rows) splits a finished training run's wall time into
  training steps, validation, the rest of each interval (checkpoints, gradient probe) and set-up, from the
  timings every log.jsonl row holds; `vidcap-bench run-time --runs CACHE/runs` sums it per configuration.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.identity import BENCH_TORCH_THREADS, REPO_ROOT
from benchmark.step_timing import StepCase, Sizes, build_step, full_profile_cases, median_ms, time_steps
from vidcap_core.files import read_jsonl

STEP_TIMING_SCRIPT = Path(__file__).resolve().with_name("step_timing.py")
WARMUP_STEPS = 2


@dataclass
class TrainingPerfOptions:
    base: str | None = None  # a git revision to time beside this checkout; None = this checkout only
    repeats: int = 5  # turns per contender and case
    steps: int = 2  # timed steps per turn
    cases: tuple[str, ...] = ()  # StepCase names; empty = every full-profile case
    threads: int = BENCH_TORCH_THREADS


def selected_cases(names: tuple[str, ...]) -> list[StepCase]:
    cases = full_profile_cases()
    if not names:
        return cases
    known = {case.name: case for case in cases}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown cases {unknown}: choose from {', '.join(known)}")
    return [known[name] for name in names]


# ----------------------------------------------------------------------------- the limit


def lstm_layer_flop(input_shape, w_ih_shape, w_hh_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    """Matrix-product FLOPs of oneDNN's fused LSTM layer forward (aten.mkldnn_rnn_layer): every step
    multiplies its input and its hidden state by the gate weights, 2 x rows x (I + H) x 4H."""
    rows = input_shape[0] * input_shape[1]  # B x S (either layout)
    gates, inputs = w_ih_shape
    return 2 * rows * (inputs + w_hh_shape[1]) * gates


def lstm_layer_backward_flop(input_shape, w_ih_shape, w_hh_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    """The backward pass: the gradients of the inputs and of the weights, twice the forward's products."""
    return 2 * lstm_layer_flop(input_shape, w_ih_shape, w_hh_shape)


def count_step_flops(case: StepCase, sizes: Sizes = Sizes()) -> int:
    """Matrix-product FLOPs of one training step of `case` as this checkout computes it."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    step = build_step(case, sizes)
    custom = {torch.ops.aten.mkldnn_rnn_layer: lstm_layer_flop,
              torch.ops.aten.mkldnn_rnn_layer_backward: lstm_layer_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=custom) as counter:
        step.run()
    return int(counter.get_total_flops())


def matmul_sizes(sizes: Sizes = Sizes()) -> dict[str, tuple[int, int, int]]:
    """(M, K, N) of the products a step is made of: one recurrent step of the batch, the weight gradient over
    every step's rows, the frame projection of a batch (synth-cnn with deltas: 714 inputs)."""
    rows = sizes.batch * 27  # a batch's caption steps (27 tokens on average, step_timing.CAPTION_TOKEN_COUNTS)
    return {
        "recurrent step (B x H) @ (H x 4H)": (sizes.batch, sizes.hidden, 4 * sizes.hidden),
        "weight gradient (4H x rows) @ (rows x H)": (4 * sizes.hidden, rows, sizes.hidden),
        "frame projection (B T x 2F) @ (2F x E)": (sizes.batch * sizes.frames, 2 * 357, sizes.embed),
    }


def measure_matmul(repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of torch.mm at each of `matmul_sizes`, median of `repeats` CPU-timed batches of products."""
    import torch

    out = {}
    for label, (m, k, n) in matmul_sizes().items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        count = max(1, int(2e8 // (2 * m * k * n)))  # about 0.2 GFLOP per batch
        for _ in range(count):
            a @ b
        seconds = []
        for _ in range(repeats):
            started = time.process_time()
            for _ in range(count):
                a @ b
            seconds.append((time.process_time() - started) / count)
        out[label] = 2 * m * k * n / statistics.median(seconds) / 1e9
    return out


def limit_table(options: TrainingPerfOptions, times_ms: dict[str, float] | None = None
                ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per case: ms per step (CPU time, this checkout), FLOPs, GFLOP/s and its share of the matmul peak."""
    from vidcap_core.training.loop import torch_thread_count

    with torch_thread_count(options.threads):
        peaks = measure_matmul()
        peak = max(peaks.values())
        rows = []
        for case in selected_cases(options.cases):
            flops = count_step_flops(case)
            ms = (times_ms or {}).get(case.name)
            if ms is None:
                step = build_step(case)
                for _ in range(WARMUP_STEPS):
                    step.run()
                ms = median_ms(time_steps(step.run, options.repeats * options.steps).cpu)
            achieved = flops / (ms / 1000) / 1e9
            rows.append({"architecture": case.name, "ms per step": ms, "GFLOP per step": flops / 1e9,
                         "GFLOP/s": achieved, "of matmul peak": achieved / peak})
    return pd.DataFrame(rows), peaks


# ----------------------------------------------------------------------------- side by side


class StepWorker:
    """A process timing steps of the vidcap_core under `root` (benchmark/step_timing.py --serve)."""

    def __init__(self, label: str, root: Path, threads: int) -> None:
        self.label = label
        env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": str(threads)}
        self.process = subprocess.Popen([sys.executable, str(STEP_TIMING_SCRIPT), "--serve"], cwd=root, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.request({"threads": threads})

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.label} step worker exited (status {self.process.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the {self.label} step worker failed on {message}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            self.request_quit()
        self.process.wait(timeout=60)

    def request_quit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"quit": True}) + "\n")
        self.process.stdin.close()


def export_revision(revision: str, dest: Path) -> Path:
    """The files of git `revision` of this repository, unpacked under `dest` (no git state touched)."""
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", revision],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise ValueError(f"cannot export revision {revision!r}: {archive.stderr.decode().strip()}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def describe_revision(revision: str) -> str:
    found = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", revision], capture_output=True,
                           text=True, check=False)
    return found.stdout.strip() or revision


def side_by_side(options: TrainingPerfOptions) -> pd.DataFrame:
    """Per case: median ms per step of the base revision and of this checkout, timed in turns, and the ratio."""
    if options.base is None:
        raise ValueError("side_by_side needs a base revision")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidcap-perf-training-") as scratch:
        base_root = export_revision(options.base, Path(scratch) / "base")
        workers = [StepWorker("base", base_root, options.threads), StepWorker("head", REPO_ROOT, options.threads)]
        try:
            for case in selected_cases(options.cases):
                for worker in workers:
                    worker.request({"case": case.name, "warmup": WARMUP_STEPS, "steps": 0})
                cpu: dict[str, list[float]] = {w.label: [] for w in workers}
                wall: dict[str, list[float]] = {w.label: [] for w in workers}
                for turn in range(options.repeats):
                    for worker in workers if turn % 2 == 0 else workers[::-1]:
                        answer = worker.request({"case": case.name, "steps": options.steps})
                        cpu[worker.label] += answer["cpu"]
                        wall[worker.label] += answer["wall"]
                base_ms, head_ms = median_ms(cpu["base"]), median_ms(cpu["head"])
                rows.append({"architecture": case.name, "base ms": base_ms, "this ms": head_ms,
                             "speed-up": base_ms / head_ms,
                             "base wall ms": median_ms(wall["base"]), "this wall ms": median_ms(wall["head"]),
                             "steps each": len(cpu["base"])})
        finally:
            for worker in workers:
                worker.close()
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- a run's time


RUN_PARTS = ("training steps", "validation", "probe, checkpoints", "set-up, data loading, OOD calibration")


def run_shares(rows: list[dict[str, Any]], wall_seconds: float | None = None,
               resumed_at_step: int = 0) -> dict[str, float]:
    """Seconds of a finished run by part, from the rows of its log.jsonl: training steps (`train_seconds`:
    the optimiser steps with their batches, gathered from features already in memory), validation
    (`val_seconds`), the rest of each interval (gradient probe, checkpoints) and, when `wall_seconds` (the
    last train() call) is given, set-up: data loading, model building, OOD calibration. A run resumed at
    `resumed_at_step` logged its earlier intervals in other calls: the set-up is the last call's wall time
    less the intervals logged after that step (the earlier calls' set-up is not recorded)."""
    train = sum(r.get("train_seconds", 0.0) for r in rows)
    validation = sum(r.get("val_seconds") or 0.0 for r in rows)
    intervals = sum(r.get("seconds", 0.0) for r in rows)
    shares = {"training steps": train, "validation": validation, "probe, checkpoints": intervals - train - validation}
    if wall_seconds is not None:
        last_call = sum(r.get("seconds", 0.0) for r in rows if r.get("step", 0) > resumed_at_step)
        shares["set-up, data loading, OOD calibration"] = wall_seconds - last_call
    return shares


def resumed_step(result: dict[str, Any], rows: list[dict[str, Any]]) -> int | None:
    """The step a finished run's last train() call resumed at (0: trained in one call); None for a run
    recorded before result.json said so whose logged intervals (`rows`) outlast its wall time (resumed: unknown)."""
    if "resumed_at_step" in result:
        return int(result["resumed_at_step"])
    return 0 if result.get("wall_seconds", 0.0) >= sum(r.get("seconds", 0.0) for r in rows) else None


def run_time_table(runs_dir: Path) -> pd.DataFrame:
    """Where the finished training runs under `runs_dir` (a benchmark cache's `runs/`) spent their wall
    time, summed per configuration (run label; its seeds together): seconds by part (`run_shares`),
    validation's share of the wall time and how many runs were resumed. A resumed run's set-up counts only
    its last call's (none when the run predates `resumed_at_step`). A fine-tune's own wall time covers its
    parent's only when that was trained with it, so fine-tunes are left out."""
    totals: dict[str, dict[str, float]] = {}
    for result_file in sorted(Path(runs_dir).glob("*/result.json")):
        run = result_file.parent
        result = json.loads(result_file.read_text())
        spec = json.loads((run / "spec.json").read_text())
        if "finetune" in spec or not (run / "train" / "log.jsonl").is_file():
            continue
        rows = read_jsonl(run / "train" / "log.jsonl")
        resumed_at = resumed_step(result, rows)
        wall = result.get("wall_seconds") if resumed_at is not None else None
        shares = run_shares(rows, wall, resumed_at or 0)
        entry = totals.setdefault(result["label"], {"runs": 0.0, "resumed": 0.0})
        entry["runs"] += 1
        entry["resumed"] += resumed_at != 0
        for part, seconds in shares.items():
            entry[part] = entry.get(part, 0.0) + seconds
    rows = []
    for label, entry in sorted(totals.items()):
        wall = sum(entry.get(part, 0.0) for part in RUN_PARTS)
        rows.append({"configuration": label, "runs": int(entry["runs"]), "resumed": int(entry["resumed"]),
                     "wall s": wall, **{f"{part} s": entry.get(part, 0.0) for part in RUN_PARTS},
                     "validation share": entry.get("validation", 0.0) / wall if wall else float("nan")})
    return pd.DataFrame(rows)


def run_time_markdown(runs_dir: Path) -> str:
    """`run_time_table` as the markdown `vidcap-bench run-time` writes, with the total over every run."""
    from benchmark.tables import markdown_table

    table = run_time_table(runs_dir)
    if table.empty:
        raise ValueError(f"no finished training run under {runs_dir}: point --runs at a benchmark cache's runs/ folder")
    wall = table["wall s"].sum()
    parts = ", ".join(f"{part} {table[f'{part} s'].sum() / wall:.1%}" for part in RUN_PARTS)
    resumed = (f" {table['resumed'].sum()} run(s) were resumed after an interruption: their earlier calls' set-up "
               "is not recorded, so set-up is a lower bound." if table["resumed"].sum() else "")
    shown = table.copy()
    for column in shown.columns:
        if column.endswith(" s"):
            shown[column] = shown[column].map(lambda v: f"{v:.0f}")
    shown["validation share"] = shown["validation share"].map(lambda v: f"{v:.1%}")
    return "\n".join([
        "# Where the training runs' wall time went", "",
        f"Generated by `vidcap-bench run-time --runs {runs_dir}`: every finished MLE training run of that cache, "
        "from its log.jsonl timings (`benchmark.perf_training.run_shares`) and its whole train() call "
        "(result.json `wall_seconds`), summed per configuration over its seeds. Fine-tunes are left out.", "",
        f"All {int(table['runs'].sum())} runs, {wall / 60:.1f} min of run time: {parts}.{resumed}", "",
        markdown_table(shown), ""])


# ----------------------------------------------------------------------------- report


def markdown(limits: pd.DataFrame, peaks: dict[str, float], compared: pd.DataFrame | None, base: str | None,
             options: TrainingPerfOptions, seconds: float) -> str:
    from benchmark.machine import describe_machine
    from benchmark.tables import markdown_table

    sizes = Sizes()
    lines = ["# Training steps against the machine's limit", "",
             f"Generated by `vidcap-bench perf-training{' --base ' + base if base else ''}`; one optimiser step of each "
             f"architecture the full profile trains, at its sizes (batch {sizes.batch}, {sizes.frames} frames, "
             f"hidden {sizes.hidden}, embed {sizes.embed}, attention {sizes.attention}, SynthClips standard's caption "
             f"lengths), on {options.threads} torch thread(s); medians of CPU time per step.", "",
             describe_machine().markdown(), "",
             "## Matrix-product throughput of this machine (`torch.mm`, same thread count)", ""]
    lines += [f"- {label}: {value:.1f} GFLOP/s" for label, value in peaks.items()]
    frame = limits.copy()
    frame["ms per step"] = frame["ms per step"].map(lambda v: f"{v:.1f}")
    frame["GFLOP per step"] = frame["GFLOP per step"].map(lambda v: f"{v:.2f}")
    frame["GFLOP/s"] = frame["GFLOP/s"].map(lambda v: f"{v:.1f}")
    frame["of matmul peak"] = frame["of matmul peak"].map(lambda v: f"{100 * v:.0f}%")
    lines += ["", f"## Steps against the peak ({max(peaks.values()):.1f} GFLOP/s)", "", markdown_table(frame), ""]
    if compared is not None:
        table = compared.copy()
        for column in ("base ms", "this ms", "base wall ms", "this wall ms"):
            table[column] = table[column].map(lambda v: f"{v:.1f}")
        table["speed-up"] = table["speed-up"].map(lambda v: f"{v:.2f}x")
        lines += [f"## This checkout against {base} (side by side, in turns)", "", markdown_table(table), "",
                  f"Geometric mean speed-up: {math.exp(compared['speed-up'].map(math.log).mean()):.2f}x.", ""]
    lines.append(f"This measurement took {seconds:.0f} s.")
    return "\n".join(lines) + "\n"


def run_training_perf(options: TrainingPerfOptions) -> str:
    started = time.perf_counter()
    compared = side_by_side(options) if options.base else None
    times = None if compared is None else dict(zip(compared["architecture"], compared["this ms"]))
    limits, peaks = limit_table(options, times)
    base = describe_revision(options.base) if options.base else None
    return markdown(limits, peaks, compared, base, options, time.perf_counter() - started)
