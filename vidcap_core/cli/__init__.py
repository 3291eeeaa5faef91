"""The `vidcap` command line. Commands parse options, call typed library functions, print."""

from __future__ import annotations

import atexit
import os
import sys

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
    """The `vidcap` script: run the command, then end the process without the interpreter's teardown.

    Tearing down an interpreter that imported torch takes 0.6-0.8 s on this 2-core machine (`python -c
    "import torch"`: 2.4 s, 1.6 s when it ends with os._exit), a third of a `vidcap caption` of one file.
    The command has finished by then; atexit handlers still run and stdout/stderr are flushed, so only
    the freeing of memory the OS reclaims anyway is skipped. An exception other than SystemExit
    propagates as usual."""
    try:
        app()  # click ends every command with SystemExit(code)
    except SystemExit as done:
        code = exit_status(done.code)
    else:
        code = 0
    atexit._run_exitfuncs()  # what a normal exit runs first (multiprocessing's children, logging, temp dirs)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def exit_status(code: object) -> int:
    """SystemExit's code as the process status, as Python's own exit reads it: None is 0, an int is
    itself, anything else is printed to stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
