"""User plugin modules (``--plugins`` / $BENCH_PLUGINS), imported before a command or cell runs.

Kept apart from the runner so that loading plugins does not import torch (fast ``bench list``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from core.errors import BenchError


def import_plugins(modules: Sequence[str]) -> None:
    """Import user modules that register extra methods, datasets or metric providers."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name == module:
                raise BenchError(f"plugin module {module!r} not found") from None
            raise
