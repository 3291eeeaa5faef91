"""Semantic consistency (aLSTMs, [4] in the report): the clip and its reference sentence embedded in
one space, and a bidirectional hinge ranking loss (VSE, Kiros et al. 2014; margin 0.2) that pulls
each clip towards its own sentence and away from the batch's other sentences, and the reverse.

Clip side: the masked mean of the attention memory slots (what the decoder attends over), so the
loss shapes the representation attention reads. Sentence side: the mean of the caption's word
embeddings (the decoder's own embedding table), so it shapes the words the decoder reads. Both are
projected and L2-normalised; a score is a cosine. A mean of word embeddings is order-blind, which is
the usual sentence side of such losses and costs no recurrent pass; word order is the captioning
loss's job. Sum over violating negatives (VSE) rather than the hardest one (VSE++): smoother early on.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from vidcap_core.models.config import BOS_ID, EOS_ID, PAD_ID

CONSISTENCY_MARGIN = 0.2


def caption_word_mask(captions: Tensor) -> Tensor:
    """captions (B, L) -> (B, L) bool: the real words (not PAD, BOS or EOS)."""
    return (captions != PAD_ID) & (captions != BOS_ID) & (captions != EOS_ID)


class JointEmbedding(nn.Module):
    """Projects a clip (its memory slots) and a sentence (its word embeddings) into one D-dim space."""

    def __init__(self, slot_size: int, embed_size: int, joint_size: int) -> None:
        super().__init__()
        self.clip_proj = nn.Linear(slot_size, joint_size)
        self.sentence_proj = nn.Linear(embed_size, joint_size)

    def clip(self, slots: Tensor, mask: Tensor) -> Tensor:
        """slots (B, N, H), mask (B, N) bool -> unit vectors (B, D)."""
        weights = mask.unsqueeze(-1).to(slots.dtype)  # (B, N, 1)
        pooled = (slots * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, H)
        return F.normalize(self.clip_proj(pooled), dim=-1)  # (B, D)

    def sentence(self, word_vectors: Tensor, words: Tensor) -> Tensor:
        """word_vectors (B, L, E), words (B, L) bool -> unit vectors (B, D); a caption without words
        gives the projection of a zero mean (finite), and the loss leaves it out."""
        weights = words.unsqueeze(-1).to(word_vectors.dtype)  # (B, L, 1)
        pooled = (word_vectors * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, E)
        return F.normalize(self.sentence_proj(pooled), dim=-1)  # (B, D)


def negative_pairs(clip_ids: Tensor, captions: Tensor) -> Tensor:
    """(B, B) bool: sentence j is a negative for clip i. Not when they are the same clip (clip i
    may repeat in a batch with another of its captions) or the same caption (identical
    captions describe both clips), and never for a caption without words."""
    same_clip = clip_ids.unsqueeze(0) == clip_ids.unsqueeze(1)  # (B, B)
    same_caption = (captions.unsqueeze(0) == captions.unsqueeze(1)).all(-1)  # (B, B) all L tokens equal
    has_words = caption_word_mask(captions).any(1)  # (B,)
    usable = has_words.unsqueeze(0) & has_words.unsqueeze(1)  # (B, B)
    return ~same_clip & ~same_caption & usable


def consistency_ranking_loss(clips: Tensor, sentences: Tensor, negatives: Tensor,
                             margin: float = CONSISTENCY_MARGIN) -> Tensor:
    """clips (B, D), sentences (B, D) unit vectors, negatives (B, B) bool -> scalar loss.

    Per clip i, sum over negative sentences j of [margin - s(i, i) + s(i, j)]+, and the same per
    sentence over negative clips; averaged over the rows that have a negative at all. Rows without
    one (a batch of 1, identical captions) add exactly 0, and the loss keeps its graph, so every
    parameter gets a (zero) gradient rather than none and nothing divides by zero.
    """
    scores = clips @ sentences.t()  # (B, B) cosine of clip i and sentence j
    positive = scores.diagonal()  # (B,)
    weights = negatives.to(scores.dtype)  # (B, B)
    clip_to_sentence = (margin - positive.unsqueeze(1) + scores).clamp(min=0) * weights  # (B, B) row i: clip i
    sentence_to_clip = (margin - positive.unsqueeze(0) + scores).clamp(min=0) * weights  # (B, B) column j: sentence j
    anchors = negatives.any(1).sum() + negatives.any(0).sum()  # rows + columns with a negative
    return (clip_to_sentence.sum() + sentence_to_clip.sum()) / anchors.clamp(min=1).to(scores.dtype)
