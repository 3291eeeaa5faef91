"""vidcap-bench's run keys (benchmark/identity.py, runner.py's RunSpec): what changes a key and what does not
(the declared numerics versions, never the source), fine-tunes keyed on their parents, and the profiles'
one training recipe (profiles.py); and the progress display's counts of the runs to train."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.identity import stable_hash
from benchmark.prepare import DatasetSource, FeatureSource
from benchmark.runner import EvalRequest, FinetuneStage, ProgressDisplay, RunRecord, RunSpec, training_waves
from vidcap_core.errors import ConfigError
from vidcap_core.training.config import TrainConfig


# ----------------------------------------------------------------------------- run keys


def make_spec(tmp: Path, **overrides) -> RunSpec:
    data = DatasetSource("synth", tmp / "data", synth_preset="tiny", synth_clips=None)
    features = FeatureSource(data, "synth-cnn", 8, tmp / "features", weights_id="sha256:abc")
    values = {"dataset": "synth", "root": str(data.root), "features": str(features.dir), "arch": "s2vt",
              "cell": "lstm", "hidden_size": 16, "seed": 0, **overrides}
    return RunSpec("s2vt-lstm", TrainConfig.from_dict(values), features)


def test_stable_hash_is_canonical():
    assert stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": [1, 2], "b": 1})
    assert stable_hash({"a": 1}) == "015abd7f5cc57a2d"  # sha256('{"a":1}')[:16]: fixed across versions
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_run_key_covers_what_changes_results_only(tmp_path):
    key = make_spec(tmp_path).key
    assert key == make_spec(tmp_path).key
    assert key == make_spec(tmp_path, torch_threads=1, device="cpu").key  # how it runs, not what it computes
    assert key == make_spec(tmp_path / "moved").key  # paths are replaced by data identity
    assert key != make_spec(tmp_path, hidden_size=32).key
    assert key != make_spec(tmp_path, seed=1).key
    assert key != make_spec(tmp_path, grad_clip=None).key
    other_weights = make_spec(tmp_path)
    other_weights = RunSpec(other_weights.label, other_weights.config,
                            FeatureSource(other_weights.features.dataset, "synth-cnn", 8, tmp_path / "features", weights_id="sha256:def"))
    assert key != other_weights.key


def test_profiles_are_one_recipe_with_overrides():
    from benchmark.profiles import FINETUNE_RECIPE, PROFILES, RECIPE, with_overrides
    from vidcap_core.training import TrainConfig

    def resolved(train: dict) -> dict:
        return TrainConfig.from_dict({**train, "dataset": "synth", "root": "data", "features": "features"}).to_dict()

    full, quick, smoke = PROFILES["full"], PROFILES["quick"], PROFILES["smoke"]
    assert full.train == RECIPE and full.finetune_train == FINETUNE_RECIPE
    assert resolved(quick.train) == {**resolved(full.train), "max_steps": 600}  # a fifth of the steps, nothing else
    assert quick.finetune_train == {**FINETUNE_RECIPE, "max_steps": 200}
    assert resolved(smoke.train)["frame_deltas"] == RECIPE["frame_deltas"] and smoke.train["lr"] == RECIPE["lr"]
    assert resolved(smoke.train)["hidden_size"] == 16 and smoke.finetune_train["max_steps"] == 4
    with pytest.raises(ConfigError, match="max_step"):
        with_overrides(RECIPE, max_step=10)  # a typo is refused, not added


def test_keys_follow_the_declared_numerics_versions_not_the_source(tmp_path, monkeypatch):
    from vidcap_core import numerics

    declared = dict(numerics.NUMERICS_VERSIONS)

    def bump(stage: str) -> None:
        monkeypatch.setitem(numerics.NUMERICS_VERSIONS, stage, declared[stage] + 1)

    def restore(stage: str) -> None:
        monkeypatch.setitem(numerics.NUMERICS_VERSIONS, stage, declared[stage])

    spec = make_spec(tmp_path)
    material = spec.key_material()
    assert material["numerics"] == {s: declared[s] for s in ("data", "decoding", "evaluation", "text", "training")}
    assert material["torch"].count(".") == 1 and material["device"].startswith("cpu:") and material["torch_threads"] == 1
    assert "code" not in material and "code" not in material["features"]  # no source digest anywhere
    assert material["features"]["numerics"] == {s: declared[s] for s in ("backbone.synth-cnn", "data", "features", "video")}
    data_key, features_key, run_key = stable_hash(spec.features.dataset.identity()), stable_hash(spec.features.identity()), spec.key
    bump("backbone.oracle")  # another backbone: nothing moves
    assert (stable_hash(spec.features.identity()), spec.key) == (features_key, run_key)
    bump("training")  # training: the run, not its data or features
    assert stable_hash(spec.features.identity()) == features_key and spec.key != run_key
    restore("training")
    bump("backbone.synth-cnn")  # the features and every run on them
    assert stable_hash(spec.features.dataset.identity()) == data_key
    assert stable_hash(spec.features.identity()) != features_key and spec.key != run_key
    restore("backbone.synth-cnn")
    bump("synth")  # the data, hence everything made from it
    assert stable_hash(spec.features.dataset.identity()) != data_key and spec.key != run_key
    restore("synth")
    finetune = finetune_of(spec)
    before = finetune.key
    bump("finetune")  # fine-tunes only
    assert spec.key == run_key and finetune.key != before


def test_synth_slots_features_depend_on_synth_cnn_too():
    from vidcap_core.errors import ConfigError
    from vidcap_core.numerics import backbone_stages

    assert backbone_stages("synth-slots") == ("backbone.synth-cnn", "backbone.synth-slots")
    assert backbone_stages("resnet152") == ("backbone.resnet",) and backbone_stages("vgg16") == ("backbone.vgg",)
    with pytest.raises(ConfigError, match="numerics.py"):
        backbone_stages("clip-vit")


def finetune_of(parent: RunSpec, method: str = "scst", **options) -> RunSpec:
    return RunSpec(f"{parent.label}-{method}", parent.config, parent.features,
                   FinetuneStage(parent, method, tuple(sorted(options.items()))))


def test_a_finetune_is_keyed_on_its_parent_and_trained_after_it(tmp_path):
    parent = make_spec(tmp_path)
    child = finetune_of(parent, reward="cider")
    assert "finetune" not in parent.key_material()
    assert child.key_material()["finetune"] == {"parent": parent.key, "method": "scst", "options": {"reward": "cider"}}
    assert child.key != parent.key  # same TrainConfig, but a fine-tune of it
    assert child.key == finetune_of(make_spec(tmp_path / "moved"), reward="cider").key  # parent keyed by data identity
    assert child.key != finetune_of(make_spec(tmp_path, hidden_size=32), reward="cider").key  # another parent
    assert child.key != finetune_of(make_spec(tmp_path, seed=1), reward="cider").key
    assert child.key != finetune_of(parent, reward="semantic").key
    assert child.key != finetune_of(parent, "adversarial").key
    grandchild = finetune_of(child, "adversarial")
    other = make_spec(tmp_path, seed=2)
    waves = training_waves([grandchild, child, other, parent])
    assert [[s.key for s in wave] for wave in waves] == [[other.key, parent.key], [child.key], [grandchild.key]]
    assert training_waves([child]) == [[child]]  # a parent finished earlier is not waited for


def test_run_key_is_the_same_in_a_fresh_interpreter(tmp_path):
    code = ("import sys; from pathlib import Path; sys.path.insert(0, 'tests'); "
            "from test_bench_keys import make_spec; print(make_spec(Path(sys.argv[1])).key)")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == make_spec(tmp_path).key


def test_an_evaluation_on_other_features_is_named_by_its_tag():
    assert EvalRequest().name == "test-beam1-ordered"
    assert EvalRequest(features="/cache/features/x", tag="fields-colour").name == "test-beam1-ordered-fields-colour"
    for half in ({"features": "/cache/features/x"}, {"tag": "fields-colour"}):
        with pytest.raises(ValueError, match="tag"):
            EvalRequest(**half)


# ----------------------------------------------------------------------------- progress lines


def test_runs_a_suite_adds_after_the_plan_count_in_the_progress_lines(tmp_path):
    """The beam suite trains its chosen configuration's claim seeds only once it has chosen (after the plan
    was counted); `plan_more` adds them, so i/n never runs past n and the estimate of what is left covers them
    (before, the final regeneration's log read `[ 64/63] ... left nothing` for a run still to come)."""
    stream = io.StringIO()
    progress = ProgressDisplay(total=2, to_train=0, jobs=1, stream=stream)
    for seed in (0, 1):
        progress.skipped("beam", make_spec(tmp_path, seed=seed))
    added = [make_spec(tmp_path, seed=seed) for seed in (2, 3)]
    progress.plan_more(len(added), len(added))
    for spec in added:
        progress.started_run("beam", spec, resumed=False)
        record = RunRecord(key=spec.key, label=spec.label, config=spec.config.to_dict(), dir=tmp_path,
                           result={"best_val": {"exact": 0.5}, "convergence": {"converged": True}}, wall_seconds=60.0)
        progress.finished_run("beam", record)
    lines = stream.getvalue().splitlines()
    assert [line[:7] for line in lines] == ["[  1/2]", "[  2/2]", "[  3/4]", "[  3/4]", "[  4/4]", "[  4/4]"]
    assert "left 2 run(s))" in lines[2] and lines[3].endswith("left 1 run(s), ~1m00s")
    assert lines[5].endswith("left nothing")
