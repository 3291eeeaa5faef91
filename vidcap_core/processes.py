"""Child processes that die with the process that started them, whichever thread started them.

Why not PR_SET_PDEATHSIG: the kernel sends that signal when the *thread* that spawned the child
exits, not when the process does. Gradio/anyio worker threads retire after about 10 s idle, so a
decoder child spawned from one was SIGKILLed while the server lived on, and the next request got
a dead child and blamed its file. Spawning from one long-lived thread would fix that only for
callers that remember to, so we use a mechanism that does not care about threads at all:

The lifeline. Each parent process holds one pipe (`lifeline()`, made on first use). The parent
keeps the write end open and never writes to it; every child gets only the read end (passed as
a `multiprocessing` Connection, so `spawn` hands it over) and runs `die_with_parent(lifeline)`,
which starts a daemon thread blocked on reading it. The kernel closes the write end when the
parent process ends, however it ends (exit, exception, kill -9), so the read returns EOF and the
watcher calls `os._exit`. Threads of the parent may come and go; the write end stays.

Limits, stated: the write end is not inheritable (os.pipe), so `spawn`ed and `subprocess`
children do not hold it; a child *forked* from the parent (multiprocessing "fork") would, and
would keep the lifeline open while it lives. The watcher needs the GIL to run, so a child stuck
in native code that holds the GIL ends only when that code returns (IsolatedDecoder kills a
child that overruns its time limit while the parent lives).
"""

from __future__ import annotations

import os
import threading
from multiprocessing.connection import Connection

_lifeline: tuple[Connection, Connection] | None = None
_lifeline_lock = threading.Lock()


def lifeline() -> Connection:
    """The read end of this process's lifeline pipe, to pass to each child (made on first use).

    The write end stays open, unused, in this process until it ends; so do not close what this returns.
    """
    global _lifeline
    with _lifeline_lock:
        if _lifeline is None or _lifeline[1].closed:
            import multiprocessing

            read_end, write_end = multiprocessing.Pipe(duplex=False)  # (receive-only, send-only)
            _lifeline = (read_end, write_end)
        return _lifeline[0]


def die_with_parent(lifeline_end: Connection) -> None:
    """In a child: end this process (os._exit) as soon as the parent process that passed
    `lifeline_end` (its `lifeline()`) ends. Returns at once; a daemon thread watches."""
    threading.Thread(target=_watch, args=(lifeline_end,), name="vidcap-lifeline", daemon=True).start()


def _watch(lifeline_end: Connection) -> None:
    try:
        while True:
            lifeline_end.recv_bytes()  # the parent never writes; returns only on EOF (or stray bytes)
    except (EOFError, OSError):  # EOF: the last write end closed, i.e. the parent process is gone
        os._exit(1)
