"""IsolatedDecoder: decoding in child processes, so a native crash or a hang costs one file.

The crashes are real: the child dies of SIGSEGV (tests/decoder_faults.py) and the hang is a child
that never answers; the files around them are real mp4s through the real decoders.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from decoder_faults import faulty_probe, faulty_read, hang_arrivals, rendezvous_arrivals
from vidcap_core.errors import ConfigError, VideoReadError
from vidcap_core.video import IsolatedDecoder, probe_video, read_frames

pytestmark = pytest.mark.timeout(240)
NUM_FRAMES = 6


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Two real clips, plus copies named so decoder_faults crashes or hangs on them."""
    from conftest import write_video

    folder = tmp_path_factory.mktemp("isolated")
    good = write_video(folder / "good.mp4", 20)
    other = write_video(folder / "other.mp4", 30, size=(64, 48))
    crash = folder / "segfault.mp4"
    hang = folder / "hang.mp4"
    for path in (crash, hang):
        path.write_bytes(good.read_bytes())
    return {"good": good, "other": other, "crash": crash, "hang": hang}


@pytest.fixture(scope="module")
def faulty() -> IsolatedDecoder:
    with IsolatedDecoder(workers=1, timeout_s=10, read_fn=faulty_read, probe_fn=faulty_probe) as decoder:
        yield decoder


def test_results_equal_decoding_in_process(clips):
    with IsolatedDecoder() as decoder:
        for name in ("good", "other"):
            np.testing.assert_array_equal(decoder.read(clips[name], NUM_FRAMES, 32), read_frames(clips[name], NUM_FRAMES, 32))
            assert decoder.probe(clips[name]) == probe_video(clips[name])
        assert len(decoder.pids) == 1 and decoder.pids[0] != os.getpid()  # one child, kept between calls


