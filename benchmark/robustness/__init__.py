"""`vidcap-bench robustness`: hostile inputs through every way a video enters vidcap, and a demo load test.

Each case (a real-world sample from ../shared/videos, or a broken file generated here: truncated,
random payload, no frames, absurd dimensions, one frame, audio only, text named .mp4) goes through
three paths: `vidcap data probe`, `vidcap caption` and the demo's `DemoHandlers.caption_video`. The
only acceptable outcomes are a result or the typed refusal naming the file. The load test serves the
demo in-process on 127.0.0.1 and sends clients x requests `/caption` calls from concurrent
`gradio_client` clients.

One module per job:
  cases.py      the inputs: generated broken/good files (`encode_h264` encodes every H.264 clip the benchmark makes) and the shared samples
  drivers.py    the three paths (child processes with time limits, the demo handler) and how answers are judged
  load_test.py  the demo under concurrent clients: answers, latency, listening sockets and memory (psutil)
  report.py     robustness.md (DataFrame tables) and robustness.json
  run.py        `run_robustness`: all of the above, in order
"""

from benchmark.robustness.run import run_robustness

__all__ = ["run_robustness"]
