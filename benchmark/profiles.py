"""Profiles: how big each suite's data and models are, sized to fit a time budget on 2 CPU cores.

`quick` is the 5-minute look (one seed, a slice of the standard preset); `full` is the committed
benchmark (3 seeds, every suite, 60 minutes on 2 cores); `smoke` exists for the tests and CI: it
proves the pipeline runs end to end and its numbers mean nothing.

Training uses the step-budget recipe (vidcap_core/training: max_steps, val_every_steps, warmup_steps,
the plateau schedule); `max_caption_words` is left to the data (None: the longest training caption).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from vidcap_core.errors import ConfigError

ProfileName = Literal["smoke", "quick", "full"]


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    seeds: int  # default number of seeds per configuration
    budget_s: int  # what the whole profile should cost on a 2-core machine (all suites)
    main_preset: str  # SynthClips preset of every suite but `length`
    main_clips: int | None  # clips generated (None = the preset's size)
    main_frames: int  # frames per clip fed to the models
    long_preset: str  # SynthClips preset of the `length` suite
    long_clips: int | None
    length_frames: tuple[int, ...]  # clip lengths of the `length` suite
    beams: tuple[int, ...]  # beam sizes of the `beam` suite
    resamples: int  # bootstrap resamples per comparison
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields shared by every run
    length_train: dict[str, Any] = field(default_factory=dict)  # overrides for the `length` suite
    # `seeds` suite: the aLSTMs semantic-consistency weight W ([4]), the TrainConfig overrides of its
    # fine-tunes (SCST, LSTM-GAN: their step budget; the LR is the parent's x FINETUNE_LR_FACTOR) and
    # their FinetuneConfig options (D's pretraining, the MLE mixing weight...)
    consistency_weight: float = 0.5
    finetune_train: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="tests and CI only: SynthClips tiny, 1 seed, 1 epoch, tiny models; the numbers mean nothing",
        seeds=1,
        budget_s=120,
        main_preset="tiny",
        main_clips=None,
        main_frames=8,
        long_preset="tiny",
        long_clips=None,
        length_frames=(4, 8),
        beams=(1, 2),
        resamples=1000,
        # 20 steps validated twice: enough for every file, table and verdict path to run; never converges
        train=dict(embed_size=16, hidden_size=16, attention_size=16, max_steps=20, val_every_steps=10,
                   warmup_steps=5, batch_size=16, lr=3e-3, dropout=0.0, min_count=1, plateau_patience=None,
                   probe_batch=4),
        # fine-tunes: 4 steps validated once, D pretrained on a fifth of the training pairs
        finetune_train=dict(max_steps=4, val_every_steps=4, warmup_steps=1),
        finetune=dict(d_pretrain_epochs=0.2, d_embed_size=16, d_filters=8, d_video_size=16, d_hidden_size=16),
    ),
    "quick": Profile(
        name="quick",
        description="a 5-minute look: 600 standard-preset clips, 1 seed, small models, few epochs",
        seeds=1,
        budget_s=300,
        main_preset="standard",
        main_clips=600,
        main_frames=32,
        long_preset="long",
        long_clips=300,
        length_frames=(8, 16, 32, 64),
        beams=(1, 2, 3, 5, 10),
        resamples=1000,
        # PLACEHOLDER sizes (not measured): the recipe engineer's steps-to-converge measurements replace them
        train=dict(embed_size=64, hidden_size=128, attention_size=64, max_steps=1000, val_every_steps=100,
                   warmup_steps=100, batch_size=32, lr=3e-3, dropout=0.1, min_count=2, plateau_patience=3,
                   probe_batch=16, frame_deltas=10.0),  # motion as an input (issue #11: oracle exact 0.12 -> 0.58)
        # PLACEHOLDER fine-tune budget (not measured): the main recipe's validation interval and plateau
        # schedule, a fifth of its steps; FinetuneConfig's defaults otherwise
        finetune_train=dict(max_steps=200, val_every_steps=100, warmup_steps=20),
    ),
    "full": Profile(
        name="full",
        description="the committed benchmark: 3 seeds, every suite, 600 standard clips, aimed at 60 minutes on 2 cores",
        seeds=3,
        budget_s=3600,
        main_preset="standard",
        main_clips=600,  # 1200 clips x 12 epochs measured ~1.75 min per run: 81 runs would need ~75 min
        main_frames=32,
        long_preset="long",
        long_clips=300,  # the 36 runs of the length suite dominate the cost; 600 clips put the profile well over 60 min
        length_frames=(8, 16, 32, 64),
        beams=(1, 2, 3, 5, 10),
        resamples=1000,
        # PLACEHOLDER sizes (not measured): max_steps / val_every_steps / hidden sizes are to be set from
        # the recipe engineer's steps-to-converge measurements (issue #11, item 3); until then they are
        # the old epoch budget's order of magnitude x 10, not a claim that runs converge in them.
        train=dict(embed_size=64, hidden_size=128, attention_size=64, max_steps=3000, val_every_steps=100,
                   warmup_steps=100, batch_size=32, lr=3e-3, dropout=0.1, min_count=2, plateau_patience=3,
                   probe_batch=16, frame_deltas=10.0),  # motion as an input (issue #11: oracle exact 0.12 -> 0.58)
        # PLACEHOLDER fine-tune budget (not measured), as in `quick`: a fifth of the MLE budget
        finetune_train=dict(max_steps=600, val_every_steps=100, warmup_steps=20),
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