def test_a_typed_error_in_the_child_arrives_unchanged(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(VideoReadError) as here:
        read_frames(text, NUM_FRAMES, 32)
    with IsolatedDecoder() as decoder, pytest.raises(VideoReadError) as there:
        decoder.read(text, NUM_FRAMES, 32)
    assert str(there.value) == str(here.value)
    assert there.value.detail == here.value.detail and "Invalid data" in there.value.detail  # FFmpeg's words
    assert (there.value.path, there.value.problem, there.value.advice) == (here.value.path, here.value.problem,
                                                                           here.value.advice)


def test_a_segfault_costs_that_file_only(faulty, clips):
    before = faulty.read(clips["good"], NUM_FRAMES, 32)
    first_child = faulty.pids
    with pytest.raises(VideoReadError, match=r"segfault\.mp4': the video decoder crashed while reading it") as read:
        faulty.read(clips["crash"], NUM_FRAMES, 32)
    with pytest.raises(VideoReadError, match="crashed") as probed:
        faulty.probe(clips["crash"])
    for error in (read.value, probed.value):  # the signal is the error's detail, not part of its sentence
        assert error.detail == "decoder process: signal SIGSEGV" and "SIGSEGV" not in str(error)
    np.testing.assert_array_equal(faulty.read(clips["good"], NUM_FRAMES, 32), before)  # a fresh child took over
    assert faulty.pids and faulty.pids != first_child


def test_a_hang_is_stopped_after_the_time_limit(clips):
    with IsolatedDecoder(timeout_s=2, read_fn=faulty_read, probe_fn=faulty_probe) as decoder:
        decoder.read(clips["good"], NUM_FRAMES, 32)  # child started, so the limit below times decoding only
        hung_child = decoder.pids[0]
        # Only the time limit raises this (the child sleeps 600 s; the module's 240 s timeout would
        # fail a decoder that waited for it), so no wall-time assertion is needed or wanted here.
        with pytest.raises(VideoReadError, match=r"hang\.mp4': decoding did not finish within 2 s"):
            decoder.read(clips["hang"], NUM_FRAMES, 32)
        assert not pid_alive(hung_child)
        assert decoder.read(clips["other"], NUM_FRAMES, 32).shape == (NUM_FRAMES, 32, 32, 3)


def test_calls_run_in_parallel_up_to_the_worker_count(clips, tmp_path):
    """Overlap is proven, not timed: a `rendezvous*` read (decoder_faults) decodes only once both
    reads are in flight in two children at once, so a decoder that ran them one after another
    would end in its time limit's VideoReadError instead of frames."""
    from concurrent.futures import ThreadPoolExecutor

    pair = [tmp_path / "rendezvous-a.mp4", tmp_path / "rendezvous-b.mp4"]
    for path, clip in zip(pair, (clips["good"], clips["other"])):
        path.write_bytes(clip.read_bytes())
    with IsolatedDecoder(workers=2, read_fn=faulty_read, probe_fn=faulty_probe) as decoder:
        with ThreadPoolExecutor(2) as pool:
            met = list(pool.map(lambda p: decoder.read(p, NUM_FRAMES, 32), pair))
        arrivals = sorted(f.name for f in rendezvous_arrivals(pair[0]).iterdir())
        assert [name.rsplit(".", 1)[0] for name in arrivals] == ["rendezvous-a.mp4", "rendezvous-b.mp4"]
        readers = {int(name.rsplit(".", 1)[1]) for name in arrivals}
        assert len(readers) == 2 and readers == set(decoder.pids)  # two children, both kept
        with ThreadPoolExecutor(4) as pool:
            frames = list(pool.map(lambda p: decoder.read(p, NUM_FRAMES, 32), [clips["good"], clips["other"]] * 3))
        assert len(decoder.pids) == 2  # four callers, still only `workers` children
    np.testing.assert_array_equal(met[0], read_frames(clips["good"], NUM_FRAMES, 32))
    assert all(f.shape == (NUM_FRAMES, 32, 32, 3) for f in met + frames)


def test_closed_decoder_refuses_and_leaves_no_child(clips):
    decoder = IsolatedDecoder()
    decoder.read(clips["good"], NUM_FRAMES, 32)
    child = decoder.pids[0]
    decoder.close()
    assert not pid_alive(child)
    with pytest.raises(ConfigError, match="closed"):
        decoder.read(clips["good"], NUM_FRAMES, 32)
    with pytest.raises(ConfigError):
        IsolatedDecoder(workers=0)


def test_children_die_with_a_killed_parent(clips, tmp_path):
    """kill -9 of the process that owns the decoders leaves no child behind: an idle decoder, a
    decoder busy on a file (it never reads its request pipe, only the lifeline tells it), and a
    benchmark pool worker; all spawned from threads that have ended (vidcap_core.processes)."""
    script = textwrap.dedent(f"""
        import os, sys, threading, time
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context
        from decoder_faults import faulty_probe, faulty_read
        from vidcap_core.processes import die_with_parent, lifeline
        from vidcap_core.video import IsolatedDecoder
        idle = IsolatedDecoder()
        busy = IsolatedDecoder(timeout_s=600, read_fn=faulty_read, probe_fn=faulty_probe)
        pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=die_with_parent,
                                   initargs=(lifeline(),))
        def spawn():
            idle.read({str(clips["good"])!r}, 4, 32)
            busy.read({str(clips["good"])!r}, 4, 32)
            print(pool.submit(os.getpid).result(), flush=True)
        starter = threading.Thread(target=spawn)
        starter.start()
        starter.join()
        print(idle.pids[0], busy.pids[0], flush=True)
        threading.Thread(target=busy.read, args=({str(clips["hang"])!r}, 4, 32), daemon=True).start()
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    children = [int(parent.stdout.readline()), *map(int, parent.stdout.readline().split())]
    assert len(children) == 3 and all(pid_alive(child) for child in children)
    hanging = hang_arrivals(clips["hang"]) / f"{clips['hang'].name}.{children[2]}"
    deadline = time.monotonic() + 60
    while not hanging.exists():  # the busy child is inside the hang, not between requests
        assert time.monotonic() < deadline, "the hang request never reached the busy child"
        time.sleep(0.02)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(pid_alive(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [child for child in children if pid_alive(child)]


def run_in_thread_that_ends(fn):
    """fn() in a new thread, returned once that thread no longer exists in the kernel either (its
    /proc/self/task entry is gone): by then the kernel has finished its exit, and any PR_SET_PDEATHSIG
    signal to the children it spawned has been sent (the thread's exit sends it before the entry goes)."""
    import threading

    box = {}
    thread = threading.Thread(target=lambda: box.update(result=fn()))
    thread.start()
    thread.join()  # the Python thread is done; the OS thread may still be exiting
    task = Path(f"/proc/self/task/{thread.native_id}")
    deadline = time.monotonic() + 30
    while task.exists():
        assert time.monotonic() < deadline, f"thread {thread.native_id} still exists 30 s after it was joined"
        time.sleep(0.01)
    return box["result"]


def assert_alive_and_not_killed(pid: int) -> None:
    """`pid` runs (not a zombie) and no SIGKILL is pending for it: none was sent to it, not just none
    that has landed yet."""
    assert pid_alive(pid), f"process {pid} is gone"
    kill_bit = 1 << (signal.SIGKILL - 1)
    for status in [Path(f"/proc/{pid}/status"), *Path(f"/proc/{pid}/task").glob("*/status")]:
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        for pending in ("SigPnd", "ShdPnd"):
            assert not int(fields[pending], 16) & kill_bit, f"SIGKILL pending for process {pid} ({status})"


def test_children_outlive_the_thread_that_spawned_them(clips):
    """The issue-12 bug: children died with the (Gradio/anyio worker) thread that spawned them,
    and the next request, from another thread, got a dead child and blamed its file."""
    with IsolatedDecoder(workers=2) as decoder:
        decoder_start = run_in_thread_that_ends(lambda: (decoder.start(), decoder.pids)[1])
        first = run_in_thread_that_ends(lambda: decoder.read(clips["good"], NUM_FRAMES, 32))
        assert decoder.pids == decoder_start and len(decoder_start) == 2  # the same children...
        for child in decoder_start:  # ...alive, with no death signal on its way from the threads' exits
            assert_alive_and_not_killed(child)
        again = run_in_thread_that_ends(lambda: decoder.read(clips["good"], NUM_FRAMES, 32))
        np.testing.assert_array_equal(again, first)
        assert decoder.pids == decoder_start


def test_benchmark_pool_workers_outlive_the_thread_that_spawned_them():
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from vidcap_core.processes import die_with_parent, lifeline

    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=die_with_parent,
                             initargs=(lifeline(),)) as pool:
        worker = run_in_thread_that_ends(lambda: pool.submit(os.getpid).result(timeout=120))
        assert_alive_and_not_killed(worker)  # the spawning thread has exited: no death signal was sent
        assert run_in_thread_that_ends(lambda: pool.submit(os.getpid).result(timeout=120)) == worker


def test_a_child_that_died_idle_is_replaced_without_blaming_the_file(clips):
    with IsolatedDecoder() as decoder:
        before = decoder.read(clips["good"], NUM_FRAMES, 32)
        idle_child = decoder.pids[0]
        os.kill(idle_child, signal.SIGKILL)  # dies while idle (an OOM killer, a stray kill)
        deadline = time.monotonic() + 30
        while pid_alive(idle_child) and time.monotonic() < deadline:
            time.sleep(0.05)
        np.testing.assert_array_equal(decoder.read(clips["good"], NUM_FRAMES, 32), before)  # no error
        assert decoder.pids and decoder.pids != [idle_child]


# ----------------------------------------------------------------------------- through vidcap caption and the demo


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> dict[str, Path]:
    from test_demo import build_demo_results

    return build_demo_results(tmp_path_factory.mktemp("served"))


def test_caption_batch_goes_on_after_a_decoder_crash(served, clips, capsys):
    from vidcap_core.cli.caption import caption_each
    from vidcap_core.pipeline import Captioner

    with IsolatedDecoder(timeout_s=10, read_fn=faulty_read, probe_fn=faulty_probe) as decoder:
        captioner = Captioner.from_checkpoint(served["results"] / "best" / "model.pt", device="cpu", reader=decoder.read)
        capsys.readouterr()
        caption_each(captioner, [clips["good"], clips["crash"], clips["other"]], 1, 1, 0.0, "json")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["path"] for line in lines] == [str(clips[n]) for n in ("good", "crash", "other")]
    assert "caption" in lines[0] and "caption" in lines[2]
    assert "crashed" in lines[1]["error"] and lines[1]["detail"] == "decoder process: signal SIGSEGV"
    assert "caption" not in lines[1]


def test_demo_request_fails_alone_when_the_decoder_crashes(served, clips):
    from demo.examples import ExampleSet
    from demo.handlers import Captioned, DemoHandlers, DemoLimits, Failed, ModelCache, find_checkpoints

    with IsolatedDecoder(workers=2, timeout_s=10, read_fn=faulty_read, probe_fn=faulty_probe) as decoder:
        handlers = DemoHandlers(ModelCache(find_checkpoints(served["results"])), DemoLimits(), ExampleSet(), decoder)
        crashed = handlers.caption_video(clips["crash"], "best")
        assert isinstance(crashed, Failed)
        assert crashed.message == ("Cannot read video 'segfault.mp4': the video decoder crashed while reading it, so the "
                                   "file is probably damaged; re-encode it (e.g. `ffmpeg -i in.mp4 -c:v libx264 "
                                   "-pix_fmt yuv420p out.mp4`) and upload it again.")
        assert isinstance(handlers.caption_video(clips["good"], "best"), Captioned)  # the server carries on


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
