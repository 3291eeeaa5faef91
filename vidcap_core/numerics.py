"""Declared numerics versions: one number per stage that computes something a result depends on.

A cached benchmark artefact (a SynthClips set, a feature cache, a training run, an evaluation) is
keyed on its configuration, the identity of its inputs and the versions of the stages below that
computed it, never on a hash of the source (lm-evaluation-harness versions its tasks, asv its
benchmarks, the same way). A refactor, a docstring or a faster kernel that gives the same numbers
keeps every cached result; a change that moves a number must bump its stage here.

Which stage to bump is what the golden-number tests under `tests/golden/` say: each one recomputes
a few numbers of one stage (seeded training steps, greedy captions of fixed clips, metric values of
fixed captions, features of two clips...) and fails with "the numbers changed: fix the change, or
bump the numerics version of <stage>". After a bump, `VIDCAP_UPDATE_GOLDEN=1 pytest tests/test_golden.py`
rewrites the golden files of the stages whose version changed.

Ground floor: no vidcap imports, no torch.
"""

from __future__ import annotations

from collections.abc import Iterable

from vidcap_core.errors import ConfigError

# stage -> version. A stage is what one part of the library computes; what each covers:
NUMERICS_VERSIONS: dict[str, int] = {
    # SynthClips: scene plans, rendering, caption grammar, ground truth, the H.264 bytes (synth/)
    "synth": 1,
    # frames decoded from a file and which ones are sampled (video/)
    "video": 1,
    # dataset loaders, split normalisation, trimming: which clips and captions a run reads (data/)
    "data": 1,
    # tokenizer and vocabulary (text/)
    "text": 1,
    # feature extraction around any backbone: frame sizing, batching, cache dtype, stacking (features/)
    "features": 1,
    # one per backbone: the encoder's own arithmetic and weights layout (features/backbones/, oracle.py, slots.py)
    "backbone.synth-cnn": 1,
    # synth-cnn's detections tracked as object slots. 2: Hungarian linking on the motion-predicted position,
    # gaps of up to 2 frames filled, the clip's shape per track, fields at their own value beside "confidence"
    "backbone.synth-slots": 2,
    "backbone.random": 1,
    "backbone.oracle": 1,
    "backbone.resnet": 1,  # resnet18/50/152
    "backbone.vgg": 1,  # vgg16/19
    # models, losses, batching, the MLE loop, the plateau schedule and model selection (models/, training/)
    # 2: ConceptCaptioner builds S2VT first, then its concept head (seeded initial weights); 3: the plateau
    # schedule's progress reference moves only on progress (a slow steady climb adds up until it counts)
    "training": 3,
    # policy-gradient fine-tuning: SCST and the LSTM-GAN, rewards (training/finetune.py, policy_gradient.py,
    # scst.py, adversarial.py, collapse.py, rewards.py)
    "finetune": 1,
    # greedy, beam and sampled decoding (decoding/)
    "decoding": 1,
    # caption metrics (pycocoevalcap, CIDEr-D without Java), caption diversity, the semantic checker, bootstraps
    # (evaluation/, synth/checker.py)
    "evaluation": 1,
}

# What each cached artefact depends on, lowest floor first.
DATASET_STAGES = ("synth",)
FEATURE_STAGES = ("video", "data", "features")
RUN_STAGES = ("data", "text", "training", "decoding", "evaluation")  # validation decodes and scores
FINETUNE_STAGES = (*RUN_STAGES, "finetune")
EVALUATION_STAGES = ("data", "text", "decoding", "evaluation")


def backbone_stages(backbone: str) -> tuple[str, ...]:
    """The backbone stages behind features of `backbone` (synth-slots reads synth-cnn's detections)."""
    family = backbone.rstrip("0123456789") if backbone.startswith(("resnet", "vgg")) else backbone
    stage = f"backbone.{family}"
    if stage not in NUMERICS_VERSIONS:
        known = sorted(s.removeprefix("backbone.") for s in NUMERICS_VERSIONS if s.startswith("backbone."))
        raise ConfigError(f"backbone {backbone!r} has no numerics version: add 'backbone.{family}' to "
                          f"vidcap_core/numerics.py (known: {', '.join(known)})")
    return ("backbone.synth-cnn", stage) if backbone == "synth-slots" else (stage,)


def versions(stages: Iterable[str]) -> dict[str, int]:
    """{stage: version} of `stages`, sorted; ConfigError for an unknown stage."""
    out: dict[str, int] = {}
    for stage in stages:
        if stage not in NUMERICS_VERSIONS:
            raise ConfigError(f"unknown numerics stage {stage!r}: choose from {', '.join(NUMERICS_VERSIONS)}")
        out[stage] = NUMERICS_VERSIONS[stage]
    return dict(sorted(out.items()))
