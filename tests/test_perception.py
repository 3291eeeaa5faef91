"""Perception measured against the oracle (vidcap_core/perception/measure.py) and the benchmark's
`perception` suite: hand-made slots with a known swap and a lost object, the oracle measured against
itself, synth-slots on real SynthClips clips, and the suite on the smoke profile."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vidcap_core.errors import FeatureError
from vidcap_core.features import slots as learned_slots
from vidcap_core.features.oracle import SLOT_FIELDS as ORACLE_FIELDS
from vidcap_core.features.store import FeatureStore
from vidcap_core.perception.measure import (
    FIELDS,
    identity_swaps,
    match_slots,
    measure_perception,
    perception_table,
    read_learned,
    read_oracle,
)
from vidcap_core.perception.transplant import TRANSPLANT_GROUPS, drawn_objects, transplant, write_transplanted

pytestmark = pytest.mark.usefixtures("one_torch_thread")
COLUMN = {name: i for i, name in enumerate(ORACLE_FIELDS)}


def oracle_slots(xy: np.ndarray, opacity: np.ndarray) -> np.ndarray:
    """Slots (T, K, G) in the oracle's layout: red large squares at `xy` (T, K, 2) with `opacity` (T, K)."""
    T, K = opacity.shape
    slots = np.zeros((T, K, len(ORACLE_FIELDS)), np.float32)
    for name in ("shape=square", "colour=red", "size=large"):
        slots[..., COLUMN[name]] = 1.0
    slots[..., COLUMN["scale"]] = 0.17
    slots[..., COLUMN["x"]], slots[..., COLUMN["y"]] = xy[..., 0], xy[..., 1]
    slots[..., COLUMN["angle_cos"]] = 1.0
    slots[..., COLUMN["present"]] = opacity > 0
    slots[..., COLUMN["opacity"]] = opacity
    slots[opacity <= 0] = 0.0
    return slots


def crossing(T: int = 8) -> np.ndarray:
    """Two objects crossing: object 0 goes left to right along y = 0.3, object 1 right to left along y = 0.7."""
    t = np.linspace(0.1, 0.9, T)
    return np.stack([np.stack([t, np.full(T, 0.3)], -1), np.stack([t[::-1], np.full(T, 0.7)], -1)], 1)  # (T, 2, 2)


def test_a_slot_that_jumps_to_the_other_object_counts_two_swaps():
    xy = crossing()
    truth = read_oracle(oracle_slots(xy, np.ones((8, 2))))
    jumped = xy.copy()
    jumped[4:] = xy[4:, ::-1]  # from frame 4 on, slot 0 holds object 1 and slot 1 object 0
    learned = read_oracle(oracle_slots(jumped, np.ones((8, 2))))
    assert match_slots(truth, learned, 2) in ({0: 0, 1: 1}, {0: 1, 1: 0})
    assert identity_swaps(truth, learned, 2).tolist() == [1, 1]
    assert identity_swaps(truth, truth, 2).tolist() == [0, 0]


def test_matching_follows_position_over_the_clip_not_slot_order():
    xy = crossing()
    truth = read_oracle(oracle_slots(xy, np.ones((8, 2))))
    reordered = read_oracle(oracle_slots(xy[:, ::-1], np.ones((8, 2))))  # the same objects in the other slots
    assert match_slots(truth, reordered, 2) == {0: 1, 1: 0}
    assert identity_swaps(truth, reordered, 2).tolist() == [0, 0]


@pytest.fixture(scope="module")
def tiny_caches(tiny_synth, tmp_path_factory):
    """The tiny SynthClips clips under the oracle and synth-slots, with their slot grids, and synth-cnn's
    region grids (what synth-slots tracks)."""
    from vidcap_core.data import load_dataset
    from vidcap_core.features.extract import extract_features

    records = load_dataset("synth", tiny_synth).records
    out = tmp_path_factory.mktemp("perception")
    for backbone in ("oracle", "synth-slots", "synth-cnn"):
        extract_features(records, backbone, out / backbone, num_frames=8, grid=True, progress=False, device="cpu")
    return out


def test_the_oracle_measured_against_itself_is_perfect(tiny_synth, tiny_caches):
    rows = measure_perception(tiny_caches / "oracle", tiny_synth, split="train")
    table = perception_table(rows).set_index("group")
    everything = table.loc["all"]
    assert everything["object-frames"] == len(rows.frames) > 100
    for name in ("presence", "shape", "colour", "size"):
        assert everything[name] == 1.0, name
    for name in ("scale_px", "position_px", "angle_deg", "opacity"):
        assert everything[name] < 0.05, name  # float16 storage rounding only
    assert everything["swaps per clip"] == 0 and everything["unfollowed"] == 0
    assert {"1 object", "2 objects"} <= set(table.index)  # the tiny preset draws 1 or 2 objects


