"""Losses beside the caption NLL: the concepts arch's multi-label concept loss ([1]) and the attention
arch's semantic-consistency ranking loss ([4] aLSTMs), with the training data they need.

The loop adds `weight * loss` of each to the mean token NLL it already optimises; with both weights
at 0 (or an arch without the head) nothing is added and the objective is exactly the old one.
The logged `train_loss` stays the caption NLL, so runs of every arch compare on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidcap_core.data.records import VideoRecord
from vidcap_core.errors import DatasetError
from vidcap_core.models import PAD_ID, consistency_ranking_loss, masked_nll, negative_pairs
from vidcap_core.text.concepts import content_words, frequent_content_words, multi_hot
from vidcap_core.training.config import TrainConfig


@dataclass
class ConceptLabels:
    """The concept vocabulary derived from the training captions and each training clip's labels."""

    names: list[str]  # (C,) stored in the checkpoint as ModelConfig.concepts
    labels: Tensor  # (N, C) float32 multi-hot, rows in the order of the training records

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "clips_per_concept": self.labels.sum(0).int().tolist()}


def derive_concepts(dataset: str, records: Sequence[VideoRecord], num_concepts: int) -> ConceptLabels:
    """SynthClips: every colour, shape, size and action its training captions name (the checker's
    parser maps synonyms to one concept). Other datasets: the `num_concepts` content words named by the
    most training clips (text/concepts.py says why that approximates nouns and verbs). A clip's labels
    are the union over its captions: every caption describes the same clip."""
    if dataset == "synth":
        from vidcap_core.synth.concepts import SYNTH_CONCEPTS, caption_concepts

        named = [set().union(set(), *(caption_concepts(c) for c in r.captions)) for r in records]
        seen = set().union(set(), *named)
        names = [name for name in SYNTH_CONCEPTS if name in seen]
    else:
        names = frequent_content_words([r.captions for r in records], num_concepts)
        named = [set().union(set(), *(content_words(c) for c in r.captions)) for r in records]
    if not names:
        raise DatasetError(f"no concept is named by the {dataset} training captions ({len(records)} clips; real "
                           "data needs content words shared by at least 2 clips): use another arch, or more clips")
    return ConceptLabels(names, torch.from_numpy(multi_hot(named, names)))


def model_fields(cfg: TrainConfig, concepts: ConceptLabels | None) -> dict[str, Any]:
    """The ModelConfig fields of the auxiliary heads: concept vocabulary and mode, joint embedding size."""
    return {
        "concept_mode": cfg.concept_mode,
        "concepts": list(concepts.names) if concepts is not None else [],
        "consistency_size": cfg.embed_size if cfg.semantic_consistency > 0 else 0,
    }


@dataclass
class Objective:
    """One batch's training objective, in parts."""

    nll_sum: Tensor  # summed token NLL (the loop divides by the global token count)
    n_tokens: int
    auxiliary: Tensor | None  # weighted sum of the auxiliary losses (batch means); None = none apply


def training_objective(model: nn.Module, feats: Tensor, mask: Tensor, captions: Tensor, clip_ids: Tensor,
                       cfg: TrainConfig, concepts: ConceptLabels | None, sampling_prob: float = 0.0,
                       generator: torch.Generator | None = None) -> Objective:
    """feats (B, T, F), mask (B, T), captions (B, L), clip_ids (B,) rows of the training clips.

    One forward pass (through DDP when `model` is wrapped) gives the logits and the heads' outputs.
    """
    logits, _, outputs = model(feats, mask, captions, sampling_prob=sampling_prob, generator=generator,
                               auxiliary=True)  # (B, L, V)
    targets = captions[:, 1:]  # (B, L-1): logits[:, i] predicts captions[:, i + 1]
    n_tokens = int((targets != PAD_ID).sum())
    nll_sum = masked_nll(logits[:, :-1], targets, pad_id=PAD_ID) * n_tokens
    parts: list[Tensor] = []
    if "concept_logits" in outputs and cfg.concept_loss_weight > 0:
        labels = concepts.labels.to(feats.device)[clip_ids]  # (B, C)
        parts.append(cfg.concept_loss_weight * concept_loss(outputs["concept_logits"], labels))
    if "clip_embedding" in outputs and cfg.semantic_consistency > 0:
        negatives = negative_pairs(clip_ids, captions)  # (B, B)
        parts.append(cfg.semantic_consistency * consistency_ranking_loss(
            outputs["clip_embedding"], outputs["sentence_embedding"], negatives))
    return Objective(nll_sum, n_tokens, torch.stack(parts).sum() if parts else None)


def concept_loss(concept_logits: Tensor, labels: Tensor) -> Tensor:
    """Multi-label BCE: concept_logits (B, C) clip scores, labels (B, C) in {0, 1} -> mean over B * C."""
    return F.binary_cross_entropy_with_logits(concept_logits.float(), labels.float())
