"""The `vidcap` command line. Commands parse options, call typed library functions, print."""

from __future__ import annotations

import typer

from vidcap_core.cli.caption import caption_command
from vidcap_core.cli.data import data_app
from vidcap_core.cli.evaluate import evaluate_command
from vidcap_core.cli.features import features, pretrain_cnn, probe_features_command
from vidcap_core.cli.ood import calibrate_ood_command
from vidcap_core.cli.train import train_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help="vidcap: caption videos, train and evaluate captioners.")
app.add_typer(data_app, name="data")
app.command("features")(features)
app.command("pretrain-cnn")(pretrain_cnn)
app.command("probe-features")(probe_features_command)
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.command("caption")(caption_command)
app.command("calibrate-ood")(calibrate_ood_command)


def main() -> None:
    app()
