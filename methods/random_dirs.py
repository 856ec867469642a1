"""Random unit directions in W: the floor every discovery method must beat."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch

from core.config import check_ranges
from core.progress import BarFactory
from methods.base import register_method
from models.bundle import Bundle
from models.directions import Directions


@dataclass(frozen=True)
class RandomConfig:
    """``num_directions`` isotropic unit vectors in W, applied to every W+ row."""

    num_directions: int = 30

    RANGES: ClassVar[dict[str, str]] = {"num_directions": "[1, inf)"}

    def __post_init__(self) -> None:
        check_ranges(self)


def random_unit_vectors(num: int, dim: int, rng: torch.Generator) -> torch.Tensor:
    """``[num, dim]`` rows drawn uniformly on the unit sphere."""
    vectors = torch.randn(num, dim, generator=rng, dtype=torch.float64)
    return (vectors / vectors.norm(dim=1, keepdim=True)).float()


@register_method(
    "random",
    description="random unit directions in W (chance-level floor)",
    kind="directions",
    config_cls=RandomConfig,
    profiles={"quick": {"num_directions": 10}},
    requires=("generator",),
    load_output=Directions.load,
)
def run_random(bundle: Bundle, config: RandomConfig, seed: int,
               progress: BarFactory | None = None) -> Directions:
    generator = bundle.generator
    rng = torch.Generator().manual_seed(int(seed))
    vectors = random_unit_vectors(config.num_directions, generator.w_dim, rng)
    meta = {
        "method": "random",
        "config": asdict(config),
        "seed": int(seed),
        "native_unit": "unit vector in W",
        "names": [f"random{i}" for i in range(config.num_directions)],
    }
    return Directions.from_w(vectors, generator.num_ws, meta=meta)
