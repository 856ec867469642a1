"""The exact factor directions of a generator that knows them: the ceiling on ``shapes3d-oracle``.

Every other direction method on that dataset is compared against this one: its discovery scores
and its distilled encoder are what perfect directions reach under the same protocol.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from core.progress import BarFactory
from methods.base import register_method
from models.bundle import Bundle
from models.directions import Directions


@dataclass(frozen=True)
class OracleDirectionsConfig:
    """No settings: the generator's ``true_directions()`` (unit rows in W), one per factor."""


@register_method(
    "oracle",
    description="the generator's own ground-truth factor directions (ceiling; oracle data only)",
    kind="directions",
    config_cls=OracleDirectionsConfig,
    requires=("generator", "true_directions"),
    load_output=Directions.load,
)
def run_oracle(bundle: Bundle, config: OracleDirectionsConfig, seed: int,
               progress: BarFactory | None = None) -> Directions:
    generator = bundle.generator
    if not hasattr(generator, "true_directions"):
        raise ValueError(f"dataset {bundle.name!r}: its generator has no true_directions()")
    vectors = generator.true_directions().float()
    names = list(getattr(generator, "factor_names", [f"factor{i}" for i in range(len(vectors))]))
    meta = {"method": "oracle", "config": asdict(config), "seed": int(seed),
            "native_unit": "unit vector in W", "names": names}
    homes = getattr(generator, "factor_layers", None)
    if generator.num_ws > 1 and homes is not None:
        # a layered generator reads each factor on its home row and aliases it on the others:
        # the direction on the home row alone is the nearly pure edit (a 1/(num_ws - 1) leak)
        plus = torch.zeros(len(vectors), generator.num_ws, vectors.shape[1])
        plus[torch.arange(len(vectors)), torch.as_tensor(homes)] = vectors
        return Directions(plus, torch.ones(len(vectors)), {**meta, "layers": list(homes)})
    return Directions.from_w(vectors, generator.num_ws, meta=meta)
