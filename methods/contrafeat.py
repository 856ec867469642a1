"""ContraFeat (Zhu et al., AAAI-23): a navigator trained with contrastive losses on the changes
that its edits cause in a frozen sensor's deep features; and the attention add-on ``+att`` that
trains only the navigator's W+ attention on top of another method's frozen directions.

Paper-branch behaviour (docs/contrafeat.md): PCA-subspace direction branch (``pca``, k = 100),
W+ attention with Gaussian smoothing, style-mixed training latents (2 chunks), edit sizes
s ~ U(-1, 1) on RMS-normalised directions, Adam(lr 0.05, betas (0, 0.99)), diversity 0.1,
200 kimg at batch 12 (Bi) / 10 (Pt), counted as the paper counts: ``batch`` images per step.

- ``contrafeat-bi``: consistency (same direction, another original) and orthogonality (another
  direction) of squared masked cosines (``methods.contrast.binary_contrast_loss``).
- ``contrafeat-pt``: learned prototype patterns (``tanh``, mirror-and-negate augmentation with
  probability 0.5) matched against symmetric-pair differences (``pattern_contrast_loss``).
- ``<base>+att`` (GANSpace, SeFa): the base method's first directions, frozen; attention learned
  with the Bi loss (the paper's Table 1, 300 kimg).

The generator and the sensor are frozen; originals run under ``no_grad``. Training checkpoints
every ``checkpoint_every`` steps into the stage's work folder and resumes from there after a kill.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from core.config import check_ranges
from core.errors import SettingError
from core.progress import BarFactory, open_bar
from methods.base import METHODS, method_spec, register_method
from methods.contrast import (
    binary_contrast_loss,
    check_spatial_mode,
    diversity_loss,
    pattern_contrast_loss,
)
from methods.ganspace import StreamingCovariance, principal_components
from methods.navigator import Navigator
from methods.resumable import ResumableTrainer
from models.bundle import Bundle
from models.directions import Directions
from models.generator import Generator, generator_device
from models.sampling import sample_w
from models.sensors import load_sensor

CHECKPOINT_FILE = "navigator-checkpoint.pt"
LOSSES = ("bi", "pt")


@dataclass(frozen=True)
class NavigatorTrainingConfig:
    """What every navigator training shares (paper settings; ``loss`` picks Bi or Pt)."""

    num_directions: int = 30
    loss: str = "bi"
    spatial_mode: str = "l2mask"
    attention: str = "fixed"
    gaussian_size: int = 3
    gaussian_std: float = 1.0
    num_colors: int = 2  # style mixing: W+ rows split into this many chunks, one z each
    var_scale: float = 1.0  # edit size s ~ U(-var_scale, var_scale)
    lr: float = 0.05
    batch_size: int = 12
    kimg: float = 200.0
    div_lambda: float = 0.1
    pattern_size: int | None = None  # Pt patterns (None: the image size, as the paper's runs)
    mirror: bool = True  # Pt: replace patterns by -flip(patterns) with probability 0.5
    sensor: str = "default"  # a registered sensor, or the dataset's default
    sensor_weights: str | None = None
    checkpoint_every: int = 200  # steps

    RANGES: ClassVar[dict[str, str]] = {
        "num_directions": "[1, inf)", "gaussian_size": "[1, inf)", "gaussian_std": "(0, inf)",
        "num_colors": "[1, inf)", "var_scale": "(0, inf)", "lr": "(0, inf)",
        "batch_size": "[2, inf)", "kimg": "(0, inf)", "div_lambda": "[0, inf)",
        "pattern_size": "[1, inf)", "checkpoint_every": "[1, inf)"}

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise SettingError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        check_spatial_mode(self.spatial_mode)
        check_ranges(self)
        if self.loss == "bi" and self.batch_size % 2:
            raise SettingError(f"batch_size must be even for the Bi loss, got {self.batch_size}")
        if self.gaussian_size % 2 == 0:
            raise SettingError(f"gaussian_size must be odd, got {self.gaussian_size}")

    @property
    def steps(self) -> int:
        return max(1, round(self.kimg * 1000 / self.batch_size))


@dataclass(frozen=True)
class ContraFeatConfig(NavigatorTrainingConfig):
    """The paper's navigator: learned coefficients on the top ``num_eigen`` PCs of W."""

    num_eigen: int = 100
    pca_samples: int = 1_000_000

    RANGES: ClassVar[dict[str, str]] = {"num_eigen": "[1, inf)", "pca_samples": "[1, inf)"}


@dataclass(frozen=True)
class ContraFeatPtConfig(ContraFeatConfig):
    loss: str = "pt"
    batch_size: int = 10


