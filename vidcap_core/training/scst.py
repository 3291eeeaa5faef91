"""Self-critical sequence training's reward source (Rennie et al. 2017): each sampled caption scored as
text against its clip, by CIDEr-D on the training references or by the SynthClips semantic checker's
exact score (training/rewards.py). The step that uses it is training/policy_gradient.py."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from vidcap_core.models import EOS_ID, PAD_ID
from vidcap_core.text import Vocabulary
from vidcap_core.training.config import TrainConfig
from vidcap_core.training.finetune_config import FinetuneConfig
from vidcap_core.training.loop import TrainingData
from vidcap_core.training.policy_gradient import StepBatch
from vidcap_core.training.rewards import CiderDReward, SemanticReward, TextReward


class TextRewardSource:
    """SCST's RewardSource: captions decoded to text and scored against their clip; learns nothing."""

    def __init__(self, reward: TextReward, vocab: Vocabulary) -> None:
        self.reward = reward
        self.vocab = vocab

    def update(self, batch: StepBatch, sampled: Tensor) -> dict[str, float | None]:
        return {}

    def rewards(self, batch: StepBatch, tokens: Tensor, per_clip: int) -> Tensor:
        """tokens (B * per_clip, L), per_clip rows per clip -> (B * per_clip,) float32."""
        captions = [self.vocab.decode(row) for row in word_rows(tokens)]
        video_ids = [v for v in batch.video_ids for _ in range(per_clip)]
        return torch.from_numpy(self.reward(captions, video_ids)).float()


def build_text_reward(ft: FinetuneConfig, cfg: TrainConfig, data: TrainingData) -> TextRewardSource:
    """SCST's reward over the training clips: CIDEr-D (training references) or the semantic checker."""
    from vidcap_core.data import load_dataset, require_split

    if ft.reward == "semantic":
        from vidcap_core.synth import load_ground_truth

        truths = load_ground_truth(Path(cfg.root))
        return TextRewardSource(SemanticReward({v: truths[v] for v in data.train.video_ids if v in truths}), data.vocab)
    annotations = Path(cfg.annotations) if cfg.annotations else None
    dataset = load_dataset(cfg.dataset, Path(cfg.root), annotations=annotations, max_videos=cfg.max_videos,
                           seed=cfg.seed)
    references = {r.video_id: list(r.captions) for r in require_split(dataset, "train")}
    return TextRewardSource(CiderDReward(references), data.vocab)


def word_rows(tokens: Tensor) -> list[list[int]]:
    """Each row's word ids, without EOS and PAD: tokens (B, L) -> B lists."""
    return [[t for t in row if t not in (EOS_ID, PAD_ID)] for row in tokens.tolist()]
