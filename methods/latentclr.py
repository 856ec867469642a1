"""LatentCLR (Yüksel et al., ICCV 2021): K global directions in W trained with a contrastive
loss on the changes they cause in the generator's early feature maps; the changes one direction
causes on different samples attract, those of different directions repel.

- Directions: K learned vectors (N(0, 1) init), each used as dz_k = α·d_k/|d_k|; every
  direction is applied to every sample, w_k = w + dz_k, broadcast to every W+ row.
- Features: ``generator.features(ws, feature_blocks)``, every returned map flattened and
  concatenated. ``feature_blocks = 1`` is LatentCLR's (StyleGAN2's first 4x4 conv); ContraFeat's
  re-implementation (its "LatCLR" row) uses the first 3 blocks, as the quick profile does.
- h = normalise(F(w_k) - F(w)); sim = |h·hᵀ| (``abs_similarity``; ContraFeat's re-implementation
  drops the abs), exp(sim·temperature) with temperature 0.5 multiplying; pos = mean over
  same-direction pairs without self, neg = mean over different-direction pairs;
  L = mean over rows of -log(pos/neg).
- Adam lr 1e-3, weight decay 1e-3, MultiStepLR [1000, 5000] γ 0.2, 10,000 iterations, batch 32,
  K 32. α = 1, the reference's StyleGAN2 example (its generic config default is 0.1, a tiny step
  in a StyleGAN2 W whose samples have norms in the tens).

The generator is frozen. Output: the unit directions broadcast on every W+ row, native scale α.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from core.config import check_ranges
from core.errors import SettingError
from core.progress import BarFactory
from methods.base import register_method
from methods.contrafeat import register_attention_addon
from methods.resumable import ResumableTrainer, freeze
from models.bundle import Bundle
from models.directions import Directions
from models.generator import Generator, broadcast_ws, generator_device


@dataclass(frozen=True)
class LatentCLRConfig:
    """Paper settings (the reference's training config, global directions, identity projector)."""

    num_directions: int = 32
    alpha: float = 1.0
    feature_blocks: int = 1
    temperature: float = 0.5
    abs_similarity: bool = True
    lr: float = 1e-3
    weight_decay: float = 1e-3
    milestones: tuple[int, ...] = (1000, 5000)
    gamma: float = 0.2
    batch_size: int = 32
    steps: int = 10_000
    checkpoint_every: int = 1000

    RANGES: ClassVar[dict[str, str]] = {
        "num_directions": "[2, inf)", "alpha": "(0, inf)", "feature_blocks": "[1, inf)",
        "temperature": "(0, inf)", "lr": "(0, inf)", "weight_decay": "[0, inf)",
        "milestones": "[1, inf)", "gamma": "(0, inf)", "batch_size": "[2, inf)",
        "steps": "[1, inf)", "checkpoint_every": "[1, inf)"}

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        check_ranges(self)
        if list(self.milestones) != sorted(self.milestones):
            raise SettingError(f"milestones must be increasing positive steps, got "
                               f"{self.milestones}")


def contrastive_loss(h: torch.Tensor, labels: torch.Tensor, temperature: float,
                     use_abs: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """LatentCLR's loss and accuracy on L2-normalised rows ``h [n, d]`` labelled by direction:
    mean over rows of -log(pos/neg), pos / neg the mean of exp(sim·temperature) over the other
    rows with the same / another label; accuracy = the share of rows with pos > neg."""
    sim = h @ h.T
    if use_abs:
        sim = sim.abs()
    sim = torch.exp(sim * temperature)
    same = labels[:, None] == labels[None, :]
    self_mask = torch.eye(len(labels), dtype=torch.bool, device=h.device)
    positive = same & ~self_mask
    negative = ~same
    pos = (sim * positive).sum(dim=1) / positive.sum(dim=1).clamp(min=1)
    neg = (sim * negative).sum(dim=1) / negative.sum(dim=1).clamp(min=1)
    loss = -torch.log(pos / neg).mean()
    return loss, (pos > neg).float().mean()


class GlobalDirections(nn.Module):
    """K learned W directions, each scaled to norm α (LatentCLR's "Fixed" model)."""

    def __init__(self, num_directions: int, w_dim: int, alpha: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.randn(num_directions, w_dim, generator=generator))

    def forward(self) -> torch.Tensor:
        return self.alpha * F.normalize(self.weight, dim=1)


class LatentCLRTrainer(ResumableTrainer):
    """The contrastive training of the global directions (Adam + MultiStepLR)."""

    checkpoint_file = "latentclr-checkpoint.pt"

    def __init__(self, generator: Generator, config: LatentCLRConfig, seed: int) -> None:
        super().__init__(seed, salt=53, checkpoint_every=config.checkpoint_every)
        self.generator, self.config = freeze(generator), config
        self.directions = GlobalDirections(
            config.num_directions, generator.w_dim, config.alpha,
            torch.Generator().manual_seed(int(seed) * 1_000_003 + 59))
        self.directions.to(generator_device(generator))
        self.optimizer = torch.optim.Adam(self.directions.parameters(), lr=config.lr,
                                          weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(config.milestones), gamma=config.gamma)

    def modules(self) -> dict[str, nn.Module]:
        return {"directions": self.directions}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}

    def schedulers(self) -> dict[str, Any]:
        return {"multistep": self.scheduler}

    def _features(self, w: torch.Tensor) -> torch.Tensor:
        gen = self.generator
        maps = gen.features(broadcast_ws(w, gen.num_ws), self.config.feature_blocks)
        return torch.cat([m.flatten(1) for m in maps], dim=1)

    def step(self) -> dict[str, float]:
        gen, cfg = self.generator, self.config
        device = generator_device(gen)
        k, b = cfg.num_directions, cfg.batch_size
        z = torch.randn(b, gen.z_dim, generator=self.rng)
        with torch.no_grad():
            w = gen.mapping(z.to(device))
            original = self._features(w)
        dz = self.directions()  # [K, w_dim]
        moved = (w[None] + dz[:, None]).reshape(k * b, -1)  # direction-major
        h = F.normalize(self._features(moved) - original.repeat(k, 1), dim=1, eps=1e-8)
        labels = torch.arange(k, device=device).repeat_interleave(b)
        loss, accuracy = contrastive_loss(h, labels, cfg.temperature, cfg.abs_similarity)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"latentclr loss is not finite at step {self.step_done}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": float(loss.detach()), "accuracy": float(accuracy)}


