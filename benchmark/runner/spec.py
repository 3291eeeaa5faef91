"""What a training run is: `RunSpec` (label, TrainConfig, features, optional fine-tune stage) and its key,
`FinetuneStage`, and `EvalRequest` (one evaluation of a run's best checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmark.identity import BENCH_SCHEMA, BENCH_TORCH_THREADS, compute_key_material, stable_hash
from benchmark.prepare import FeatureSource
from vidcap_core.numerics import FINETUNE_STAGES, RUN_STAGES
from vidcap_core.training.config import TrainConfig

# TrainConfig fields the key replaces: paths by data identity; the thread count and device by what the run
# really uses (BENCH_TORCH_THREADS, the device kind "auto" resolves to), in compute_key_material.
NOT_IN_KEY = frozenset({"root", "features", "annotations", "torch_threads", "device"})


@dataclass(frozen=True)
class FinetuneStage:
    """Policy-gradient fine-tuning of the parent run's best.pt (training.finetune.finetune)."""

    parent: RunSpec
    method: str  # "scst" or "adversarial" (FinetuneConfig.method)
    options: tuple[tuple[str, Any], ...] = ()  # other FinetuneConfig fields (reward, mle_weight, d_...), sorted

    def key_material(self) -> dict[str, Any]:
        return {"parent": self.parent.key, "method": self.method, "options": dict(self.options)}


@dataclass(frozen=True)
class RunSpec:
    """One training run: a label for people, the complete TrainConfig, and the features it reads; a
    fine-tune also names its parent run and its method (`stage`), and `config` is then the TrainConfig
    it fine-tunes with (the parent's, with the fine-tune's budget and learning rate)."""

    label: str  # e.g. "s2vt-lstm"; the seed is in config.seed
    config: TrainConfig
    features: FeatureSource
    stage: FinetuneStage | None = None

    def key_material(self) -> dict[str, Any]:
        train = {k: v for k, v in self.config.to_dict().items() if k not in NOT_IN_KEY}
        stages = RUN_STAGES if self.stage is None else FINETUNE_STAGES
        material = {"schema": BENCH_SCHEMA, "train": train, "features": self.features.identity(),
                    **compute_key_material(stages, self.config.device), "torch_threads": BENCH_TORCH_THREADS}
        if self.stage is not None:
            material["finetune"] = self.stage.key_material()
        return material

    @property
    def key(self) -> str:
        return stable_hash(self.key_material())

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def title(self) -> str:
        return f"{self.label} seed {self.seed}"


@dataclass(frozen=True)
class EvalRequest:
    split: str = "test"
    beam: int = 1
    frame_order: str = "ordered"
    features: str | None = None  # another feature cache of the same clips (None: the run's own)
    tag: str = ""  # names what `features` holds, in the cached evaluation's name; required with it

    def __post_init__(self) -> None:
        if (self.features is None) != (not self.tag):
            raise ValueError("an EvalRequest on other features needs a tag naming them, and a tag needs features")

    @property
    def name(self) -> str:
        base = f"{self.split}-beam{self.beam}-{self.frame_order}"
        return f"{base}-{self.tag}" if self.tag else base
