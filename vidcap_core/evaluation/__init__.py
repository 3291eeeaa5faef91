"""Evaluation: pycocoevalcap scoring (BLEU 1-4, METEOR, ROUGE-L, CIDEr-D), caption diversity, the Java check,
bootstraps."""

from vidcap_core.evaluation.bootstrap import (
    BootstrapCI,
    BootstrapResult,
    bootstrap_ci,
    combine_seeds,
    corpus_bootstrap,
    mean_std,
    paired_bootstrap,
)
from vidcap_core.evaluation.diversity import Diversity, caption_diversity
from vidcap_core.evaluation.java import check_java
from vidcap_core.evaluation.metrics import (
    METRICS,
    CaptionScores,
    Scorer,
    sanitize_caption,
    score_captions,
    spice_status,
)

__all__ = [
    "METRICS",
    "BootstrapCI",
    "BootstrapResult",
    "CaptionScores",
    "Diversity",
    "Scorer",
    "bootstrap_ci",
    "caption_diversity",
    "check_java",
    "combine_seeds",
    "corpus_bootstrap",
    "mean_std",
    "paired_bootstrap",
    "sanitize_caption",
    "score_captions",
    "spice_status",
]
