"""DisCo (Ren et al., ICLR 2022): a navigator of K directions in W and an encoder (the
"Δ-contrastor") trained together, contrastively, on the changes the directions cause in the
encoder's code. Changes by the same direction (from other originals) are positives, changes by
other directions negatives; the encoder is then itself a disentangled representation of images.

Reference behaviour (xrenaa/DisCo ``train.py``, docs/disco.md gives the lines):

- Navigator: the orthogonal deformator A = expm(X - Xᵀ), X ~ N(0, 1) (``methods.recog``'s
  ``ortho``), directions = its first K columns; a shift moves one W vector, broadcast to every
  W+ row, by ε·A_k with ε ~ N(0, shift_scale²) and |ε| raised to ``min_shift``.
- Per step one direction k: B originals and N positives shifted along k, K_neg negatives
  shifted along other directions. q = normalise(|E(G(w')) - E(G(w))|) of the originals, the
  same for positives (keys) and negatives (queue, detached).
- Loss: BCE-with-logits of [q·keysᵀ, q·queueᵀ] against labels 1 for positives, 0 for negatives
  except hard negatives (logit > ``flip_threshold``), which get their own logit as a soft label;
  plus ``entropy_weight`` times the mean entropy of softmax(q). One Adam over A and E.
- Encoder: ``Baseline_Encoder`` (7x7 conv, four 4x4 stride-2 convs, two hidden linear layers,
  LeakyReLU, Kaiming init) on images in [0, 1]; ``encoder_width`` scales its channels (64: the
  reference's 64-128-256-256-256, 256 hidden units).

Two registered methods share one training (docs/disco.md): ``disco`` (its directions, scored by
the directions flow) and ``disco-encoder`` (its encoder, scored as a representation); the
latter's cells run ``disco``'s "discover" stage, so a seed trains once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from core.io import write_tensors_and_json
from core.progress import BarFactory
from methods.base import register_method
from methods.recog import Deformator
from methods.resumable import ResumableTrainer, freeze
from methods.vae_common import AdamSettings
from models.bundle import Bundle
from models.directions import Directions
from models.generator import Generator, broadcast_ws, generator_device
from models.vae import images_to_tensor

ENCODER_FORMAT = "disentangle-bench/disco-encoder"
ENCODER_WEIGHTS = "disco-encoder.safetensors"
ENCODER_META = "disco-encoder.json"
RESOLUTION = 64  # the reference encoder's input size (four stride-2 convs down to 4x4)
ENTROPY_EPS = 1e-5  # inside the log, as the reference's ``utils.entropy``
REPRESENT_BATCH = 64


@dataclass(frozen=True)
class DisCoModelSettings:
    """DisCo's own settings, the first fields of ``DisCoConfig``."""

    num_directions: int = 64  # --dim: the navigator's directions used in training
    code_dim: int = 64  # --z_dim: the encoder's output
    encoder_width: int = 64  # channels of the first conv (x1, x2, x4, x4, x4; hidden 4x)
    batch_size: int = 32  # --B: originals (queries)
    num_positives: int = 32  # --N
    num_negatives: int = 64  # --K
    shift_scale: float = 6.0
    min_shift: float = 0.5
    steps: int = 70_000  # --max_iter
    flip_threshold: float = 0.95  # --thresh
    flipping: bool = True  # --flipping
    entropy_weight: float = 1.0  # --entropy 1: loss = BCE + entropy
    checkpoint_every: int = 1000

    RANGES: ClassVar[dict[str, str]] = {
        "num_directions": "[2, inf)", "code_dim": "[1, inf)", "encoder_width": "[1, inf)",
        "batch_size": "[1, inf)", "num_positives": "[1, inf)", "num_negatives": "[1, inf)",
        "shift_scale": "(0, inf)", "min_shift": "[0, inf)", "steps": "[1, inf)",
        "flip_threshold": "[0, inf)", "entropy_weight": "[0, inf)",
        "checkpoint_every": "[1, inf)"}


@dataclass(frozen=True)
class DisCoConfig(AdamSettings, DisCoModelSettings):
    """Paper settings: the reference's ``train.py`` defaults (StyleGAN2, W space, orthogonal
    navigator, flipping and entropy on); its own, then the one Adam's over navigator and
    encoder (lr 1e-4, betas (0.9, 0.999), eps 1e-8: ``AdamSettings``' defaults)."""


# -- the encoder ----------------------------------------------------------------------------


