"""The exception types the CLI turns into a one-line message and exit code 2.

``BenchError`` is the base; the lower layers raise its two subclasses where a user's input is
refused, so the planner need not turn every ValueError (a bug as much as a bad input) into one.
Both are also ValueErrors, so code and tests that catch ValueError keep working.
"""

from __future__ import annotations


class BenchError(Exception):
    """A user-facing error: bad input, a missing file, a busy results folder.

    ``main`` prints ``error: <message>`` as one line without a traceback (unless ``--verbose``).
    """


class SettingError(BenchError, ValueError):
    """A setting outside what it accepts: a config value or field, a profile name, an option."""


class DataError(BenchError, ValueError):
    """A data file that is missing or not what was expected: unreadable, damaged, of the wrong
    shape or type. Loaders keep FileNotFoundError for a missing file (callers rely on it); the
    planner reports either as a DataError naming the dataset."""
