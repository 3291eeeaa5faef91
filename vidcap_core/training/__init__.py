"""Training: TrainConfig, the `train` loop (step budget, cheap validation, plateau schedule, convergence
verdict, resume, torchrun), gradient-flow probe."""

from vidcap_core.training.config import TrainConfig, read_config_file, resolve_config
from vidcap_core.training.convergence import convergence_verdict, selection_key
from vidcap_core.training.gradient_probe import ProbeBatch, frame_gradient_norms
from vidcap_core.training.loop import TrainResult, train
from vidcap_core.training.loss import caption_loss

__all__ = [
    "ProbeBatch",
    "TrainConfig",
    "TrainResult",
    "caption_loss",
    "convergence_verdict",
    "frame_gradient_norms",
    "read_config_file",
    "resolve_config",
    "selection_key",
    "train",
]
