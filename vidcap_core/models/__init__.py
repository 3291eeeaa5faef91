"""Caption models: `ModelConfig`, cells, soft attention, meanpool / s2vt / attention / concepts captioners,
the joint clip/sentence embedding (semantic consistency)."""

from vidcap_core.models.attention import AttentionCaptioner
from vidcap_core.models.base import CaptionModel, Memory, append_frame_deltas, check_frame_mask, repeat_each
from vidcap_core.models.cells import (
    CELLS,
    Recurrent,
    State,
    cell_class,
    map_state,
    select_state,
)
from vidcap_core.models.concepts import ConceptCaptioner, StateFromVector
from vidcap_core.models.config import (
    ARCH_NAMES,
    BOS_ID,
    CELL_NAMES,
    CONCEPT_MODES,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    ModelConfig,
)
from vidcap_core.models.joint_embedding import (
    CONSISTENCY_MARGIN,
    JointEmbedding,
    caption_word_mask,
    consistency_ranking_loss,
    negative_pairs,
)
from vidcap_core.models.loss import masked_nll
from vidcap_core.models.meanpool import MeanPoolCaptioner
from vidcap_core.models.registry import ARCHITECTURES, build_model
from vidcap_core.models.s2vt import S2VTCaptioner
from vidcap_core.models.soft_attention import SoftAttention

__all__ = [
    "ARCHITECTURES",
    "ARCH_NAMES",
    "BOS_ID",
    "CELLS",
    "CELL_NAMES",
    "CONCEPT_MODES",
    "CONSISTENCY_MARGIN",
    "EOS_ID",
    "PAD_ID",
    "UNK_ID",
    "AttentionCaptioner",
    "CaptionModel",
    "ConceptCaptioner",
    "JointEmbedding",
    "Memory",
    "MeanPoolCaptioner",
    "ModelConfig",
    "Recurrent",
    "S2VTCaptioner",
    "SoftAttention",
    "State",
    "StateFromVector",
    "append_frame_deltas",
    "build_model",
    "caption_word_mask",
    "cell_class",
    "check_frame_mask",
    "consistency_ranking_loss",
    "map_state",
    "masked_nll",
    "repeat_each",
    "negative_pairs",
    "select_state",
]