class DisCoEncoderNet(nn.Module):
    """The reference's 64x64 ``Baseline_Encoder`` with its channels scaled by ``width``/64."""

    def __init__(self, in_channels: int, code_dim: int, width: int,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        wide = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 1, 3), nn.LeakyReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(),
            nn.Conv2d(2 * width, wide, 4, 2, 1), nn.LeakyReLU(),
            nn.Conv2d(wide, wide, 4, 2, 1), nn.LeakyReLU(),
            nn.Conv2d(wide, wide, 4, 2, 1), nn.LeakyReLU(),
            nn.Flatten(),
            nn.Linear(wide * 16, wide), nn.LeakyReLU(),
            nn.Linear(wide, wide), nn.LeakyReLU(),
            nn.Linear(wide, code_dim),
        )
        for module in self.body:
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, generator=generator)
                nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[n, C, 64, 64]`` in [0, 1] -> codes ``[n, code_dim]``."""
        return self.body(images)


class DisCoEncoder:
    """A trained DisCo encoder as a representation: uint8 images -> its code (n, code_dim)."""

    def __init__(self, net: DisCoEncoderNet, architecture: dict[str, int],
                 meta: dict[str, Any] | None = None) -> None:
        self.net = net.eval()
        self.architecture = dict(architecture)
        self.meta = dict(meta or {})

    @classmethod
    def build(cls, in_channels: int, code_dim: int, width: int,
              generator: torch.Generator | None = None) -> DisCoEncoder:
        arch = {"in_channels": in_channels, "code_dim": code_dim, "width": width}
        return cls(DisCoEncoderNet(in_channels, code_dim, width, generator), arch)

    @property
    def code_dim(self) -> int:
        return self.architecture["code_dim"]

    def represent(self, observations: np.ndarray, batch_size: int = REPRESENT_BATCH
                  ) -> np.ndarray:
        """uint8 (n, 64, 64, C) -> codes float32 (n, code_dim), images seen in [0, 1] as the
        reference's ``evaluate.py`` shows them; near-equal batches as ``VAEEncoder``'s (a row's
        code does not depend on its batch: no batch norm; checked in tests/test_disco.py)."""
        images_to_tensor(observations[:0], self.architecture["in_channels"])
        n = len(observations)
        out = np.empty((n, self.code_dim), dtype=np.float32)
        pieces = max(1, -(-n // batch_size))
        bounds = [n * i // pieces for i in range(pieces + 1)]
        with torch.inference_mode():
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
                chunk = images_to_tensor(observations[start:stop],
                                         self.architecture["in_channels"])
                out[start:stop] = self.net(chunk).numpy()
        return out

    represent.batch_invariant = True  # type: ignore[attr-defined]

    def save(self, directory: str | Path) -> None:
        """``disco-encoder.safetensors`` + ``disco-encoder.json``, each written atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().clone() for k, v in self.net.state_dict().items()}
        info = {"format": ENCODER_FORMAT, "architecture": self.architecture,
                "representation": "the encoder's code of images in [0, 1]", "meta": self.meta}
        write_tensors_and_json(directory, ENCODER_WEIGHTS, tensors, ENCODER_META, info)

    @classmethod
    def load(cls, directory: str | Path) -> DisCoEncoder:
        directory = Path(directory)
        weights, meta_path = directory / ENCODER_WEIGHTS, directory / ENCODER_META
        for path in (weights, meta_path):
            if not path.is_file():
                raise FileNotFoundError(f"DisCo encoder file missing: {path}")
        info = json.loads(meta_path.read_text())
        if info.get("format") != ENCODER_FORMAT:
            raise ValueError(f"{meta_path}: expected format {ENCODER_FORMAT!r}, "
                             f"got {info.get('format')!r}")
        arch = {k: int(info["architecture"][k]) for k in ("in_channels", "code_dim", "width")}
        net = DisCoEncoderNet(arch["in_channels"], arch["code_dim"], arch["width"])
        try:
            net.load_state_dict(load_file(str(weights)), strict=True)
        except RuntimeError as err:
            raise ValueError(f"{weights}: weights do not match architecture {arch}: {err}"
                             ) from None
        return cls(net, arch, info.get("meta", {}))


@dataclass
class DisCoDirections(Directions):
    """DisCo's directions with the encoder trained beside them: ``save`` writes both into one
    folder; ``Directions.load`` reads the directions, ``DisCoEncoder.load`` the encoder."""

    encoder: DisCoEncoder | None = None

    def save(self, directory: str | Path) -> None:
        super().save(directory)
        if self.encoder is not None:
            self.encoder.save(directory)


# -- the loss -------------------------------------------------------------------------------


def contrast_logits(query: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor
                    ) -> torch.Tensor:
    """``[B, N + K]``: cosines of the normalised changes, positives first (no temperature)."""
    return torch.cat([query @ keys.T, query @ queue.T], dim=1)


