"""Voynov & Babenko, "Unsupervised Discovery of Interpretable Directions in the GAN Latent Space"
(ICML 2020), the "Recog" peer of ContraFeat: a deformator A (directions in W) and a reconstructor
R trained jointly so that R can tell, from an image and its shifted copy, which direction was
moved and by how much. Directions R can tell apart are the ones that change the image in
distinct ways.

- Per sample: direction k ~ U{0..K-1}, shift ε ~ U(-shift_scale, shift_scale) with |ε| raised to
  ``min_shift`` (sign kept); images G(w) and G(w + ε A_k), one W vector broadcast to every W+ row
  (the reference's ``w_shift`` for StyleGAN2).
- Deformator ``ortho`` (the reference default): A = expm(X - Xᵀ), X ~ N(0, 1) (``random_init``)
  or 0.001·N(0, 1); the directions are A's first K columns (K = w_dim in the reference; fewer
  are allowed). ``linear``: a free [w_dim, K] matrix, 0.1·N(0, 1) or the identity's columns.
- Reconstructor on [G(w), G(w')] concatenated on channels (6 for RGB): ``resnet18`` (the
  paper's, not pretrained, Kaiming init) or ``convnet`` (four strided 3x3 convs with batch norm,
  for 64x64 images on a CPU; the quick profile's). Heads: K logits and one shift.
- Loss CE(logits, k) + 0.25·mean|ŝ - ε|; Adam lr 1e-4 for A and R, 1e5 steps of batch 32.

The generator is frozen (the reference trains through an unfrozen G; freezing changes nothing
but the cost). Output: unit W directions broadcast on all W+ rows, native scale 1 (``linear``:
the learned norm, the W shift of ε = 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

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

DEFORMATORS = ("ortho", "linear")
RECONSTRUCTORS = ("resnet18", "convnet")


@dataclass(frozen=True)
class RecogConfig:
    """Paper settings (the reference's run_train defaults); ``num_directions`` None = w_dim."""

    num_directions: int | None = None
    deformator: str = "ortho"
    random_init: bool = True
    shift_scale: float = 6.0
    min_shift: float = 0.5
    reconstructor: str = "resnet18"
    reconstructor_size: int | None = None  # resize R's input to this size (None: full size)
    reconstructor_width: int = 64  # convnet: channels of the first conv (doubling, up to 4x)
    shift_weight: float = 0.25
    lr: float = 1e-4  # both A and R
    deformator_lr: float | None = None  # None: lr
    batch_size: int = 32
    steps: int = 100_000
    checkpoint_every: int = 1000

    RANGES: ClassVar[dict[str, str]] = {
        "num_directions": "[2, inf)", "shift_scale": "(0, inf)", "min_shift": "[0, inf)",
        "reconstructor_size": "[8, inf)", "reconstructor_width": "[1, inf)",
        "shift_weight": "[0, inf)", "lr": "(0, inf)", "deformator_lr": "(0, inf)",
        "batch_size": "[1, inf)", "steps": "[1, inf)", "checkpoint_every": "[1, inf)"}

    def __post_init__(self) -> None:
        if self.deformator not in DEFORMATORS:
            raise SettingError(f"deformator must be one of {', '.join(DEFORMATORS)}, got "
                               f"{self.deformator!r}")
        if self.reconstructor not in RECONSTRUCTORS:
            raise SettingError(f"reconstructor must be one of {', '.join(RECONSTRUCTORS)}, got "
                               f"{self.reconstructor!r}")
        check_ranges(self)
        if self.min_shift > self.shift_scale:
            raise SettingError(f"min_shift must be in [0, shift_scale], got {self.min_shift}")


# -- deformator -----------------------------------------------------------------------------


class Deformator(nn.Module):
    """K directions in W: ``ortho`` columns of expm(X - Xᵀ) or a free ``linear`` matrix."""

    def __init__(self, kind: str, w_dim: int, num_directions: int, random_init: bool,
                 generator: torch.Generator) -> None:
        super().__init__()
        if kind == "ortho" and num_directions > w_dim:
            raise ValueError(f"ortho deformator: num_directions ({num_directions}) must be <= "
                             f"w_dim ({w_dim})")
        self.kind, self.num_directions = kind, num_directions
        if kind == "ortho":
            scale = 1.0 if random_init else 0.001
            self.weight = nn.Parameter(scale * torch.randn(w_dim, w_dim, generator=generator))
        elif random_init:
            self.weight = nn.Parameter(0.1 * torch.randn(w_dim, num_directions,
                                                         generator=generator))
        else:
            self.weight = nn.Parameter(torch.eye(w_dim, num_directions))

    def matrix(self) -> torch.Tensor:
        """``[w_dim, K]``: column k is direction k."""
        if self.kind == "ortho":
            return torch.linalg.matrix_exp(self.weight - self.weight.T)[:, : self.num_directions]
        return self.weight

    def forward(self, index: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """W shifts ``[n, w_dim]``: ε_i times direction k_i."""
        return shift[:, None] * self.matrix().T[index]


# -- reconstructors -------------------------------------------------------------------------


class _Heads(nn.Module):
    def __init__(self, features: int, num_directions: int) -> None:
        super().__init__()
        self.logits = nn.Linear(features, num_directions)
        self.shift = nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.logits(x), self.shift(x)[:, 0]


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                   nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x))


