"""Helpers for child processes that must not outlive the process that started them."""

from __future__ import annotations

import signal


def die_with_parent() -> None:
    """Ask the kernel (Linux) to SIGKILL this process when its parent dies, so an interrupted
    caller leaves no orphan behind (an orphaned worker would otherwise finish its work unseen)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: children end when their work or pipe ends
        pass
