"""`run_perf`: one `vidcap-bench perf` run: write the clips, measure every stage and the demo, then
write perf.json and perf.md into the output folder."""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

from benchmark.machine import available_cores, describe_machine
from benchmark.perf.cli import measure_cli
from benchmark.perf.clips import CLIP_720P, SHARED_CAMERA_CLIP, write_480p_clip, write_test_clip
from benchmark.perf.cpu import OwnWork, load_summary
from benchmark.perf.demo_server import measure_first_request, read_browser_measurement, serving_folder
from benchmark.perf.measure import (
    load_model_for_latency,
    measure_backbones,
    measure_decode_floor,
    measure_decoding,
    measure_end_to_end,
    measure_training,
    measure_video_decoding,
)
from benchmark.perf.report import markdown
from benchmark.perf.timing import PerfOptions, PerfResults
from benchmark.prepare import ensure_dataset, synth_source
from vidcap_core.files import atomic_write_text as write_text
from vidcap_core.files import write_json


def run_perf(options: PerfOptions) -> Path:
    started = time.perf_counter()
    load_before = os.getloadavg()
    own = OwnWork()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    results = PerfResults()
    checkpoint = options.checkpoint or out / "best" / "model.pt"
    tiny = synth_source(Path(options.cache), "tiny", None)
    ensure_dataset(tiny, say=lambda _: None)
    synth_clip = sorted((tiny.root / "videos").glob("*.mp4"))[0]
    with tempfile.TemporaryDirectory(prefix="vidcap-perf-") as scratch:
        scratch_dir = Path(scratch)
        clip = write_480p_clip(scratch_dir / "clip_480p_10s.mp4")
        page_clips = {f"SynthClips clip ({synth_clip.name}, 64x64)": synth_clip}
        if SHARED_CAMERA_CLIP.is_file():
            page_clips[f"real camera clip ({SHARED_CAMERA_CLIP.name}, 426x240)"] = SHARED_CAMERA_CLIP
        page_clips["10 s 1280x720 H.264"] = write_test_clip(scratch_dir / "clip_720p_10s.mp4", CLIP_720P)
        model_path, model_note = load_model_for_latency(checkpoint, scratch_dir)
        results.notes.append(f"Latency model: {model_note}; inputs for decoding benchmarks are random features of its size.")
        kinds = {"10 s 854x480 H.264": clip, f"SynthClips clip ({synth_clip.name}, 64x64)": synth_clip}
        if SHARED_CAMERA_CLIP.is_file():
            kinds["real camera clip (flipping_a_pancake.mkv, 426x240)"] = SHARED_CAMERA_CLIP
        measure_video_decoding(kinds, options.repeats, results)
        floor = measure_decode_floor(clip, options.repeats, results)
        measure_backbones(options.repeats, results)
        measure_training(options.repeats, results)
        measure_decoding(model_path, options.repeats, results)
        measure_end_to_end(model_path, clip, options.repeats, results)
        served = out if model_path == checkpoint else serving_folder(model_path, scratch_dir / "served")
        measure_first_request(served, tiny.root, clip, options.repeats, results, own, page_clips)
        measure_cli(model_path, page_clips, options.repeats, results)
        results.ratios["`Captioner.caption` / decode floor (medians)"] = results.e2e["total_ms"] / 1000 / floor.median
    read_browser_measurement(out, results)
    results.load = load_summary(load_before, os.getloadavg(), available_cores(), own.other_cores())
    seconds = time.perf_counter() - started
    write_json(out / "perf.json", {
        "sections": {k: [t.to_dict() for t in v] for k, v in results.sections.items()},
        "ratios": {k: v for k, v in results.ratios.items() if math.isfinite(v)}, "end_to_end": results.e2e,
        "notes": results.notes, "seconds": round(seconds, 1), "machine": describe_machine().to_dict(),
        "latency": results.latency, "load": results.load,
    })
    path = out / "perf.md"
    write_text(path, markdown(results, seconds))
    return path
