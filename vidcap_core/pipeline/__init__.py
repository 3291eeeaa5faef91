"""Whole tasks over trained runs: evaluate a checkpoint on a split; caption raw video files."""

from vidcap_core.pipeline.caption import Captioner, CaptionResult
from vidcap_core.pipeline.evaluate import EvalReport, evaluate_checkpoint, evaluate_run

__all__ = [
    "CaptionResult",
    "Captioner",
    "EvalReport",
    "evaluate_checkpoint",
    "evaluate_run",
]
