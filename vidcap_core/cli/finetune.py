"""`vidcap train --init-from RUN_OR_CKPT --scst | --adversarial`: the fine-tuning branch of `vidcap train`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidcap_core.errors import ConfigError


def finetune_from_options(out: Path, config: Path | None, init_from: Path | None, scst: bool, adversarial: bool,
                          overrides: dict[str, Any], finetune_overrides: dict[str, Any], resume: bool,
                          progress: bool) -> dict[str, Any]:
    """Resolve both configs from the MLE run and the options, fine-tune, return the run summary."""
    if scst == adversarial:
        raise ConfigError("fine-tuning needs exactly one of --scst and --adversarial (both or neither given).")
    if init_from is None:
        raise ConfigError("--scst and --adversarial fine-tune a trained model: pass --init-from RUN_DIR (a `vidcap "
                          "train` run folder) or a checkpoint file.")
    from vidcap_core.training.finetune_config import resolve_finetune
    from vidcap_core.training.finetune import finetune, finetune_summary

    method = "scst" if scst else "adversarial"
    cfg, ft = resolve_finetune(init_from, method, config, overrides, finetune_overrides)
    return finetune_summary(finetune(cfg, ft, out, resume=resume, progress=progress), ft)