def test_synth_slots_measured_on_real_clips(tiny_synth, tiny_caches):
    table = perception_table(measure_perception(tiny_caches / "synth-slots", tiny_synth, split="train"))
    everything = table.set_index("group").loc["all"]
    assert 0.8 < everything["presence"] <= 1.0 and 0.8 < everything["shape"] <= 1.0
    assert everything["position_px"] < 3.0  # synth-cnn places a centre within about a pixel
    assert list(table.columns[:4]) == ["group", "clips", "objects", "object-frames"]
    assert set(FIELDS) <= set(table.columns)


def test_measuring_features_without_slots_names_what_to_extract(tiny_synth, tiny_caches, tmp_path):
    from vidcap_core.data import load_dataset
    from vidcap_core.features.extract import extract_features

    records = load_dataset("synth", tiny_synth).records[:2]
    extract_features(records, "synth-cnn", tmp_path, num_frames=4, grid=True, progress=False, device="cpu")
    with pytest.raises(FeatureError, match="synth-slots"):
        measure_perception(tmp_path, tiny_synth)


def test_a_tracker_run_on_synth_cnn_grids_measures_as_its_cached_slots(tiny_synth, tiny_caches):
    """perf-tracking's measure (the tracker run on a cache of synth-cnn grids) agrees with the perception
    suite's (a synth-slots cache, made from the same grids before their float16 storage)."""
    from benchmark.perf_tracking import TrackingPerfOptions, compare_trackers
    from vidcap_core.features import slots

    options = TrackingPerfOptions(grids=tiny_caches / "synth-cnn", synth_root=tiny_synth, base="HEAD", split="train",
                                  repeats=2)
    tables, timings = compare_trackers(options, {"one": slots, "two": slots})
    one, two = (tables[tables["tracker"] == name].drop(columns="tracker").reset_index(drop=True) for name in ("one", "two"))
    pd.testing.assert_frame_equal(one, two)
    cached = perception_table(measure_perception(tiny_caches / "synth-slots", tiny_synth, split="train"))
    assert list(cached["group"]) == list(one["group"])
    for name in ("presence", "shape", "colour", "size", "swaps per clip", "unfollowed"):
        np.testing.assert_allclose(one[name], cached[name], atol=0.02, err_msg=name)
    np.testing.assert_allclose(one["position_px"], cached["position_px"], atol=0.05)
    assert list(timings["tracker"]) == ["one", "two"] and (timings["cpu ms/clip"] > 0).all()


def test_perf_tracking_compares_a_revisions_tracker_with_this_checkouts(tiny_synth, tiny_caches, tmp_path):
    from typer.testing import CliRunner

    from benchmark.cli import app

    common = ["perf-tracking", "--synth", str(tiny_synth), "--split", "train", "--repeats", "1", "--max-clips", "4"]
    done = CliRunner().invoke(app, [*common, "--grids", str(tiny_caches / "synth-cnn"), "--base", "HEAD",
                                    "--out", str(tmp_path / "tracking.md")])
    assert done.exit_code == 0, done.output
    report = (tmp_path / "tracking.md").read_text(encoding="utf-8")
    assert "## base HEAD" in report and "## this checkout" in report and "this / base, CPU time per clip" in report
    wrong = CliRunner().invoke(app, [*common, "--grids", str(tiny_caches / "synth-slots"), "--base", "HEAD"])
    assert wrong.exit_code == 2 and "not a synth-cnn feature cache" in wrong.output
    unknown = CliRunner().invoke(app, [*common, "--grids", str(tiny_caches / "synth-cnn"), "--base", "no-such-rev"])
    assert unknown.exit_code == 2 and "no-such-rev" in unknown.output


