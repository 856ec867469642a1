"""A training loop that checkpoints and resumes exactly: the shared part of the peer methods
(``recog``, ``latentclr``).

A subclass owns its modules, optimizers, schedulers and one CPU random stream ``self.rng`` and
implements ``step() -> losses``; this class logs every ``LOG_EVERY`` steps (a fixed schedule, so
a resumed run logs the same), checkpoints every ``checkpoint_every`` steps into
``checkpoint_dir`` and, when a checkpoint is there, resumes from it to the same weights a run
without the kill reaches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.io import atomic_path
from core.progress import BarFactory, open_bar
from models.generator import Generator

LOG_EVERY = 10


class ResumableTrainer:
    """State = step count, history, the random stream and every module / optimizer /
    scheduler the subclass lists."""

    checkpoint_file = "checkpoint.pt"

    def __init__(self, seed: int, salt: int, checkpoint_every: int) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be positive, got {checkpoint_every}")
        self.rng = torch.Generator().manual_seed(int(seed) * 1_000_003 + salt)
        self.checkpoint_every = checkpoint_every
        self.step_done = 0
        self.history: list[dict[str, float]] = []

    # -- what a subclass provides ---------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def schedulers(self) -> dict[str, Any]:
        return {}

    def step(self) -> dict[str, float]:
        raise NotImplementedError

    # -- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"step": self.step_done, "history": self.history, "rng": self.rng.get_state(),
                "modules": {k: m.state_dict() for k, m in self.modules().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers().items()}}

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    def load(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for group, objects in (("modules", self.modules()), ("optimizers", self.optimizers()),
                               ("schedulers", self.schedulers())):
            if set(state[group]) != set(objects):
                raise ValueError(f"{path}: checkpoint holds {group} {sorted(state[group])}, "
                                 f"expected {sorted(objects)}")
            for name, obj in objects.items():
                obj.load_state_dict(state[group][name])
        self.rng.set_state(state["rng"])
        self.step_done = int(state["step"])
        self.history = list(state["history"])

    def train(self, steps: int, checkpoint_dir: Path | None, progress: BarFactory | None = None,
              desc: str = "train") -> None:
        path = None if checkpoint_dir is None else Path(checkpoint_dir) / self.checkpoint_file
        if path is not None and path.is_file():
            self.load(path)
        bar = open_bar(progress, steps, desc)
        bar.update(self.step_done)
        while self.step_done < steps:
            losses = self.step()
            self.step_done += 1
            if not all(torch.isfinite(torch.tensor(v)) for v in losses.values()):
                raise FloatingPointError(f"{desc}: loss not finite at step {self.step_done}")
            if self.step_done % LOG_EVERY == 0:
                self.history.append({"step": self.step_done, **losses})
            if path is not None and self.step_done % self.checkpoint_every == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.save(path)
            bar.update(1)
        bar.close()


def freeze(generator: Generator) -> Generator:
    """The generator with ``requires_grad_(False)`` (gradients still flow through it to W)."""
    if hasattr(generator, "requires_grad_"):
        generator.requires_grad_(False)
    return generator


__all__ = ["LOG_EVERY", "ResumableTrainer", "freeze"]