def contrast_labels(logits: torch.Tensor, num_positives: int, flip_threshold: float | None
                    ) -> torch.Tensor:
    """1 for the positives; 0 for the negatives, except, with hard-negative flipping, those
    whose logit exceeds ``flip_threshold``: their own (detached) logit as a soft label."""
    labels = torch.zeros_like(logits)
    if flip_threshold is not None:
        hard = logits.detach() > flip_threshold
        labels[hard] = logits.detach()[hard]
    labels[:, :num_positives] = 1.0
    return labels


def code_entropy(query: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the entropy of softmax(q): low when a change sits in few code
    dimensions (the reference's ``utils.entropy``, log(p + 1e-5))."""
    p = torch.softmax(query, dim=1)
    return -(p * torch.log(p + ENTROPY_EPS)).sum(dim=1).mean()


def normalised_change(after: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    return F.normalize((after - before).abs(), dim=1)


# -- training -------------------------------------------------------------------------------


class DisCoTrainer(ResumableTrainer):
    """Navigator and encoder under one Adam; checkpoints and exact resume from
    ``ResumableTrainer``."""

    checkpoint_file = "disco-checkpoint.pt"

    def __init__(self, generator: Generator, config: DisCoConfig, seed: int) -> None:
        super().__init__(seed, salt=53, checkpoint_every=config.checkpoint_every)
        if generator.resolution != RESOLUTION:
            raise ValueError(f"DisCo's encoder reads {RESOLUTION}x{RESOLUTION} images; the "
                             f"generator makes {generator.resolution} px")
        if config.num_directions > generator.w_dim:
            raise ValueError(f"disco: num_directions ({config.num_directions}) must be <= the "
                             f"generator's w_dim ({generator.w_dim})")
        self.generator, self.config = freeze(generator), config
        self.navigator = Deformator("ortho", generator.w_dim, config.num_directions, True,
                                    torch.Generator().manual_seed(int(seed) * 1_000_003 + 59))
        self.encoder = DisCoEncoder.build(
            generator.img_channels, config.code_dim, config.encoder_width,
            torch.Generator().manual_seed(int(seed) * 1_000_003 + 61))
        device = generator_device(generator)
        self.navigator.to(device)
        self.encoder.net.to(device)
        params = list(self.navigator.parameters()) + list(self.encoder.net.parameters())
        self.optimizer = config.optimizer(params)

    def modules(self) -> dict[str, nn.Module]:
        return {"navigator": self.navigator, "encoder": self.encoder.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}

    def sample_shifts(self, n: int) -> torch.Tensor:
        """``[n]`` shifts ε ~ N(0, shift_scale²) with ``|ε| >= min_shift`` (sign kept)."""
        cfg = self.config
        shift = torch.randn(n, generator=self.rng) * cfg.shift_scale
        small = shift.abs() < cfg.min_shift
        shift[small] = torch.where(shift[small] < 0, -cfg.min_shift, cfg.min_shift)
        return shift

    def _pairs(self, n: int, index: torch.Tensor, grad: bool
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Originals G(w) and shifted images G(w + ε A_index) in [0, 1] for ``n`` fresh z."""
        gen = self.generator
        device = generator_device(gen)
        z = torch.randn(n, gen.z_dim, generator=self.rng)
        shift = self.sample_shifts(n).to(device)
        with torch.no_grad():
            w = gen.mapping(z.to(device))
            original = gen.synthesize(broadcast_ws(w, gen.num_ws))
        with torch.set_grad_enabled(grad):
            moved = w + self.navigator(index.to(device), shift)
            shifted = gen.synthesize(broadcast_ws(moved, gen.num_ws))
        return (original + 1) / 2, (shifted + 1) / 2

    def step(self) -> dict[str, float]:
        cfg = self.config
        k, b, n, m = cfg.num_directions, cfg.batch_size, cfg.num_positives, cfg.num_negatives
        self.navigator.train()
        self.encoder.net.train()
        target = torch.randint(k, (1,), generator=self.rng)
        originals, shifted = self._pairs(b + n, target.expand(b + n), grad=True)
        others = (target + torch.randint(1, k, (m,), generator=self.rng)) % k
        neg_originals, neg_shifted = self._pairs(m, others, grad=False)
        codes = self.encoder.net(torch.cat([originals, shifted]))
        change = normalised_change(codes[b + n:], codes[:b + n])
        query, keys = change[:b], change[b:]
        with torch.no_grad():
            neg_codes = self.encoder.net(torch.cat([neg_originals, neg_shifted]))
            queue = normalised_change(neg_codes[m:], neg_codes[:m])
        logits = contrast_logits(query, keys, queue)
        labels = contrast_labels(logits, n, cfg.flip_threshold if cfg.flipping else None)
        bce = F.binary_cross_entropy_with_logits(logits, labels)
        entropy = code_entropy(query)
        loss = bce + cfg.entropy_weight * entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), "bce": float(bce.detach()),
                "entropy": float(entropy.detach()),
                "positive_cos": float(logits[:, :n].detach().mean()),
                "negative_cos": float(logits[:, n:].detach().mean())}

    def directions(self) -> torch.Tensor:
        """``[K, w_dim]`` unit directions (the navigator's first K columns)."""
        with torch.no_grad():
            return self.navigator.matrix().T.detach().cpu().clone()


def train_disco(bundle: Bundle, config: DisCoConfig, seed: int,
                progress: BarFactory | None = None, checkpoint_dir: Path | None = None
                ) -> tuple[Directions, DisCoEncoder]:
    """Train (or resume) DisCo on the bundle's generator: its directions and its encoder."""
    generator = bundle.generator
    trainer = DisCoTrainer(generator, config, seed)
    trainer.train(config.steps, checkpoint_dir, progress, "disco: train navigator and encoder")
    k = config.num_directions
    meta = {"method": "disco", "config": asdict(config), "seed": int(seed),
            "native_unit": "unit vector in W on every W+ row (training shifts ε ~ N(0, "
                           f"{config.shift_scale:g}²))",
            "names": [f"disco{i}" for i in range(k)], "steps": trainer.step_done,
            "loss_history": trainer.history}
    found = Directions.from_w(trainer.directions(), generator.num_ws, scale=torch.ones(k),
                              meta=meta)
    encoder = DisCoEncoder(trainer.encoder.net.cpu(), trainer.encoder.architecture,
                           {"method": "disco", "config": asdict(config), "seed": int(seed),
                            "steps": trainer.step_done})
    return found, encoder


def run_disco(bundle: Bundle, config: DisCoConfig, seed: int,
              progress: BarFactory | None = None, checkpoint_dir: Path | None = None
              ) -> DisCoDirections:
    """``disco``: the directions of ``train_disco``, with its encoder (saved beside them)."""
    found, encoder = train_disco(bundle, config, seed, progress, checkpoint_dir)
    return DisCoDirections(found.vectors, found.scale, found.meta, encoder=encoder)


def run_disco_encoder(bundle: Bundle, config: DisCoConfig, seed: int,
                      progress: BarFactory | None = None, checkpoint_dir: Path | None = None
                      ) -> DisCoEncoder:
    """``disco-encoder``: the encoder of ``train_disco`` (called directly; the representation
    flow runs ``disco``'s discover stage instead, so that both methods share one training)."""
    return train_disco(bundle, config, seed, progress, checkpoint_dir)[1]


# Sized for 2 CPU cores (docs/disco.md): 10 directions and code dimensions, the encoder at a
# quarter of the reference's width, 8 queries / 8 positives / 16 negatives per step (64 images
# through the generator and the encoder), 10x the learning rate, shifts of std 3 (6 saturates
# the shipped shapes3d generator and the oracle, as for recog's quick profile).
QUICK_DISCO = {"num_directions": 10, "code_dim": 10, "encoder_width": 16, "batch_size": 8,
               "num_positives": 8, "num_negatives": 16, "lr": 1e-3, "shift_scale": 3.0,
               "steps": 600, "checkpoint_every": 50}

register_method(
    "disco", description="DisCo (Ren et al. 2022): orthogonal navigator in W trained "
    "contrastively with an encoder of the changes it causes; its directions",
    kind="directions", config_cls=DisCoConfig, profiles={"quick": QUICK_DISCO},
    requires=("generator",), load_output=Directions.load, resumable=True, default=False,
)(run_disco)

register_method(
    "disco-encoder", description="DisCo's encoder (the Δ-contrastor) as a representation; "
    "trained once with disco's directions",
    kind="representation", config_cls=DisCoConfig, profiles={"quick": QUICK_DISCO},
    requires=("generator", "ground_truth"), load_output=DisCoEncoder.load, resumable=True,
    trained_by="disco", default=False,
)(run_disco_encoder)

__all__ = ["DisCoConfig", "DisCoDirections", "DisCoEncoder", "DisCoEncoderNet",
           "DisCoModelSettings", "DisCoTrainer", "code_entropy", "contrast_labels",
           "contrast_logits", "run_disco", "run_disco_encoder", "train_disco"]