def test_the_perception_suite_on_the_smoke_profile(tmp_path):
    from benchmark.invocation import BenchOptions, run_benchmark

    results = tmp_path / "results"
    summary = run_benchmark(BenchOptions(suites=["perception"], profile="smoke", out=results, cache=tmp_path / "cache",
                                         generalise=False))
    assert summary.runs_total == 2  # attention-LSTM over learned and over oracle slots, for the captions by fault
    table = pd.read_csv(results / "perception.csv")
    assert table["group"].iloc[0] == "all" and table["object-frames"].iloc[0] > 0
    text = (results / "perception.md").read_text(encoding="utf-8")
    assert "swaps / clip" in text and "figures/perception_fields.png" in text
    assert "## Which faults cost captions" in text and "| all clips" in text and "| no fault" in text
    assert "no-fault clips with" in text
    assert "## Which fields cost captions" in text and "| all of them" in text and "| none (the oracle's slots)" in text
    facts = json.loads((results / "perception.json").read_text(encoding="utf-8"))["facts"]["captions_by_field"]
    assert set(facts) == {"none (the oracle's slots)", *TRANSPLANT_GROUPS, "all of them", "(decoder trained on the learned slots)"}
    assert facts["none (the oracle's slots)"]["drop"] == 0.0
    assert (results / "figures" / "perception_fields.png").stat().st_size > 1000


def test_clip_faults_flag_an_object_wrong_on_more_than_the_fault_share_of_its_frames():
    from vidcap_core.perception.measure import FAULT_SHARE, PerceptionRows, clip_faults

    assert FAULT_SHARE == 0.1  # one wrong frame in ten is not a fault, two are
    frames = pd.DataFrame({
        "clip": ["a"] * 20 + ["b"] * 10 + ["c"] * 10, "object": [0] * 10 + [1] * 10 + [0] * 10 + [0] * 10,
        "presence": [1.0] * 40, "shape": [1.0] * 40,
        "colour": [0.0] + [1.0] * 19 + [np.nan] * 10 + [0.0, 0.0] + [1.0] * 8,  # a: 1 in 10; b: never judged; c: 2 in 10
        "size": [1.0] * 40})
    objects = pd.DataFrame({"clip": ["a", "a", "b", "c"], "object": [0, 1, 0, 0], "swaps": [0, 0, 1, 0],
                            "unfollowed": [0.0, 1.0, 0.0, 0.0]})
    faults = clip_faults(PerceptionRows(frames, objects))
    assert faults.loc["a"].to_dict() == {"presence": False, "shape": False, "colour": False, "size": False,
                                         "swap": False, "unfollowed": True, "any": True}
    assert faults.loc["b", "swap"] and not faults.loc["b", "colour"] and faults.loc["b", "any"]
    assert faults.loc["c", "colour"] and faults.loc["c", "any"] and not faults.loc["c", "swap"]


