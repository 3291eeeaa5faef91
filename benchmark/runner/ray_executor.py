"""`RayExecutor`: a suite's training runs as Ray tasks (`vidcap-bench run --executor ray [--address ...]`).

The same runs, keys, cache layout and results as the local executor: `Executor.ensure` decides what to
train (skipping finished runs, preparing data and features here, parents before fine-tunes) and this
class only trains each wave, one Ray task per run, calling `RunStore.train` on the worker as a local
worker process does. Each task asks for BENCH_TORCH_THREADS CPUs (the one torch thread its key says) and
one GPU when the run's device kind, in its key, is a GPU; Ray retries a task whose worker dies
(`TASK_RETRIES`) and the retry resumes the run from its last.pt. An exception training raises is not
retried: it stops the invocation, as it does locally.

The cache must be one folder every node reads and writes at the same path (a shared filesystem):
workers write the run folders there and this process reads them back to evaluate (docs/ray.md). The
tasks run this process's copy of `benchmark` and `vidcap_core` (Ray's py_modules), in this process's
working directory when the node has it (relative --cache paths), and a node whose key for a run differs
from the one planned here (another torch minor version, CPU instruction set or GPU) refuses the run.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.identity import BENCH_TORCH_THREADS, COMMIT_VARIABLE, describe_commit
from benchmark.runner.executor import Executor
from benchmark.runner.records import RunRecord
from benchmark.runner.spec import RunSpec
from benchmark.runner.store import RunStore
from vidcap_core.errors import ConfigError

INSTALL_HINT = "pip install 'vidcap[ray]'"
TASK_PREFIX = "vidcap-bench "  # task names: "vidcap-bench s2vt-lstm seed 0"
TASK_RETRIES = 3  # attempts after a worker dies (node lost, process killed); each resumes from last.pt


@dataclass
class RayExecutor(Executor):
    """Executor whose waves run on a Ray cluster. `address`: None starts a Ray instance on this machine
    for the invocation; "auto" joins the cluster `ray start` runs on this machine; "HOST:PORT" a head's."""

    address: str | None = None
    connected: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        ray = import_ray()
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, runtime_env=runtime_env(), log_to_driver=False,
                         configure_logging=False)
            except ConnectionError as exc:
                raise ConfigError(f"cannot reach a Ray cluster at --address {self.address}: {exc}. Start a head "
                                  "with `ray start --head` (docs/ray.md) or leave --address out to start one here.") from exc
            self.connected = True
        self.jobs = max(int(ray.cluster_resources().get("CPU", 1)) // BENCH_TORCH_THREADS, 1)  # the estimate's divisor
        self.progress.jobs = self.jobs

    def train_wave(self, wave: Sequence[tuple[str, RunSpec]]) -> dict[str, RunRecord]:
        ray = import_ray()
        # A GPU run gets a fresh worker process (max_calls 1), which frees its GPU memory when it ends; CPU runs
        # reuse workers, whose imports are then paid once (an invocation's runs all have the driver's device kind).
        tasks = {False: ray.remote(max_retries=TASK_RETRIES)(train_run_task),
                 True: ray.remote(max_retries=TASK_RETRIES, max_calls=1)(train_run_task)}
        self.store.root.mkdir(parents=True, exist_ok=True)  # a node that does not see it is not on the shared filesystem
        pending: dict[Any, tuple[str, RunSpec]] = {}
        for suite, spec in wave:
            self.progress.queued(suite, spec, resumed=self.resumable(spec))
            material = spec.key_material()
            gpu = wants_gpu(material)
            if gpu and ray.cluster_resources().get("GPU", 0) < 1:
                raise ConfigError(f"{spec.title} trains on {material['device']} (its key), and the Ray cluster has no "
                                  "GPU: add a GPU node, or plan on a machine without one (device cpu).")
            # the task's name is its worker's process title while it runs: ray::NAME
            task = tasks[gpu].options(num_cpus=BENCH_TORCH_THREADS, num_gpus=int(gpu), name=f"{TASK_PREFIX}{spec.title}")
            pending[task.remote(str(self.store.root), spec, material, os.getcwd())] = (suite, spec)
        records: dict[str, RunRecord] = {}
        try:
            while pending:
                [done], _ = ray.wait(list(pending), num_returns=1)
                suite, spec = pending.pop(done)
                outcome = ray.get(done)
                records[spec.key] = self.finished(spec, outcome)
                self.done(suite, records[spec.key])
        finally:
            for ref in pending:  # an error or Ctrl-C here: stop the wave's other tasks too
                ray.cancel(ref, force=True)
        return records

    def finished(self, spec: RunSpec, outcome: dict[str, Any]) -> RunRecord:
        """The run as this process reads it from the shared cache, with the task's training time."""
        if not self.store.is_finished(spec):
            raise ConfigError(f"run {spec.title} finished on node {outcome['node']}, but its result.json is not "
                              f"in {self.store.dir(spec)} here: --cache must be a shared filesystem mounted at the "
                              "same path on every node (docs/ray.md).")
        record = self.store.load(spec)
        record.wall_seconds = float(outcome["wall_seconds"])
        return record

    def close(self) -> None:
        if self.connected:
            import_ray().shutdown()
            self.connected = False


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT} (or: pip install ray).") from exc
    return ray


def runtime_env() -> dict[str, Any]:
    """The tasks' environment: this process's code (so every node computes the keys planned here) and commit;
    a task that asked for no GPU sees none (CUDA_VISIBLE_DEVICES empty), so a run planned on CPUs resolves
    device `auto` to the CPU on a GPU node too."""
    import benchmark
    import vidcap_core

    packages = [str(Path(module.__file__).parent) for module in (benchmark, vidcap_core)]  # type: ignore[arg-type]
    return {"py_modules": packages,
            "env_vars": {COMMIT_VARIABLE: describe_commit() or "", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1"}}


def wants_gpu(material: dict[str, Any]) -> bool:
    """Whether a run's key places it on a GPU (its device kind, e.g. 'cuda:NVIDIA H200')."""
    return str(material["device"]).startswith("cuda")


def train_run_task(store_root: str, spec: RunSpec, planned: dict[str, Any], workdir: str) -> dict[str, Any]:
    """One run on a Ray worker, into the shared cache: (node, training seconds). Refuses a node whose key for
    the run differs from the planned one (ConfigError naming what differs); Ray retries it only if the
    worker dies."""
    node = socket.gethostname()
    with contextlib.chdir(workdir) if Path(workdir).is_dir() else contextlib.nullcontext():
        material = spec.key_material()
        if material != planned:
            differs = sorted(name for name in {*material, *planned} if material.get(name) != planned.get(name))
            detail = "; ".join(f"{name}: planned {planned.get(name)!r}, here {material.get(name)!r}" for name in differs)
            raise ConfigError(f"node {node} would train {spec.title} under another key ({detail}): give the cluster's "
                              "nodes the same torch version and CPU or GPU kind as the machine that runs vidcap-bench.")
        root = Path(store_root)
        if not root.is_dir():
            raise ConfigError(f"node {node} does not see the cache {root.resolve()}: --cache must be a shared "
                              "filesystem mounted at the same path on every node (docs/ray.md).")
        record = RunStore(root).train(spec, progress=False)
    return {"node": node, "wall_seconds": record.wall_seconds}
