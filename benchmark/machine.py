"""What machine and library versions produced a result: printed in every report."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("vidcap", "torch", "torchvision", "numpy", "decord", "av", "pycocoevalcap", "pandas", "matplotlib", "typer")


@dataclass(frozen=True)
class MachineInfo:
    cpu_model: str
    cores: int  # CPUs this process may use
    ram_gib: float
    gpu: str
    os: str
    python: str
    java: str
    versions: dict[str, str]
    cpu_capability: str = "unknown"  # the instruction set torch's CPU kernels use (AVX2, AVX512...): part of run keys

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        lines = [
            f"- CPU: {self.cpu_model}, {self.cores} core(s) available, torch kernels {self.cpu_capability}",
            f"- RAM: {self.ram_gib:.1f} GiB",
            f"- GPU: {self.gpu}",
            f"- OS: {self.os}; Python {self.python}; Java: {self.java}",
            "- Libraries: " + ", ".join(f"{name} {version}" for name, version in self.versions.items()),
        ]
        return "\n".join(lines)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def ram_gib() -> float:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return float("nan")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def java_version() -> str:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    first = (done.stderr or done.stdout).strip().splitlines()
    return first[0] if first else "unknown"


def library_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def gpu_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "none (CPU only)"


def describe_machine() -> MachineInfo:
    return MachineInfo(
        cpu_model=cpu_model(),
        cores=available_cores(),
        ram_gib=ram_gib(),
        gpu=gpu_name(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        java=java_version(),
        versions=library_versions(),
        cpu_capability=cpu_capability(),
    )


def cpu_capability() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()
