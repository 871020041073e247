"""Every error that means bad input, at the bottom of the import graph (no torch, no other ``bench`` module).

The CLI catches ``RIBenchError`` once and prints it as one line with exit code 2; any other exception is a bug
and keeps its traceback. Library code raises the most specific subclass; callers of the Python API can catch
``RIBenchError`` for every input problem at once.

Example:
    >>> from bench.exceptions import RIBenchError, UnknownNameError
    >>> issubclass(UnknownNameError, RIBenchError) and issubclass(UnknownNameError, KeyError)
    True
"""

from __future__ import annotations


class RIBenchError(Exception):
    """Base class: the input (a name, a file, an option, a model) cannot be used; the message says why."""

    def __str__(self) -> str:  # KeyError and OSError subclasses would quote or decorate the message otherwise
        return str(self.args[0]) if self.args else self.__class__.__name__


class UsageError(RIBenchError, ValueError):
    """Options that do not fit together (no model named, --only naming a plugin the suite lacks, ...)."""


class UnknownNameError(RIBenchError, KeyError):
    """A name no registry entry has; the message lists the closest names."""


class SuiteError(RIBenchError, ValueError):
    """A suite file that cannot be read: unknown key, wrong type, unknown plugin; the message names the line."""


class MissingDataError(RIBenchError, FileNotFoundError):
    """Data root missing or incomplete; the message says which files and where to get them."""


class BadModelError(RIBenchError, RuntimeError):
    """A model whose outputs cannot be evaluated (wrong logits shape, NaN) or that cannot be loaded."""


class ModelSuiteMismatch(BadModelError):
    """A model trained for another dataset, input size or number of classes than the suite evaluates."""


class ChecksumError(RIBenchError, RuntimeError):
    """A checkpoint whose sha256 differs from its card's."""


class DeviceUnavailableError(RIBenchError, RuntimeError):
    """``--device cuda`` on a machine where torch sees no CUDA device."""


class ExecutorUnavailableError(RIBenchError, RuntimeError):
    """An executor whose optional dependency is not installed (e.g. Ray)."""


class ReportError(RIBenchError, ValueError):
    """Results that cannot be laid out as asked (a table spec naming an unknown model, ...)."""


class TrainingCollapsed(RIBenchError, RuntimeError):
    """Training stopped early: a non-finite loss (``kind="diverged"``), or accuracy below ``--abort-below``
    (``kind="collapsed"``); ``where`` says when (epoch, step, learning rate) for the zoo's failure record."""

    def __init__(self, message: str, kind: str = "diverged", where: dict | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.where = where or {}
