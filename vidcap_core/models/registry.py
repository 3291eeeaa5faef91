"""Architecture registry: name -> class, and `build_model(cfg)`."""

from __future__ import annotations

from vidcap_core.errors import ConfigError
from vidcap_core.models.base import CaptionModel
from vidcap_core.models.config import ModelConfig
from vidcap_core.models.meanpool import MeanPoolCaptioner
from vidcap_core.models.s2vt import S2VTCaptioner
from vidcap_core.models.attention import AttentionCaptioner
from vidcap_core.models.concepts import ConceptCaptioner

ARCHITECTURES: dict[str, type[CaptionModel]] = {
    "meanpool": MeanPoolCaptioner,
    "s2vt": S2VTCaptioner,
    "attention": AttentionCaptioner,
    "concepts": ConceptCaptioner,
}


def build_model(config: ModelConfig) -> CaptionModel:
    config.validate()
    try:
        model_class = ARCHITECTURES[config.arch]
    except KeyError:
        raise ConfigError(f"unknown architecture {config.arch!r}: choose one of {', '.join(ARCHITECTURES)}") from None
    return model_class(config)
