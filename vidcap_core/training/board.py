"""TensorBoard event files of a training run, written into RUN_DIR next to log.jsonl, so that
`tensorboard --logdir <runs folder or benchmark cache>` shows runs side by side while they train.

The loop opens one board per run (`open_board`, rank 0 only) and calls `board.log(row, model)` with each
log.jsonl row: scalars train/loss, train/learning_rate, train/grad_norm (the interval's mean total norm
before clipping; train/grad_norm_max its largest), val/CIDEr-D, val/exact and every other semantic slot,
val/distinct_captions, and the fine-tunes' reward terms; at each validation of an attention model, the
image val/attention: where each word of one fixed validation clip's greedy caption looked. The
hyperparameters go to TensorBoard's HParams tab, one row per run. A resumed run purges the events of
steps its last.pt does not hold (TensorBoard's purge_step), as `trim_logs` does for log.jsonl.

Optional: without the `tensorboard` package every call is a no-op and the first opening in a process says
once how to install it (warning TensorBoardUnavailable). Logging never changes what training computes: the
heatmap's greedy decode runs under inference mode in eval mode (restored afterwards) and draws no random
number.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from torch import nn

from vidcap_core.runs import RunDir
from vidcap_core.training.config import TrainConfig

if TYPE_CHECKING:  # loop.py imports this module
    from vidcap_core.training.loop import TrainingData

INSTALL_HINT = "pip install 'vidcap[tensorboard]' (or: pip install tensorboard)"
# log.jsonl row field -> scalar tag (MLE and fine-tune rows; a field a row lacks or holds None is skipped)
ROW_SCALARS = {
    "train_loss": "train/loss",
    "lr": "train/learning_rate",
    "grad_norm_mean": "train/grad_norm",
    "grad_norm_max": "train/grad_norm_max",
    "clip_fraction": "train/clip_fraction",
    "sampling_prob": "train/sampling_prob",
    "epoch": "train/epoch",
    "val_distinct_captions": "val/distinct_captions",
    "mle_loss": "finetune/mle_loss",
    "pg_loss": "finetune/pg_loss",
    "reward": "finetune/reward",
    "d_loss": "finetune/d_loss",
    "d_accuracy": "finetune/d_accuracy",
}
VAL_TAGS = {"CIDEr": "val/CIDEr-D"}  # the validation scorer's CIDEr is CIDEr-D; other slots: val/<name>
ATTENTION_TAG = "val/attention"
HPARAM_TYPES = (bool, int, float, str)


class TensorBoardUnavailable(UserWarning):
    """Training runs without event files because the tensorboard package is not installed."""


class Board(Protocol):
    def log(self, row: dict[str, Any], model: nn.Module) -> None: ...

    def close(self) -> None: ...


class NoBoard:
    """What a run gets without tensorboard, or on a rank other than 0: nothing is written."""

    def log(self, row: dict[str, Any], model: nn.Module) -> None:
        return None

    def close(self) -> None:
        return None


class TrainingBoard:
    """A SummaryWriter on RUN_DIR with the run's fixed heatmap clip (the first validation clip)."""

    def __init__(self, writer: Any, data: TrainingData, max_tokens: int) -> None:
        self.writer = writer
        self.vocab = data.vocab
        self.clip_id = data.val.video_ids[0]
        self.clip_feats = data.val.feats[:1]  # (1, T, F) or (1, T, R, G)
        self.clip_mask = data.val.mask[:1]  # (1, T)
        self.max_tokens = max_tokens

    def log(self, row: dict[str, Any], model: nn.Module) -> None:
        """One log.jsonl row as scalars at its step; at a validation, the attention heatmap too."""
        step = int(row["step"])
        for field, tag in ROW_SCALARS.items():
            value = row.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag, float(value), step)
        for name, value in (row.get("val") or {}).items():
            if isinstance(value, (int, float)) and np.isfinite(value):
                self.writer.add_scalar(VAL_TAGS.get(name, f"val/{name}"), float(value), step)
        if row.get("val") is not None:
            self.log_attention(model, step)
        self.writer.flush()  # a watched run shows each interval as it ends, and a killed one keeps it

    def log_attention(self, model: nn.Module, step: int) -> None:
        from vidcap_core.decoding import decode

        device = next(model.parameters()).device
        [[best]] = decode(model, self.clip_feats.to(device), self.clip_mask.to(device), beam=1,  # type: ignore[arg-type]
                          max_len=self.max_tokens)
        words = self.vocab.decode_tokens(best.tokens)
        if best.attention is None or not words:  # a model without attention, or an empty caption
            return
        title = f"{self.clip_id}: {' '.join(words)}"
        image = attention_image(best.attention[: len(words)], words, title)  # (H, W, 3)
        self.writer.add_image(ATTENTION_TAG, image, step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


@lru_cache(maxsize=1)
def summary_writer_class() -> type | None:
    """torch's SummaryWriter, or None (said once per process) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(f"training writes no TensorBoard event files: the tensorboard package is not installed; "
                      f"{INSTALL_HINT} to watch runs with `tensorboard --logdir RUNS`.", TensorBoardUnavailable,
                      stacklevel=3)
        return None
    return SummaryWriter


def open_board(run: RunDir, cfg: TrainConfig, data: TrainingData, first_step: int, enabled: bool = True) -> Board:
    """The run's board; `first_step` is the step its last.pt holds (0 for a new run): the events of later
    steps, written before a kill, are purged. A NoBoard where `enabled` is False (ranks other than 0) or
    tensorboard is missing."""
    writer_class = summary_writer_class() if enabled else None
    if writer_class is None:
        return NoBoard()
    writer = writer_class(log_dir=str(run.root), purge_step=first_step + 1)
    write_hparams(writer, cfg, data)
    return TrainingBoard(writer, data, cfg.max_tokens)


def write_hparams(writer: Any, cfg: TrainConfig, data: TrainingData) -> None:
    """The run's config (no paths) and feature facts in TensorBoard's HParams tab, with its validation metrics."""
    from torch.utils.tensorboard.summary import hparams

    values = {k: v for k, v in cfg.to_dict().items() if k not in ("root", "features", "annotations")}
    values.update({f"features.{k}": v for k, v in data.preprocessing.items()})
    values = {k: v for k, v in values.items() if isinstance(v, HPARAM_TYPES)}
    metrics = {"val/CIDEr-D": 0.0, **({"val/exact": 0.0} if data.synth else {})}  # names only: values come from the scalars
    for summary in hparams(values, metrics):
        writer.file_writer.add_summary(summary)


def attention_image(attention: np.ndarray, words: list[str], title: str) -> np.ndarray:
    """(H, W, 3) uint8 picture of the words x memory slots attention (slots: frames, or frames x regions)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, slots = attention.shape  # (words, N)
    figure = Figure(figsize=(max(6.0, 0.25 * slots + 2.5), max(3.0, 0.3 * rows + 1.5)), dpi=80)
    canvas = FigureCanvasAgg(figure)  # off-screen: no pyplot state
    axes = figure.add_subplot()
    image = axes.imshow(attention, aspect="auto", cmap="viridis", vmin=0.0)
    axes.set_yticks(range(rows), labels=words, fontsize=8)
    axes.set_xlabel("memory slot (sampled frame, or frame x region)", fontsize=8)
    axes.set_title(title if len(title) <= 90 else title[:87] + "...", fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.04)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
