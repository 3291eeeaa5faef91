"""Choosing a torch device: the one place it happens (STYLE rule 5: models never pick one)."""

from __future__ import annotations

import torch


def pick_device(preference: str | None = "auto", local_rank: int = 0) -> torch.device:
    """'auto' (or None) = cuda if available, else cpu; 'cuda' = this rank's GPU (`local_rank`);
    anything else ('cpu', 'cuda:1') is passed to torch.device as it is."""
    if preference is None or preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(preference)
