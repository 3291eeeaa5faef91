"""`vidcap-bench perf`'s report on a tiny made-up measurement set: tables, ratios to the decode floor,
the busy-machine warning, and the CPU accounting behind it (CPU seconds of real processes). Nothing
here times anything."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.perf import (
    OwnWork,
    PerfResults,
    Timing,
    child_processes,
    latency_row,
    latency_table,
    load_summary,
    markdown,
    timings_table,
    tree_cpu_seconds,
)

FLOOR = Timing("decode floor: all 300 frames", [0.10, 0.12, 0.11], 300, "frames")


def made_up_results(load: dict) -> PerfResults:
    results = PerfResults()
    results.sections["Decode floor (every frame decoded, no conversion)"] = [FLOOR]
    results.sections["Video decoding"] = [Timing("chosen, clip", [0.2, 0.3, 0.25], 32, "frames")]
    results.latency = [latency_row("`Captioner.caption`", [0.30, 0.22, 0.25], "<= 0.3 s"),
                       latency_row("first `/caption` request", [0.9], "<= 1 s")]
    results.ratios["chosen / decord"] = 1.5
    results.load = load
    return results


def test_timings_table_has_median_and_spread():
    table = timings_table([Timing("a | b", [0.2, 0.3, 0.25], 32, "frames")])
    assert table.to_dict("records") == [{"what": "a | b", "median": "250.0 ms", "min..max": "200.0..300.0 ms",
                                         "throughput": "128.0 frames/s", "per unit": "7.81 ms/frame"}]


def test_latency_table_gives_ratio_to_the_decode_floor():
    table = latency_table(made_up_results({}).latency, FLOOR)
    assert table["median"].tolist() == ["0.250 s", "0.900 s"]
    assert table["min..max"].tolist() == ["0.220..0.300 s", "0.900..0.900 s"]
    assert table["x decode floor"].tolist() == ["2.3x", "8.2x"]  # 0.25 / 0.11, 0.9 / 0.11
    assert latency_table(made_up_results({}).latency, None)["x decode floor"].tolist() == ["n/a", "n/a"]


def test_busy_warning_counts_other_work_only():
    own_load = load_summary((0.4, 0.5, 0.6), (2.6, 1.2, 0.8), cores=2, other_cores=0.3)  # the run's own load: quiet
    assert own_load["warning"] is None and own_load["busy_limit"] == 1.0
    shared = load_summary((0.4, 0.5, 0.6), (2.6, 1.2, 0.8), cores=2, other_cores=1.35)
    assert "other processes kept 1.35 of 2 core(s) busy on average during the run" in shared["warning"]
    assert load_summary((0.5, 0.5, 0.5), (9.0, 6.0, 5.0), cores=16, other_cores=7.9)["warning"] is None  # 16 x 0.5
    assert load_summary((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), cores=16, other_cores=8.1)["warning"] is not None
    # without /proc: the load before the run started (none of its own work in it) judges
    assert load_summary((0.9, 0.5, 0.5), (3.0, 1.0, 0.5), cores=2, other_cores=None)["warning"] is None
    assert "was 1.20 on 2 core(s) before the run" in load_summary((1.2, 0.5, 0.5), (0.2, 0.1, 0.1), cores=2,
                                                                  other_cores=None)["warning"]


def test_report_shows_latency_floor_load_and_warning():
    busy = markdown(made_up_results(load_summary((6.5, 6.0, 5.0), (7.0, 6.2, 5.1), cores=2, other_cores=1.8)), 12.0)
    assert "**Busy machine: other processes kept 1.80 of 2 core(s) busy on average during the run" in busy
    assert "load average (1, 5, 15 min) before: 6.50, 6.00, 5.00; after: 7.00, 6.20, 5.10" in busy
    assert "- other processes during the run: 1.80 of 2 core(s) busy on average (busy above 1)" in busy
    assert "| first `/caption` request " in busy and "8.2x" in busy and "Decode floor: decode floor" in busy
    assert "| chosen / decord | 1.50x      |" in busy
    quiet = markdown(made_up_results(load_summary((0.1, 0.1, 0.1), (1.9, 0.8, 0.3), cores=2, other_cores=0.1)), 12.0)
    assert "Busy machine" not in quiet


BURN = "import time\nstart = time.process_time()\nwhile time.process_time() - start < {cpu_s}: pass\n"


@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="CPU accounting reads /proc (Linux)")
def test_own_work_counts_the_tree_it_started_including_orphans():
    """CPU time, not wall time: each burner spins until its own process_time() reaches its share."""
    own = OwnWork()
    # a child that starts a grandchild (which burns 0.4 s of CPU), burns 0.3 s itself, then waits to be killed
    child = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                              f"subprocess.Popen([sys.executable, '-c', {BURN.format(cpu_s=0.4)!r}])\n"
                              + BURN.format(cpu_s=0.3) + "time.sleep(600)\n"])
    try:
        def grandchild_cpu() -> float:
            return sum(tree_cpu_seconds(pid) for pid in child_processes().get(child.pid, []))

        # poll for the condition (both burns done), not for a time: the tree's total can reach 0.69 s while
        # the grandchild is still short of its 0.4 s, when the child's start-up took the difference
        deadline = time.monotonic() + 50
        while grandchild_cpu() < 0.39 or tree_cpu_seconds(child.pid) < 0.69:
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        own.before_stopping(child.pid)  # the grandchild will be orphaned by the kill: its CPU is counted now
    finally:
        child.kill()
        child.communicate()
    assert own.orphaned >= 0.39  # the grandchild's burn (clock ticks: 10 ms)
    assert tree_cpu_seconds(os.getpid()) - own.own_start >= 0.29  # the child, reaped into this process's count
    assert own.other_cores() >= 0.0


def test_browser_times_are_read_per_clip(tmp_path):
    """tests/test_demo_browser.py writes one entry per clip (SynthClips, real camera, 10 s 720p); a file
    written before that (one clip, its times at the top) still reads as one row."""
    import json

    from benchmark.perf import BROWSER_RESULT, read_browser_measurement

    (tmp_path / BROWSER_RESULT).write_text(json.dumps({"measured_at": "then", "clips": [
        {"clip": "SynthClips video3.mp4 (64x64), beam 3", "click_to_caption_s": [0.9, 0.5, 0.6]},
        {"clip": "10 s 1280x720 H.264, beam 3", "click_to_caption_s": [1.2, 0.8, 0.7]}]}))
    results = PerfResults()
    read_browser_measurement(tmp_path, results)
    assert [(row["what"].split(";")[0], row["median_s"], row["goal"]) for row in results.latency] == [
        ("click to caption in Chromium (SynthClips video3.mp4 (64x64), beam 3", 0.6, "<= 1 s"),
        ("click to caption in Chromium (10 s 1280x720 H.264, beam 3", 0.8, "<= 1 s")]
    (tmp_path / BROWSER_RESULT).write_text(json.dumps({"measured_at": "then", "clip": "SynthClips video3.mp4, beam 3",
                                                       "click_to_caption_s": [1.0, 0.5]}))
    older = PerfResults()
    read_browser_measurement(tmp_path, older)
    assert len(older.latency) == 1 and older.latency[0]["median_s"] == 0.75


def test_the_480p_clip_is_the_one_perf_has_always_timed_and_the_720p_clip_scales_it(tmp_path):
    import numpy as np

    from benchmark.perf import CLIP_480P, CLIP_720P, write_480p_clip, write_test_clip
    from vidcap_core.video import probe_video, read_frames

    small = write_480p_clip(tmp_path / "a.mp4", seconds=1)
    assert small.read_bytes() == write_test_clip(tmp_path / "b.mp4", CLIP_480P, seconds=1).read_bytes()
    large = write_test_clip(tmp_path / "c.mp4", CLIP_720P, seconds=1)
    info = probe_video(large)
    assert (info.height, info.width, info.frames) == (*CLIP_720P, 30)
    middle = read_frames(large, 1, CLIP_720P)[0]  # (H, W, 3) frame 15 of 30: the square at x 580..700, mid-height
    assert np.abs(middle[360, 640].astype(int) - [220, 40, 40]).sum() < 60  # red, give or take H.264
    assert np.abs(middle[100, 640].astype(int) - [220, 40, 40]).sum() > 150 and middle[360, 500, 0] < 180


def test_cli_rows_time_the_installed_command_and_a_failing_one_raises(tmp_path):
    from benchmark.perf.cli import measure_cli, time_command, vidcap_command

    results = PerfResults()
    missing = tmp_path / "missing.mp4"
    with pytest.raises(RuntimeError, match="exited with"):
        measure_cli(tmp_path / "no_model.pt", {"a missing file": missing}, repeats=1, results=results)
    assert [row["what"] for row in results.latency] == ["`vidcap --help` (a fresh process)"]  # then caption failed
    assert results.latency[0]["repeats"] == 1 and results.latency[0]["goal"] == "<= 1 s"
    assert len(time_command([*vidcap_command(), "--help"], repeats=2)) == 2
