"""Figures on disk: ``matplotlib.pyplot`` on the Agg backend, imported on first use (it takes
about a second, and importing a module that draws should not pay it), and the one way a figure
is written (atomically, as PNG, then closed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.io import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, *, text: dict[str, str] | None = None,
                dpi: float | None = None) -> Path:
    """Write ``fig`` to ``path`` as PNG (its folder is created; ``text``: PNG metadata; ``dpi``:
    None keeps the figure's) through a temporary file, then close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", metadata=text, dpi=dpi)
    finally:
        pyplot().close(fig)
    return path