@dataclass(frozen=True)
class AttentionAddOnConfig(NavigatorTrainingConfig):
    """Attention over the frozen directions of a base method (its config at ``base_profile``)."""

    kimg: float = 300.0
    base_profile: str = "paper"


# -- training ---------------------------------------------------------------------------------


def mixed_ws(generator: Generator, num: int, num_colors: int, rng: torch.Generator) -> torch.Tensor:
    """Style-mixed W+ originals ``[num, num_ws, w_dim]``: rows cut into ``num_colors`` chunks at
    integer points of ``linspace(0, num_ws, num_colors + 1)``, each chunk from its own z."""
    num_ws = generator.num_ws
    cuts = torch.linspace(0, num_ws, num_colors + 1).long().tolist()
    device = generator_device(generator)
    ws = torch.empty(num, num_ws, generator.w_dim, device=device)
    with torch.no_grad():
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            z = torch.randn(num, generator.z_dim, generator=rng)
            w = generator.mapping(z.to(device))
            if hi > lo:
                ws[:, lo:hi] = w[:, None, :]
    return ws


def _differences(sensor: nn.Module, edited: torch.Tensor, originals: list[torch.Tensor]
                 ) -> list[torch.Tensor]:
    return [f - o for f, o in zip(sensor(edited), originals, strict=True)]


