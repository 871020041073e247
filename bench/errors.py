"""Errors that mean bad input: the CLI prints them as one line and exits with code 2."""

from bench.data.base import MissingDataError
from bench.models.zoo import ChecksumError
from bench.registry import UnknownNameError
from bench.runner import BadModelError
from bench.suites import SuiteError

USER_ERRORS = (UnknownNameError, MissingDataError, SuiteError, BadModelError, ChecksumError)
