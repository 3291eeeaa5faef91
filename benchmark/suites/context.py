"""What a suite is given: `BenchContext` (profile, seeds, data, the run store and executor, one
scorer) and the metric names every suite shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.prepare import FeatureSource
from benchmark.profiles import Profile
from benchmark.runner import EvalRecord, EvalRequest, Executor, FinetuneStage, RunRecord, RunSpec, RunStore
from vidcap_core.training.config import TrainConfig
from vidcap_core.training.finetune_config import FINETUNE_LR_FACTOR

CAPTION_METRICS = ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
SEMANTIC_SLOTS = ("colour", "shape", "action", "direction", "order", "exact")
PRIMARY = "CIDEr"  # the headline caption metric (and the selection metric on real data)
ORACLE_SUFFIX = "-oracle"  # label suffix of a configuration trained on oracle features


@dataclass
class BenchContext:
    """Everything a suite needs to plan runs, get them trained and evaluated, and write results."""

    profile: Profile
    seeds: tuple[int, ...]  # of a configuration no claim compares
    out: Path
    main: FeatureSource  # dataset + features of every suite but `length` (and `backbone`'s alternatives)
    length_sources: dict[int, FeatureSource]  # frames -> features for the `length` suite
    backbone_sources: list[FeatureSource]  # alternatives to `main` for the `backbone` suite
    store: RunStore
    executor: Executor
    train_overrides: dict[str, Any] = field(default_factory=dict)
    oracle: FeatureSource | None = None  # the main data under the `oracle` backbone (SynthClips only)
    # The main data read as tracked object slots (synth-slots) when the main backbone is synth-cnn:
    # what attention over regions reads instead of synth-cnn's 4 x 4 grid of places (region_source).
    objects: FeatureSource | None = None
    # Seeds of every configuration a claim compares (benchmark.claims.claim_configurations: `claim_configs`),
    # and per-label overrides; `seeds_for` says which a configuration gets.
    claim_seeds: tuple[int, ...] = ()
    claim_configs: frozenset[str] = frozenset()
    config_seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _scorer: Any = None

    def seeds_for(self, label: str) -> tuple[int, ...]:
        """The seeds of configuration `label`: its own override, else the claim seeds when a claim compares
        it, else the default seeds."""
        if label in self.config_seeds:
            return self.config_seeds[label]
        return self.claim_seeds if label in self.claim_configs and self.claim_seeds else self.seeds

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """Every seed some configuration gets."""
        return tuple(sorted({*self.seeds, *self.claim_seeds, *(s for v in self.config_seeds.values() for s in v)}))

    @property
    def is_synth(self) -> bool:
        return self.main.dataset.is_synth

    @property
    def figures_dir(self) -> Path:
        path = self.out / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def spec(self, arch: str, cell: str, seed: int, features: FeatureSource | None = None, suffix: str = "",
             **overrides: Any) -> RunSpec:
        """The run of `arch` x `cell` with this seed, the profile's settings (its step budget for this label or
        architecture, if it has one) and any overrides (--max-steps, then the suite's)."""
        source = features or self.region_source(bool(overrides.get("regions")))
        data = source.dataset
        label = f"{arch}-{cell}{suffix}"
        budget = self.profile.config_max_steps.get(label, self.profile.arch_max_steps.get(arch))  # None: train's
        values = {
            **self.profile.train, **({"max_steps": budget} if budget is not None else {}), **self.train_overrides,
            **overrides,
            "dataset": data.name, "root": str(data.root), "features": str(source.dir),
            "annotations": None if data.annotations is None else str(data.annotations),
            "max_videos": data.max_videos, "arch": arch, "cell": cell, "seed": seed,
        }
        return RunSpec(label=label, config=TrainConfig.from_dict(values, source=label), features=source)

    def finetune_spec(self, parent: RunSpec, method: str, suffix: str, **options: Any) -> RunSpec:
        """The fine-tune (`method` scst | adversarial) of `parent`'s best.pt, labelled parent + suffix: the
        parent's TrainConfig with the profile's fine-tune budget and the parent's LR x FINETUNE_LR_FACTOR
        (what `vidcap train --init-from` does without --lr), FinetuneConfig options from the profile and
        `options` (e.g. reward="semantic")."""
        values = {**parent.config.to_dict(), "lr": parent.config.lr * FINETUNE_LR_FACTOR, **self.profile.finetune_train}
        label = parent.label + suffix
        stage = FinetuneStage(parent, method, tuple(sorted({**self.profile.finetune, **options}.items())))
        return RunSpec(label=label, config=TrainConfig.from_dict(values, source=label), features=parent.features,
                       stage=stage)

    def region_source(self, regions: bool) -> FeatureSource:
        """The main features a run reads: for attention over regions, the object slots when there are
        any (a slot is an object followed through the clip; a grid cell is a place an object crosses)."""
        return self.objects if regions and self.objects is not None else self.main

    def source_of(self, record: RunRecord) -> FeatureSource:
        """The features a run on the main data read (a `best` candidate): object slots for attention
        over regions when there are any, else the main features."""
        return self.region_source(bool(record.config.get("regions")))

    def grid(self, arch: str, cell: str, seeds: tuple[int, ...] | None = None, **kwargs: Any) -> list[RunSpec]:
        """The same configuration for each of its seeds (`seeds_for` its label, unless `seeds` says)."""
        label = f"{arch}-{cell}{kwargs.get('suffix', '')}"
        return [self.spec(arch, cell, seed, **kwargs) for seed in (self.seeds_for(label) if seeds is None else seeds)]

    def variants(self, arch: str, cell: str, **kwargs: Any) -> dict[str, list[RunSpec]]:
        """{label: seeds} of one configuration on the main features and, on SynthClips, the same
        configuration on oracle features (label + ORACLE_SUFFIX): suites that judge a claim with
        perfect perception too ask for both."""
        suffix = kwargs.pop("suffix", "")
        out = {f"{arch}-{cell}{suffix}": self.grid(arch, cell, suffix=suffix, **kwargs)}
        if self.oracle is not None:
            label = f"{arch}-{cell}{suffix}{ORACLE_SUFFIX}"
            out[label] = self.grid(arch, cell, features=self.oracle, suffix=suffix + ORACLE_SUFFIX, **kwargs)
        return out

    def split_columns(self) -> list[str]:
        """SynthClips: test exact accuracy and CIDEr-D on in-distribution and held-out-composition clips."""
        return ["sem_exact_in", "sem_exact_heldout", "CIDEr_in", "CIDEr_heldout"] if self.is_synth else []

    def oracle_labels(self, labels: list[str]) -> list[str]:
        """`labels` and, on SynthClips, the same configurations on oracle features."""
        return [*labels, *(f"{label}{ORACLE_SUFFIX}" for label in labels)] if self.oracle is not None else list(labels)

    def scorer(self) -> Any:
        """One long-lived scorer (Java started once) for every evaluation of this invocation."""
        if self._scorer is None:
            from vidcap_core.evaluation import Scorer

            self._scorer = Scorer()
        return self._scorer

    def close(self) -> None:
        if self._scorer is not None:
            self._scorer.close()
            self._scorer = None
        self.executor.close()

    def evaluate(self, record: RunRecord, request: EvalRequest = EvalRequest()) -> EvalRecord | None:
        return self.store.evaluate(record, request, self.scorer())