class NavigatorTrainer(ResumableTrainer):
    """One navigator's training: the step for the chosen loss; checkpoints and exact resume come
    from ``ResumableTrainer``."""

    checkpoint_file = CHECKPOINT_FILE

    def __init__(self, generator: Generator, sensor: nn.Module, navigator: Navigator,
                 config: NavigatorTrainingConfig, seed: int) -> None:
        super().__init__(seed, salt=17, checkpoint_every=config.checkpoint_every)
        self.generator, self.sensor, self.navigator, self.config = (
            generator, sensor, navigator, config)
        self.learned = torch.nn.ParameterDict()  # Pt prototype patterns
        if config.loss == "pt":
            size = config.pattern_size or generator.resolution
            init = torch.Generator().manual_seed(int(seed) * 1_000_003 + 29)
            self.learned["patterns"] = torch.nn.Parameter(
                0.01 * torch.randn(navigator.num_directions, generator.img_channels, size, size,
                                   generator=init))
        params = [p for p in navigator.parameters() if p.requires_grad]
        params += list(self.learned.parameters())
        if not params:
            raise ValueError("the navigator has nothing to train (frozen directions and "
                             "attention 'none')")
        self.optimizer = torch.optim.Adam(params, lr=config.lr, betas=(0.0, 0.99), eps=1e-8)

    @property
    def patterns(self) -> torch.nn.Parameter | None:
        return self.learned["patterns"] if "patterns" in self.learned else None

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"navigator": self.navigator, "learned": self.learned}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}

    # -- one step -------------------------------------------------------------------------
    def _uniform(self, n: int) -> torch.Tensor:
        return (torch.rand(n, generator=self.rng) * 2 - 1) * self.config.var_scale

    def step(self) -> dict[str, float]:
        cfg, nav, device = self.config, self.navigator, generator_device(self.generator)
        b, nv = cfg.batch_size, nav.num_directions
        ws = mixed_ws(self.generator, b, cfg.num_colors, self.rng)
        edits = nav.edits().to(device)
        if cfg.loss == "bi":
            h = b // 2
            q = torch.randint(nv, (h,), generator=self.rng)
            neg = (q + torch.randint(1, max(nv, 2), (h,), generator=self.rng)) % nv
            s_q, s_neg = self._uniform(h).to(device), self._uniform(h).to(device)
            with torch.no_grad():
                orig = self.sensor(self.generator.synthesize(ws))
            shift_q = s_q[:, None, None] * edits[q]
            edited = torch.cat([ws[:h] + shift_q, ws[h:] + shift_q,
                                ws[h:] + s_neg[:, None, None] * edits[neg]])
            feats = self.sensor(self.generator.synthesize(edited))
            d_q = [f[:h] - o[:h] for f, o in zip(feats, orig, strict=True)]
            d_pos = [f[h:2 * h] - o[h:] for f, o in zip(feats, orig, strict=True)]
            d_neg = [f[2 * h:] - o[h:] for f, o in zip(feats, orig, strict=True)]
            contrast = binary_contrast_loss(d_q, d_pos, d_neg, cfg.spatial_mode)
        else:
            assert self.patterns is not None
            q = torch.randint(nv, (b,), generator=self.rng)
            s = self._uniform(b).to(device)
            half = 0.5 * s[:, None, None] * edits[q]
            images = self.generator.synthesize(torch.cat([ws - half, ws + half]))
            feats = self.sensor(images)
            diffs = [f[b:] - f[:b] for f in feats]
            patterns = torch.tanh(self.patterns)
            if cfg.mirror and float(torch.rand((), generator=self.rng)) < 0.5:
                patterns = -torch.flip(patterns, dims=[3])
            if patterns.shape[-2:] != images.shape[-2:]:
                # coarser patterns (pattern_size) are shown to the sensor as images are: at
                # the generator's size (a sensor of fixed input size takes nothing else)
                patterns = torch.nn.functional.interpolate(
                    patterns, size=images.shape[-2:], mode="bilinear", align_corners=False)
            pattern_feats = self.sensor(patterns.to(device))
            contrast = pattern_contrast_loss(diffs, pattern_feats, q.to(device), cfg.spatial_mode)
        diversity = diversity_loss(edits) if cfg.div_lambda > 0 else edits.new_zeros(())
        loss = contrast + cfg.div_lambda * diversity
        if not torch.isfinite(loss):
            raise FloatingPointError(f"navigator loss is not finite at step {self.step_done}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    torch.nan_to_num_(p.grad, nan=0.0, posinf=0.0, neginf=0.0)
        self.optimizer.step()
        return {"loss": float(loss.detach()), "contrast": float(contrast.detach()),
                "diversity": float(diversity.detach())}


# -- building blocks shared by the registered methods -------------------------------------------


def bundle_sensor(bundle: Bundle, config: NavigatorTrainingConfig) -> tuple[Any, str]:
    """The sensor a cell uses: the config's, or the dataset's default (``bundle.sensor``)."""
    name = config.sensor
    if name == "default":
        name = getattr(bundle, "sensor", None)
        if not name:
            raise ValueError(f"dataset {getattr(bundle, 'name', '?')!r} names no default sensor; "
                             "set the method's sensor (e.g. --set <method>.sensor=alexnet)")
    return load_sensor(name, config.sensor_weights), name


def pca_basis(generator: Generator, k: int, num_samples: int, seed: int,
              progress: BarFactory | None = None
              ) -> torch.Tensor:
    """Top-``k`` principal directions of W (rows, unit norm, variance order), k <= w_dim."""
    rng = torch.Generator().manual_seed(int(seed))
    stats = StreamingCovariance(generator.w_dim)
    bar = open_bar(progress, num_samples, "contrafeat: PCA of W")
    for w in sample_w(generator, num_samples, rng, batch=min(10_000, num_samples)):
        stats.update(w.numpy())
        bar.update(w.shape[0])
    bar.close()
    _, components = principal_components(stats.covariance())
    return torch.from_numpy(components[: min(k, generator.w_dim)].copy()).float()


def train_navigator(bundle: Bundle, navigator: Navigator, config: NavigatorTrainingConfig,
                    seed: int, method: str, progress: BarFactory | None,
                    checkpoint_dir: Path | None,
                    meta: dict[str, Any]) -> Directions:
    generator = bundle.generator
    if hasattr(generator, "requires_grad_"):
        generator.requires_grad_(False)
    sensor, sensor_name = bundle_sensor(bundle, config)
    sensor.to(generator_device(generator))
    trainer = NavigatorTrainer(generator, sensor, navigator, config, seed)
    trainer.train(config.steps, checkpoint_dir, progress, f"{method}: train navigator")
    with torch.no_grad():
        edits = navigator.edits().detach().cpu()
        attention = navigator.attention().detach().cpu()
    names = [f"{method}-{j}" for j in range(navigator.num_directions)]
    meta = {**meta, "method": method, "config": asdict(config), "seed": int(seed),
            "native_unit": "s = 1: an RMS-normalised direction (L2 norm sqrt(w_dim)) spread "
                           "over W+ rows by its attention", "names": names,
            "attention": attention.tolist(), "sensor": sensor_name, "steps": trainer.step_done,
            "loss_history": trainer.history}
    if trainer.patterns is not None:
        meta["patterns_shape"] = list(trainer.patterns.shape)
    return Directions(edits, torch.ones(navigator.num_directions), meta)


def _seeded(seed: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + salt)


def run_contrafeat(bundle: Bundle, config: ContraFeatConfig, seed: int,
                   progress: BarFactory | None = None,
                   checkpoint_dir: Path | None = None, method: str = "contrafeat") -> Directions:
    generator = bundle.generator
    if config.num_eigen < 1 or config.pca_samples < 2:
        raise ValueError("num_eigen must be >= 1 and pca_samples >= 2")
    basis = pca_basis(generator, config.num_eigen, config.pca_samples, seed, progress)
    navigator = Navigator(config.num_directions, generator.num_ws, generator.w_dim, basis=basis,
                          attention=config.attention, gaussian_size=config.gaussian_size,
                          gaussian_std=config.gaussian_std, generator=_seeded(seed, 5))
    return train_navigator(bundle, navigator, config, seed, method, progress, checkpoint_dir,
                           {"num_eigen": int(basis.shape[0])})


QUICK_NAVIGATOR = {"num_directions": 10, "batch_size": 8, "kimg": 2.4, "checkpoint_every": 50}

register_method(
    "contrafeat-bi",
    description="ContraFeat, binary loss: PCA-subspace navigator + W+ attention, masked "
    "consistency/orthogonality of sensor feature changes (Zhu et al. 2023)",
    kind="directions", config_cls=ContraFeatConfig,
    profiles={"quick": {**QUICK_NAVIGATOR, "num_eigen": 100, "pca_samples": 20_000}},
    requires=("generator", "sensor"), load_output=Directions.load, resumable=True,
    default=False,
)(lambda bundle, config, seed, progress=None, checkpoint_dir=None: run_contrafeat(
    bundle, config, seed, progress, checkpoint_dir, "contrafeat-bi"))

register_method(
    "contrafeat-pt",
    description="ContraFeat, prototype-pattern loss: learned tanh patterns matched against "
    "feature changes (Zhu et al. 2023)",
    kind="directions", config_cls=ContraFeatPtConfig,
    profiles={"quick": {**QUICK_NAVIGATOR, "num_eigen": 100, "pca_samples": 20_000,
                        "pattern_size": 32}},
    requires=("generator", "sensor"), load_output=Directions.load, resumable=True,
    default=False,
)(lambda bundle, config, seed, progress=None, checkpoint_dir=None: run_contrafeat(
    bundle, config, seed, progress, checkpoint_dir, "contrafeat-pt"))


# -- the attention add-on: composition over any registered direction method ---------------------


def base_w_directions(directions: Directions, count: int) -> torch.Tensor:
    """W directions ``[count, w_dim]`` from W+ directions: the sum over rows (a W direction
    broadcast to some rows keeps its direction)."""
    summed = (directions.scale[:, None, None] * directions.vectors).sum(dim=1)[:count]
    if (summed.norm(dim=1) == 0).any():
        raise ValueError("a base direction sums to zero over W+ rows; it has no W direction")
    return summed


def register_attention_addon(base: str, *, quick_base_profile: str = "quick") -> str:
    """Register ``<base>+att``: the base method's directions, frozen, with learned attention."""
    name = f"{base}+att"

    def run(bundle: Bundle, config: AttentionAddOnConfig, seed: int,
            progress: BarFactory | None = None,
            checkpoint_dir: Path | None = None) -> Directions:
        spec = method_spec(base)
        base_config = spec.config(config.base_profile)
        found = METHODS.get(base).run(bundle, base_config, seed, progress=progress)
        count = min(config.num_directions, found.num_directions)
        generator = bundle.generator
        navigator = Navigator(count, generator.num_ws, generator.w_dim,
                              frozen=base_w_directions(found, count),
                              attention=config.attention, gaussian_size=config.gaussian_size,
                              gaussian_std=config.gaussian_std, generator=_seeded(seed, 7))
        return train_navigator(bundle, navigator, config, seed, name, progress, checkpoint_dir,
                               {"base": base, "base_config": asdict(base_config),
                                "base_names": list(found.meta.get("names", []))[:count]})

    register_method(
        name,
        description=f"{base} directions, frozen, with ContraFeat's W+ attention trained on top",
        kind="directions", config_cls=AttentionAddOnConfig,
        profiles={"quick": {**QUICK_NAVIGATOR, "base_profile": quick_base_profile}},
        requires=("generator", "sensor"), load_output=Directions.load, resumable=True,
    default=False,
    )(run)
    return name


def _register_builtin_addons() -> None:
    import methods.ganspace  # noqa: F401  (the bases register on import)
    import methods.sefa  # noqa: F401

    for base in ("ganspace", "sefa"):
        register_attention_addon(base)


_register_builtin_addons()

__all__ = ["AttentionAddOnConfig", "ContraFeatConfig", "ContraFeatPtConfig", "Navigator",
           "NavigatorTrainer", "NavigatorTrainingConfig", "mixed_ws", "register_attention_addon",
           "run_contrafeat"]
