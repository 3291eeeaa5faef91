"""The `vidcap` command line. Commands parse options, call typed library functions, print."""

from __future__ import annotations

import typer

from vidcap_core.cli.data import data_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="vidcap: caption videos, train and evaluate captioners.")
app.add_typer(data_app, name="data")


def main() -> None:
    app()
