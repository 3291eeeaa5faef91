"""`vidcap data ...`: probe videos, make SynthClips, count dataset splits."""

from __future__ import annotations

import typer

from vidcap_core.cli.probe import probe
from vidcap_core.cli.stats import stats
from vidcap_core.cli.synth import synth

data_app = typer.Typer(no_args_is_help=True, help="Inspect videos and datasets; generate SynthClips.")
data_app.command("probe")(probe)
data_app.command("synth")(synth)
data_app.command("stats")(stats)
