"""`vidcap-bench perf`: throughput and latency of each stage, medians over repeats, on this machine.

Every ratio (chosen decode path vs the reference path and decord, batched vs clip-by-clip beam
search) is measured side by side in the same invocation, alternating the contenders inside each
repeat so drift hits both alike. The report also gives the latencies a user sees (`Captioner.caption`
of the 10 s clip, the first `/caption` request of a freshly started demo, then `/caption` at the page's
beam size on a SynthClips clip, the real camera clip of ../shared/videos and a 10 s 1280x720 clip, and
click to caption in a real browser on the same three, measured by tests/test_demo_browser.py), the
decode floor they are compared with, the
load average before and after, and a warning when other work shared the machine: two runs are
comparable only when neither warns. "Other work" is the CPU time the machine spent outside this
run's own process tree (`OwnWork`: vidcap-bench perf, the demo it starts, their children), so the
run's own load never makes it warn.

The package, by job:
  timing.py       Timing, PerfResults, PerfOptions; time_it, side_by_side, round_robin (the harness)
  clips.py        the 10 s H.264 test clip it writes, the real camera clip it reads
  measure.py      the stage measurements (decoding, decode floor, backbones, training, beam search, end to end)
  demo_server.py  starting the real demo and timing `/caption`; the browser's click-to-caption times
  cpu.py          /proc CPU accounting (OwnWork) and the busy-machine warning
  report.py       perf.md (tables, ratios, notes)
  run.py          run_perf: one `vidcap-bench perf` run, perf.json and perf.md
"""

from __future__ import annotations

from benchmark.perf.timing import (
    PerfOptions,
    PerfResults,
    Timing,
    latency_row,
    round_robin,
    side_by_side,
    time_it,
)
from benchmark.perf.clips import (
    CLIP_480P,
    CLIP_720P,
    CLIP_FPS,
    CLIP_SECONDS,
    SHARED_CAMERA_CLIP,
    write_480p_clip,
    write_test_clip,
)
from benchmark.perf.cpu import (
    BUSY_LOAD_PER_CORE,
    OwnWork,
    child_processes,
    descendants,
    load_summary,
    machine_cpu_seconds,
    tree_cpu_seconds,
)
from benchmark.perf.measure import (
    PERF_FRAMES,
    decode_every_frame,
    decoding_text,
    load_model_for_latency,
    measure_backbones,
    measure_decode_floor,
    measure_decoding,
    measure_end_to_end,
    measure_training,
    measure_video_decoding,
)
from benchmark.perf.demo_server import (
    BROWSER_RESULT,
    DEMO_START_TIMEOUT_S,
    free_port,
    measure_first_request,
    read_browser_measurement,
    serving_folder,
    wait_until_serving,
)
from benchmark.perf.report import (
    latency_table,
    markdown,
    ratios_table,
    timings_table,
)
from benchmark.perf.run import (
    run_perf,
)

__all__ = [
    "BROWSER_RESULT",
    "BUSY_LOAD_PER_CORE",
    "CLIP_480P",
    "CLIP_720P",
    "CLIP_FPS",
    "CLIP_SECONDS",
    "DEMO_START_TIMEOUT_S",
    "OwnWork",
    "PERF_FRAMES",
    "PerfOptions",
    "PerfResults",
    "SHARED_CAMERA_CLIP",
    "Timing",
    "child_processes",
    "decode_every_frame",
    "decoding_text",
    "descendants",
    "free_port",
    "latency_row",
    "latency_table",
    "load_model_for_latency",
    "load_summary",
    "machine_cpu_seconds",
    "markdown",
    "measure_backbones",
    "measure_decode_floor",
    "measure_decoding",
    "measure_end_to_end",
    "measure_first_request",
    "measure_training",
    "measure_video_decoding",
    "ratios_table",
    "read_browser_measurement",
    "round_robin",
    "run_perf",
    "serving_folder",
    "side_by_side",
    "time_it",
    "timings_table",
    "tree_cpu_seconds",
    "wait_until_serving",
    "write_480p_clip",
    "write_test_clip",
]