def test_captions_by_fault_split_the_gap_between_learned_and_oracle_slots():
    from benchmark.suites.perception import captions_by_fault

    faults = pd.DataFrame({"colour": [True, False, False, False], "swap": [False, True, False, False]},
                          index=["a", "b", "c", "d"])
    faults["any"] = faults.any(axis=1)
    learned = pd.Series({"a": 0.0, "b": 0.5, "c": 1.0, "d": 1.0})  # share of seeds right per clip
    oracle = pd.Series({"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.0})
    table = captions_by_fault(faults, learned, oracle).set_index("clips with")
    assert table.loc["all clips", "clips"] == 4 and table.loc["no fault", "clips"] == 2
    assert table.loc["colour", "exact, learned slots"] == 0.0 and table.loc["colour", "gap"] == 1.0
    assert table.loc["no fault", "gap"] == -0.5  # the oracle's decoder missed d
    lost = 1.0 + 0.5  # clip a lost by every seed, clip b by half of them
    assert table.loc["colour", "share of lost clips"] == pytest.approx(1.0 / lost)
    assert table.loc["swap", "share of lost clips"] == pytest.approx(0.5 / lost)
    assert table.loc["no fault", "share of lost clips"] == 0.0


def test_clean_clips_are_grouped_by_their_events_and_objects():
    from benchmark.suites.perception import clean_clips_by_kind

    faults = pd.DataFrame({"any": [False, False, True]}, index=["a", "b", "c"])
    frames = pd.DataFrame({"clip": ["a", "a", "b", "b", "c"], "objects": [1, 1, 2, 2, 1],
                           "event": ["spin", "no event", "colour change", "spin", "spin"]})
    learned = pd.Series({"a": 1.0, "b": 0.0, "c": 0.0})
    oracle = pd.Series({"a": 1.0, "b": 1.0, "c": 1.0})
    table = clean_clips_by_kind(faults, frames, learned, oracle).set_index("no-fault clips with")
    assert table.loc["spin", "clips"] == 2 and table.loc["spin", "exact, learned slots"] == 0.5  # c has a fault
    assert table.loc["colour change", "gap"] == 1.0 and "no event" not in table.index
    assert table.loc["1 object", "clips"] == 1 and table.loc["2 objects", "clips"] == 1


LEARNED = {name: i for i, name in enumerate(learned_slots.SLOT_FIELDS)}


def learned_from(oracle: np.ndarray, order: list[int]) -> np.ndarray:
    """Learned slots (T, K, S) holding the oracle's objects in slots `order` (object o in slot order[o]),
    with the oracle's values of the fields both layouts share, confidence = opacity."""
    T, O, _ = oracle.shape
    slots = np.zeros((T, O, len(learned_slots.SLOT_FIELDS)), np.float32)
    for o, k in enumerate(order):
        for name, i in LEARNED.items():
            if name in COLUMN:
                slots[:, k, i] = oracle[:, o, COLUMN[name]]
        slots[:, k, LEARNED["confidence"]] = oracle[:, o, COLUMN["opacity"]]
    return slots


def test_a_transplant_takes_one_group_from_the_matched_slot_and_leaves_the_rest_true():
    truth = oracle_slots(crossing(), np.ones((8, 2)))
    seen = learned_from(truth, order=[1, 0])  # the learned slots hold the objects the other way round
    seen[:, 1, LEARNED["colour=red"]], seen[:, 1, LEARNED["colour=blue"]] = 0.25, 0.75  # object 0 looks blue
    seen[3:5, 1, :] = 0.0  # and is missed in frames 3 and 4
    pairs = match_slots(read_oracle(truth), read_learned(seen), drawn_objects(truth))
    assert pairs == {0: 1, 1: 0}
    assert np.array_equal(transplant(truth, seen, pairs, []), truth)
    colour = transplant(truth, seen, pairs, ["colour"])
    seen_frames = [0, 1, 2, 5, 6, 7]
    assert np.allclose(colour[seen_frames, 0, COLUMN["colour=blue"]], 0.75)
    assert np.allclose(colour[3:5, 0], truth[3:5, 0])  # colour only where the slot holds the object
    assert np.array_equal(np.delete(colour, COLUMN["colour=red"], -1)[:, 1], np.delete(truth, COLUMN["colour=red"], -1)[:, 1])
    presence = transplant(truth, seen, pairs, ["presence"])
    assert not presence[3:5, 0].any() and np.array_equal(presence[seen_frames, 0], truth[seen_frames, 0])
    assert np.array_equal(presence[:, 1], truth[:, 1])
    seen[:, 0, LEARNED["confidence"]] = 0.75  # object 1 is seen with confidence 0.75
    opacity = transplant(truth, seen, pairs, ["opacity"])
    assert np.allclose(opacity[:, 1, COLUMN["opacity"]], 0.75) and np.array_equal(opacity[:, 0], truth[:, 0])
    everything = transplant(truth, seen, pairs, list(TRANSPLANT_GROUPS))
    assert not everything[3:5, 0].any() and np.allclose(everything[seen_frames, 0, COLUMN["colour=blue"]], 0.75)
    with pytest.raises(FeatureError, match="unknown field groups"):
        transplant(truth, seen, pairs, ["rgb"])


def test_an_object_no_slot_follows_is_empty_only_when_presence_is_transplanted():
    truth = oracle_slots(crossing(), np.ones((8, 2)))
    seen = learned_from(truth, order=[0, 1])
    assert not transplant(truth, seen, {0: 0}, ["presence"])[:, 1].any()
    assert np.array_equal(transplant(truth, seen, {0: 0}, ["shape", "position"])[:, 1], truth[:, 1])


def test_transplanted_features_of_real_clips_are_written_once_and_whole(tiny_synth, tiny_caches, tmp_path):
    out = tmp_path / "oracle-with-colour"
    write_transplanted(tiny_caches / "oracle", tiny_caches / "synth-slots", tiny_synth, ["colour"], out, split="train")
    store, oracle = FeatureStore(out), FeatureStore(tiny_caches / "oracle")
    ids = store.video_ids()
    assert ids and store.meta == oracle.meta and not out.with_name(out.name + ".partial").exists()
    first = store.load_grid(ids[0])
    assert first.shape == oracle.load_grid(ids[0]).shape
    assert np.array_equal(store.load(ids[0]), first.reshape(len(first), -1))
    stamp = (out / f"{ids[0]}.grid.npy").stat().st_mtime_ns
    write_transplanted(tiny_caches / "oracle", tiny_caches / "synth-slots", tiny_synth, ["colour"], out, split="train")
    assert (out / f"{ids[0]}.grid.npy").stat().st_mtime_ns == stamp  # kept, not rewritten
    with pytest.raises(FeatureError, match="transplant needs oracle slots"):
        write_transplanted(tiny_caches / "synth-slots", tiny_caches / "synth-slots", tiny_synth, ["colour"], tmp_path / "x")
