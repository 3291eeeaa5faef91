"""Whole tasks over trained runs: evaluate a checkpoint on a split; caption raw video files."""

from vidcap_core.pipeline.caption import Captioner, CaptionResult
from vidcap_core.pipeline.evaluate import EvalReport, evaluate_checkpoint, evaluate_run
from vidcap_core.decoding.predict import (
    Prediction,
    predict,
    predict_captions,
    preprocessing_from_meta,
)

__all__ = [
    "CaptionResult",
    "Captioner",
    "EvalReport",
    "Prediction",
    "evaluate_checkpoint",
    "evaluate_run",
    "predict",
    "predict_captions",
    "preprocessing_from_meta",
]
