"""`vidcap-bench run --executor ray` (benchmark/runner/ray_executor.py) on a real Ray head started here.

The module starts one Ray head on this machine (`ray start --head --block` on 127.0.0.1, 2 CPUs; Ray
announces the machine's own address), runs the smoke profile's `cells` suite through it and compares
every run (keys, files, results, logs, weights) with the local executor's on the same data, kills the worker of a
running task and checks that Ray's retry ends in the uninterrupted run's result, then stops the head
and every process it started. The quick profile's `cells` suite (minutes of training per run on two
cores) is compared the same way in a test marked slow (`make test-all`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch

pytest.importorskip("ray", reason="Ray is not installed: pip install 'vidcap[ray]'")
psutil = pytest.importorskip("psutil")

from benchmark.invocation import BenchOptions, build_context, run_benchmark  # noqa: E402
from benchmark.runner import RunStore  # noqa: E402
from benchmark.runner.ray_executor import TASK_PREFIX  # noqa: E402
from benchmark.suites import SUITES  # noqa: E402
from fixtures_datasets import log_rows  # noqa: E402
from vidcap_core.errors import ConfigError  # noqa: E402

AUTH_MODE = "RAY_AUTH_MODE"
HEAD_START_S = 240  # a loaded 2-core machine took 50 s to start a head
HEAD_ATTEMPTS = 3
TIMING = ("seconds", "wall_seconds", "inference_ms_per_clip", "train_seconds", "val_seconds")  # keys of run files
TIMING_COLUMNS = ("inference_ms_per_clip", "train_ms_per_step", "train_seconds", "s_to_95pct_val_CIDEr")  # suite CSVs


@dataclass
class RayHead:
    address: str  # what `--address` takes: 127.0.0.1:PORT
    process: subprocess.Popen
    log: Path
    temp: Path  # its --temp-dir: sessions, sockets, logs

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], deadline_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {deadline_s:.0f} s")
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """A real Ray head (2 CPUs, the machine's GPUs) on free ports, in its own temp dir; afterwards the head
    and every process it started are gone. Ray gives its raylet 30 s to register, which a loaded machine
    can miss: a head whose `ray start` exits before it is ready is started again (3 attempts)."""
    # Ray turns token authentication on when ~/.ray/auth_token exists (any earlier `ray.init()` writes one): off
    # for this loopback-only head and for the driver here, whatever that file says
    previous_mode = os.environ.get(AUTH_MODE)
    os.environ[AUTH_MODE] = "disabled"
    logs = tmp_path_factory.mktemp("ray")
    head = None
    try:
        for attempt in range(HEAD_ATTEMPTS):
            head = start_head(logs / f"head{attempt}.log", Path(tempfile.gettempdir()) / f"vidcap-ray-{os.getpid()}-{attempt}")
            if head.process.poll() is None:
                break
            stop_head(head)
        assert head is not None and head.process.poll() is None, (
            f"ray start exited {HEAD_ATTEMPTS} times:\n{head.log.read_text()[-3000:] if head else ''}")
        yield head
    finally:
        if head is not None:
            stop_head(head)
        if previous_mode is None:
            os.environ.pop(AUTH_MODE, None)
        else:
            os.environ[AUTH_MODE] = previous_mode


def start_head(log: Path, temp: Path) -> RayHead:
    """`ray start --head --block` on free ports; returns once it blocks (ready) or has exited (failed)."""
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.is_file():
        ray_cli = Path(shutil.which("ray") or "ray")
    temp.mkdir(parents=True, exist_ok=True)  # Ray's socket paths must stay short: not under pytest's tmp_path
    port = free_port()
    command = [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
               "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
               f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
               f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}"]
    with open(log, "w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    head = RayHead(f"127.0.0.1:{port}", process, log, temp)
    wait_for(lambda: process.poll() is not None or "block forever" in log.read_text(), HEAD_START_S,
             "the Ray head to start", interval_s=0.5)
    return head


def stop_head(head: RayHead) -> None:
    """SIGTERM to `ray start --block` (it drains and stops its processes); whatever it started and left (its
    descendants, and any process naming its temp dir: a failed start's daemons) is killed."""
    started = head.descendants() if head.process.poll() is None else []
    head.process.terminate()
    try:
        head.process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        head.process.kill()
        head.process.wait(timeout=30)
    left = [*started, *(p for p in psutil.process_iter() if str(head.temp) in " ".join(safe_cmdline(p)))]
    for process in left:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=30)
    shutil.rmtree(head.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs of the smoke `cells` suite trained by the local executor (training only: the suite's tables
    are evaluated in this process whichever executor trained), moved to <cache>/runs-local; returns the cache."""
    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("bench") / "cache"
    ctx = build_context(BenchOptions(suites=["cells"], profile="smoke", out=cache.parent / "local", cache=cache),
                        stream=io.StringIO())
    try:
        ctx.executor.ensure("cells", SUITES["cells"].plan(ctx))
    finally:
        ctx.close()
    (cache / "runs").rename(cache / "runs-local")  # the Ray run trains the same runs again, on the same data
    return cache


def run_files(runs: Path) -> list[str]:
    """Every file of a runs folder but evaluations, relative; event files by their folder only (their names
    hold host and pid)."""
    names = [path.relative_to(runs).as_posix() for path in runs.rglob("*") if path.is_file() and "evals" not in path.parts]
    return sorted({name.split("events.out.tfevents.")[0] + "events" if "events.out.tfevents." in name else name
                   for name in names})


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def assert_same_runs(first: Path, second: Path) -> None:
    """Same run folders (keys), files, results, logs and final weights in two runs folders."""
    assert run_files(first) == run_files(second)
    keys = sorted(path.name for path in first.iterdir())
    assert keys == sorted(path.name for path in second.iterdir()) and keys
    for key in keys:
        a, b = (json.loads((root / key / "result.json").read_text()) for root in (first, second))
        assert without_timing(a) == without_timing(b), key
        assert log_rows(first / key / "train") == log_rows(second / key / "train"), key
        last_a, last_b = (torch.load(root / key / "train" / "last.pt", weights_only=True)["model"] for root in (first, second))
        assert last_a.keys() == last_b.keys() and all(torch.equal(last_a[k], last_b[k]) for k in last_a), key


def suite_table(results: Path, suite: str) -> pd.DataFrame:
    table = pd.read_csv(results / f"{suite}.csv")
    assert set(TIMING_COLUMNS) <= set(table.columns)
    return table.drop(columns=list(TIMING_COLUMNS))


def test_the_smoke_cells_suite_on_a_ray_head_equals_the_local_executor(ray_head, local_smoke):
    cache = local_smoke
    ray_results = cache.parent / "ray"
    options = BenchOptions(suites=["cells"], profile="smoke", out=ray_results, cache=cache, generalise=False,
                           executor="ray", address=ray_head.address)
    log = io.StringIO()
    summary = run_benchmark(options, stream=log)
    assert (summary.runs_total, summary.runs_trained) == (6, 6), log.getvalue()
    assert log.getvalue().count("queued to train") == 6
    assert_same_runs(cache / "runs-local", cache / "runs")
    table = pd.read_csv(ray_results / "cells.csv")
    assert sorted(table["run_key"]) == sorted(path.name for path in (cache / "runs-local").iterdir())
    for run in (cache / "runs").iterdir():  # one TensorBoard event file per run, written on the Ray worker
        assert len(list((run / "train").glob("events.out.tfevents.*"))) == 1
    manifest = json.loads((ray_results / "bench_run.json").read_text())["invocations"][-1]
    assert manifest["executor"] == "ray"

    again = build_context(options, stream=io.StringIO())  # a rerun finds every run in the cache: no task
    try:
        again.executor.ensure("cells", SUITES["cells"].plan(again))
    finally:
        again.close()
    assert again.executor.tally["cells"] == [0, 6]


def test_a_killed_worker_is_retried_and_ends_in_the_uninterrupted_result(ray_head, local_smoke, tmp_path):
    cache = local_smoke
    options = BenchOptions(suites=["cells"], profile="smoke", out=tmp_path / "out", cache=cache, executor="ray",
                           address=ray_head.address)
    ctx = build_context(options, stream=io.StringIO())
    spec = ctx.spec("s2vt", "gru", seed=5, max_steps=80, val_every_steps=5)  # 16 intervals: time to kill one
    train_dir = ctx.store.dir(spec) / "train"
    outcome: dict = {}

    def ensure() -> None:
        try:
            outcome["records"] = ctx.executor.ensure("kill", [spec])
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=ensure)
    worker.start()
    try:
        wait_for(lambda: (train_dir / "last.pt").is_file() or not worker.is_alive(), 300, "the run's first last.pt")
        assert "error" not in outcome, outcome.get("error")
        title = f"ray::{TASK_PREFIX}{spec.title}"  # Ray's process title of the worker running the task
        running = [p for p in ray_head.descendants() if " ".join(safe_cmdline(p)).startswith(title)]
        assert len(running) == 1 and not (ctx.store.dir(spec) / "result.json").exists()
        running[0].send_signal(signal.SIGKILL)  # the worker dies mid-run; Ray retries the task elsewhere
        worker.join(timeout=600)
        assert not worker.is_alive(), "the retried run did not finish"
    finally:
        worker.join(timeout=600)
        ctx.close()
    assert "error" not in outcome, outcome.get("error")
    record = outcome["records"][spec.key]
    assert record.result["steps_done"] == 80
    assert len(list(train_dir.glob("events.out.tfevents.*"))) == 2  # one per process: the killed one and the retry

    local = RunStore(tmp_path / "uninterrupted").train(spec)  # the same run, never interrupted, in this process
    assert without_timing(record.result) == without_timing(local.result)
    assert log_rows(train_dir) == log_rows(local.train_dir)
    retried, uninterrupted = (torch.load(d / "last.pt", weights_only=True)["model"] for d in (train_dir, local.train_dir))
    assert all(torch.equal(retried[name], uninterrupted[name]) for name in retried)


def safe_cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def test_executor_options_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="--address applies to --executor ray"):
        BenchOptions(suites=["cells"], out=tmp_path, address="auto").validate()
    with pytest.raises(ConfigError, match="--executor 'slurm' is not valid"):
        BenchOptions(suites=["cells"], out=tmp_path, executor="slurm").validate()
    with pytest.raises(ConfigError, match="--jobs 2 applies to --executor local"):
        BenchOptions(suites=["cells"], out=tmp_path, jobs=2, executor="ray").validate()


def test_without_ray_the_option_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as it does when Ray is not installed
    from typer.testing import CliRunner

    from benchmark.cli import app

    done = CliRunner().invoke(app, ["run", "--suite", "cells", "--profile", "smoke", "--executor", "ray",
                                    "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert done.exit_code == 2 and "pip install 'vidcap[ray]'" in done.output
    assert not (tmp_path / "cache").exists()  # refused before any data was made


@pytest.mark.slow
def test_the_quick_cells_suite_on_a_ray_head_equals_the_local_executor(ray_head, tmp_path):
    """The issue's comparison at the quick profile's size (600 steps per run): minutes per run here."""
    torch.set_num_threads(1)
    cache = tmp_path / "cache"
    run_benchmark(BenchOptions(suites=["cells"], profile="quick", out=tmp_path / "local", cache=cache,
                               generalise=False), stream=io.StringIO())
    (cache / "runs").rename(cache / "runs-local")
    run_benchmark(BenchOptions(suites=["cells"], profile="quick", out=tmp_path / "ray", cache=cache, generalise=False,
                               executor="ray", address=ray_head.address), stream=io.StringIO())
    assert_same_runs(cache / "runs-local", cache / "runs")
    pd.testing.assert_frame_equal(suite_table(tmp_path / "local", "cells"), suite_table(tmp_path / "ray", "cells"))
