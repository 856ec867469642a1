"""Progress reporting, typed: the two shapes long loops report through.

- :class:`BarFactory` ``(total, desc) -> Bar`` (``CellContext.progress``): direction methods,
  the calibration and the projection open a bar and advance it;
- :class:`StepCallback` ``(done, total, losses)``: representation methods call it once per
  training step (the flow draws it as a bar).

Both are optional everywhere: ``None`` reports nothing (``open_bar`` gives a silent bar).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Bar(Protocol):
    """A progress bar (tqdm's subset the project uses)."""

    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


class BarFactory(Protocol):
    """Opens a bar of ``total`` steps labelled ``desc``."""

    def __call__(self, total: int, desc: str) -> Bar: ...


class StepCallback(Protocol):
    """Hears ``done`` of ``total`` training steps, with the step's losses when it has them."""

    def __call__(self, done: int, total: int,
                 losses: Mapping[str, float] | None = None) -> None: ...


class NullBar:
    """A bar that shows nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def open_bar(progress: BarFactory | None, total: int, desc: str) -> Bar:
    """A bar from an optional factory; None gives a silent one."""
    if progress is None:
        return NullBar()
    bar = progress(total, desc)
    return bar if hasattr(bar, "update") else NullBar()