class ResNet18Reconstructor(nn.Module):
    """ResNet-18 (7x7 stem, max-pool, 4 stages of 2 basic blocks, 64-512 channels) on a
    ``2 * img_channels`` input, global average pool, direction and shift heads."""

    def __init__(self, in_channels: int, num_directions: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
                                  nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.heads = _Heads(512, num_directions)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class ConvReconstructor(nn.Module):
    """Four stride-2 3x3 convs (width, 2w, 4w, 4w) with batch norm and ReLU, global average
    pool, the two heads: enough for 64x64 images at a fraction of ResNet-18's cost."""

    def __init__(self, in_channels: int, num_directions: int, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for cout in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU()]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.heads = _Heads(cin, num_directions)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.body(x).mean(dim=(2, 3)))


def build_reconstructor(config: RecogConfig, img_channels: int, num_directions: int
                        ) -> nn.Module:
    if config.reconstructor == "resnet18":
        return ResNet18Reconstructor(2 * img_channels, num_directions)
    return ConvReconstructor(2 * img_channels, num_directions, config.reconstructor_width)


# -- training -------------------------------------------------------------------------------


class RecogTrainer(ResumableTrainer):
    """Joint training of the deformator and the reconstructor (one Adam each)."""

    checkpoint_file = "recog-checkpoint.pt"

    def __init__(self, generator: Generator, config: RecogConfig, seed: int) -> None:
        super().__init__(seed, salt=41, checkpoint_every=config.checkpoint_every)
        self.generator, self.config = freeze(generator), config
        self.num_directions = config.num_directions or generator.w_dim
        self.deformator = Deformator(config.deformator, generator.w_dim, self.num_directions,
                                     config.random_init,
                                     torch.Generator().manual_seed(int(seed) * 1_000_003 + 47))
        with torch.random.fork_rng(devices=[]):  # a seeded init that leaves the global stream
            torch.manual_seed(int(seed) * 1_000_003 + 43)
            self.reconstructor = build_reconstructor(config, generator.img_channels,
                                                     self.num_directions)
        device = generator_device(generator)
        self.deformator.to(device)
        self.reconstructor.to(device)
        self.opt_deformator = torch.optim.Adam(self.deformator.parameters(),
                                               lr=config.deformator_lr or config.lr)
        self.opt_reconstructor = torch.optim.Adam(self.reconstructor.parameters(), lr=config.lr)

    def modules(self) -> dict[str, nn.Module]:
        return {"deformator": self.deformator, "reconstructor": self.reconstructor}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"deformator": self.opt_deformator, "reconstructor": self.opt_reconstructor}

    def sample_shifts(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Direction indices ``[n]`` and shifts ``[n]`` with ``min_shift <= |ε| <= shift_scale``."""
        cfg = self.config
        index = torch.randint(self.num_directions, (n,), generator=self.rng)
        shift = (torch.rand(n, generator=self.rng) * 2 - 1) * cfg.shift_scale
        small = shift.abs() < cfg.min_shift
        shift[small] = torch.where(shift[small] < 0, -cfg.min_shift, cfg.min_shift)
        return index, shift

    def _reconstructor_input(self, original: torch.Tensor, shifted: torch.Tensor
                             ) -> torch.Tensor:
        x = torch.cat([original, shifted], dim=1)
        size = self.config.reconstructor_size
        if size is not None and x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x

    def step(self) -> dict[str, float]:
        gen, cfg = self.generator, self.config
        device = generator_device(gen)
        z = torch.randn(cfg.batch_size, gen.z_dim, generator=self.rng)
        index, shift = self.sample_shifts(cfg.batch_size)
        self.deformator.train()
        self.reconstructor.train()
        with torch.no_grad():
            w = gen.mapping(z.to(device))
            original = gen.synthesize(broadcast_ws(w, gen.num_ws))
        moved = w + self.deformator(index.to(device), shift.to(device))
        shifted = gen.synthesize(broadcast_ws(moved, gen.num_ws))
        logits, predicted = self.reconstructor(self._reconstructor_input(original, shifted))
        index, shift = index.to(device), shift.to(device)
        ce = F.cross_entropy(logits, index)
        shift_l1 = (predicted - shift).abs().mean()
        loss = ce + cfg.shift_weight * shift_l1
        if not torch.isfinite(loss):
            raise FloatingPointError(f"recog loss is not finite at step {self.step_done}")
        self.opt_deformator.zero_grad(set_to_none=True)
        self.opt_reconstructor.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_deformator.step()
        self.opt_reconstructor.step()
        accuracy = (logits.argmax(dim=1) == index).float().mean()
        return {"loss": float(loss.detach()), "ce": float(ce.detach()),
                "shift_l1": float(shift_l1.detach()), "accuracy": float(accuracy)}

    def directions(self) -> torch.Tensor:
        """``[K, w_dim]``: the deformator's directions (a shift of ε = 1 each)."""
        with torch.no_grad():
            return self.deformator.matrix().T.detach().cpu().clone()


def run_recog(bundle: Bundle, config: RecogConfig, seed: int, progress: BarFactory | None = None,
              checkpoint_dir: Path | None = None) -> Directions:
    generator = bundle.generator
    trainer = RecogTrainer(generator, config, seed)
    trainer.train(config.steps, checkpoint_dir, progress, "recog: train deformator")
    raw = trainer.directions()
    norms = raw.norm(dim=1)
    if (norms == 0).any():
        raise ValueError("recog: a learned direction has zero norm")
    k = trainer.num_directions
    meta = {"method": "recog", "config": asdict(config), "seed": int(seed),
            "native_unit": "unit vector in W on every W+ row" if config.deformator == "ortho"
            else "the deformator's W shift for ε = 1 (scale = its norm)",
            "names": [f"recog{i}" for i in range(k)], "steps": trainer.step_done,
            "loss_history": trainer.history}
    scale = torch.ones(k) if config.deformator == "ortho" else norms
    return Directions.from_w(raw / norms[:, None], generator.num_ws, scale=scale, meta=meta)


# 400 steps instead of 1e5: the small conv reconstructor, 10x / 100x the paper's learning rate
# for R / A, shifts up to 3 (unit directions; W's principal stds are 3..0.8 on shapes3d-oracle,
# 2.8..1.5 on shapes3d, where 6 saturates the renderer). Measured in docs/peers.md.
QUICK_RECOG = {"num_directions": 10, "reconstructor": "convnet", "reconstructor_width": 32,
               "batch_size": 16, "steps": 400, "lr": 1e-3, "deformator_lr": 0.01,
               "shift_scale": 3.0, "checkpoint_every": 50}

register_method(
    "recog", description="Voynov & Babenko 2020: directions a reconstructor can tell apart "
    "from image pairs (deformator + direction/shift classifier)",
    kind="directions", config_cls=RecogConfig, profiles={"quick": QUICK_RECOG},
    requires=("generator",), load_output=Directions.load, resumable=True, default=False,
)(run_recog)

register_attention_addon("recog")

__all__ = ["ConvReconstructor", "Deformator", "RecogConfig", "RecogTrainer",
           "ResNet18Reconstructor", "run_recog"]