def run_latentclr(bundle: Bundle, config: LatentCLRConfig, seed: int,
                  progress: BarFactory | None = None,
                  checkpoint_dir: Path | None = None) -> Directions:
    generator = bundle.generator
    if not hasattr(generator, "features"):
        raise ValueError("latentclr needs a generator with features(ws, upto_block)")
    trainer = LatentCLRTrainer(generator, config, seed)
    trainer.train(config.steps, checkpoint_dir, progress, "latentclr: train directions")
    with torch.no_grad():
        unit = F.normalize(trainer.directions.weight.detach().cpu(), dim=1)
    k = config.num_directions
    meta = {"method": "latentclr", "config": asdict(config), "seed": int(seed),
            "native_unit": "alpha times a unit vector in W on every W+ row",
            "names": [f"latentclr{i}" for i in range(k)], "steps": trainer.step_done,
            "loss_history": trainer.history}
    return Directions.from_w(unit, generator.num_ws, scale=torch.full((k,), config.alpha),
                             meta=meta)


# 200 steps instead of 10,000 (0.94 s a step on shapes3d): a 50x larger learning rate (at 1e-3
# the directions barely leave their random init in 200 steps; docs/peers.md), one decay.
QUICK_LATENTCLR = {"num_directions": 10, "feature_blocks": 3, "batch_size": 8, "steps": 200,
                   "lr": 0.05, "milestones": (150,), "checkpoint_every": 50}

register_method(
    "latentclr", description="LatentCLR (Yüksel et al. 2021): global W directions trained "
    "contrastively on the changes they cause in early generator features",
    kind="directions", config_cls=LatentCLRConfig, profiles={"quick": QUICK_LATENTCLR},
    requires=("generator",), load_output=Directions.load, resumable=True, default=False,
)(run_latentclr)

register_attention_addon("latentclr")

__all__ = ["GlobalDirections", "LatentCLRConfig", "LatentCLRTrainer", "contrastive_loss",
           "run_latentclr"]
