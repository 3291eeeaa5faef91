"""`vidcap-bench perf`'s report on a tiny made-up measurement set: tables, ratios to the decode floor,
the busy-machine warning. Nothing here times anything."""

from __future__ import annotations

from benchmark.perf import (
    PerfResults,
    Timing,
    latency_row,
    latency_table,
    load_summary,
    markdown,
    timings_table,
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


def test_busy_warning_only_above_half_the_cores():
    quiet = load_summary((0.4, 0.5, 0.6), (0.9, 0.7, 0.6), cores=2)
    assert quiet["warning"] is None and quiet["busy_limit"] == 1.0
    busy_after = load_summary((0.4, 0.5, 0.6), (1.6, 0.9, 0.7), cores=2)
    assert "1.60 on 2 core(s)" in busy_after["warning"]
    assert load_summary((7.0, 6.0, 5.0), (0.5, 0.5, 0.5), cores=16)["warning"] is None  # 16 x 0.5 = 8
    assert load_summary((9.0, 6.0, 5.0), (0.5, 0.5, 0.5), cores=16)["warning"] is not None


def test_report_shows_latency_floor_load_and_warning():
    busy = markdown(made_up_results(load_summary((6.5, 6.0, 5.0), (7.0, 6.2, 5.1), cores=2)), 12.0)
    assert "**Busy machine: the 1-minute load average reached 7.00 on 2 core(s)" in busy
    assert "load average (1, 5, 15 min) before: 6.50, 6.00, 5.00; after: 7.00, 6.20, 5.10" in busy
    assert "| first `/caption` request " in busy and "8.2x" in busy and "Decode floor: decode floor" in busy
    assert "| chosen / decord | 1.50x      |" in busy
    quiet = markdown(made_up_results(load_summary((0.1, 0.1, 0.1), (0.2, 0.1, 0.1), cores=2)), 12.0)
    assert "Busy machine" not in quiet
