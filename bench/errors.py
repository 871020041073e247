"""Errors that mean bad input: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable

import typer

from bench.data.base import MissingDataError
from bench.models.zoo import ChecksumError
from bench.registry import UnknownNameError
from bench.report.common import ReportError
from bench.runner import BadModelError
from bench.suites import SuiteError
from bench.train import TrainingCollapsed

USER_ERRORS = (
    UnknownNameError,
    MissingDataError,
    SuiteError,
    BadModelError,
    ChecksumError,
    FileExistsError,
    FileNotFoundError,
    ReportError,
    TrainingCollapsed,
)


def user_errors(command: Callable) -> Callable:
    """Decorate a CLI command: bad-input errors become one clear line and exit code 2, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper
