"""The one exception type the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class BenchError(Exception):
    """A user-facing error: bad input, a missing file, a busy results folder.

    ``main`` prints ``error: <message>`` as one line without a traceback (unless ``--verbose``).
    """
