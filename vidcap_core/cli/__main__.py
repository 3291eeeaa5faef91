"""`python -m vidcap_core.cli ...` (what `torchrun -m vidcap_core.cli train ...` runs on every rank)."""

from vidcap_core.cli import main

main()
