"""CPU accounting from /proc for `vidcap-bench perf`: the CPU seconds of a process tree and of the
machine, `OwnWork` (how much CPU the rest of the machine used while this run ran) and the busy-machine
warning built from it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

BUSY_LOAD_PER_CORE = 0.5  # other work keeping more than cores x this busy on average shared the run


def _proc_stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3, the state, first); None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def child_processes() -> dict[int, list[int]]:
    """Every live process's children, by parent id, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _proc_stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`: its children, their children, ..."""
    children = child_processes()
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack += children.get(child, [])
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used by `pid`, its live descendants and every child any of them has reaped (the
    kernel's utime + stime + cutime + cstime, so each process of the tree is counted once)."""
    ticks = 0
    for member in [pid, *descendants(pid)]:
        fields = _proc_stat_fields(member)
        if fields is not None:
            ticks += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds(cpus: set[int]) -> float:
    """CPU seconds the machine has spent working (user, nice, system, irq, softirq; not idle or
    waiting) on `cpus` since boot, from /proc/stat."""
    ticks = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks += sum(int(v) for v in values[:3] + values[4:7])  # user nice system [idle] [iowait] irq softirq
    return ticks / os.sysconf("SC_CLK_TCK")


class OwnWork:
    """How much CPU the rest of the machine used while this run ran: the machine's CPU time on the
    cores this process may use, minus this run's own process tree (this process, the demo it starts,
    the demo's decoder children). Linux only (/proc); elsewhere `other_cores()` is None."""

    def __init__(self) -> None:
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        self.available = Path("/proc/stat").is_file() and bool(self.cpus)
        self.started = time.perf_counter()
        self.machine_start = machine_cpu_seconds(self.cpus) if self.available else 0.0
        self.own_start = tree_cpu_seconds(os.getpid()) if self.available else 0.0
        self.orphaned = 0.0  # CPU of children of a stopped child, which leave the tree unreaped

    def before_stopping(self, pid: int) -> None:
        """Call just before killing child `pid`: its own children are then orphaned, not reaped into
        this tree's count, so their CPU so far is added here (pid's own is reaped with it)."""
        if self.available:
            self.orphaned += sum(tree_cpu_seconds(child) for child in child_processes().get(pid, []))

    def other_cores(self) -> float | None:
        """Cores other processes kept busy on average since this object was made."""
        if not self.available:
            return None
        elapsed = time.perf_counter() - self.started
        machine = machine_cpu_seconds(self.cpus) - self.machine_start
        own = tree_cpu_seconds(os.getpid()) - self.own_start + self.orphaned
        return max(0.0, machine - own) / elapsed if elapsed > 0 else 0.0


def load_summary(before: tuple[float, float, float], after: tuple[float, float, float], cores: int,
                 other_cores: float | None) -> dict[str, Any]:
    """The load around a run and, when other work shared the machine, the warning the report prints.

    Busy means `other_cores` (OwnWork: processes outside this run's own tree, on average during the
    run) above cores x BUSY_LOAD_PER_CORE. The load averages also count this run's own work (its
    torch threads, the demo it starts), so they are shown but judge nothing; without /proc
    (other_cores None) the 1-minute load average before the run started, which has none of it, judges.
    """
    limit = cores * BUSY_LOAD_PER_CORE
    if other_cores is not None:
        busy = other_cores > limit
        what = f"other processes kept {other_cores:.2f} of {cores} core(s) busy on average during the run"
    else:
        busy = before[0] > limit
        what = f"the 1-minute load average was {before[0]:.2f} on {cores} core(s) before the run"
    warning = None
    if busy:
        warning = (f"**Busy machine: {what} (above {limit:g} = cores x {BUSY_LOAD_PER_CORE}; this run's own "
                   "processes not counted); other work shared the CPUs, so these times are slower and noisier "
                   "than on a quiet machine. Compare runs only when neither warns.**")
    return {"before": list(before), "after": list(after), "other_cores": other_cores, "cores": cores,
            "busy_limit": limit, "warning": warning}
