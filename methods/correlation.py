"""Correlation analysis (Li, Tao, Niu, Li, ICPR 2020): the latent dimensions controlling a concept.

A concept is one class of one factor of the bundle's classifier (``shape=sphere``; on FFHQ an
attribute). Its codes are latent codes (z, or w with ``space="w"``) whose image the classifier
puts in that class, found in one seeded pool. Two ways to find the concept's controlling set:

- ``corr-intervention`` (method A, inferred in the spec): the sensitivity of dimension i is
  ``S_i = E_x max_δ |p_c(G(x + δ σ_i e_i)) − p_c(G(x))|`` over a grid of δ (σ_i: 1 in Z, the
  pool's std of w_i in W); dimensions are ranked by S and the set grows along the ranking (each
  dimension moved by its most damaging δ) until the class flips for ``flip_fraction`` of the
  codes or the mean p_c falls below ``prob_threshold``.
- ``corr-optimize`` (method B, the spec's proposal on CA ``create_weight.py``): a weighting
  ``g = tanh(a)`` (a initialised to 0.5) maximises ``E_x max_± |p_c(G(x ± κ σ ⊙ g)) − p_c(G(x))|
  − λ ||g||_1`` with Adam on batches of codes; the set holds the dimensions with
  ``|g_i| >= set_threshold · max |g|`` (at most ``max_set_size``), ranked by |g|.

Each concept gives one direction, broadcast to every W+ row: A the class-mean difference
``μ_c − μ_rest`` of the pool restricted to the set, B the learned perturbation ``κ σ ⊙ g`` on
the set, signed towards the class. In Z it goes through the mapping
(``mean mapping(z + v) − mean mapping(z)`` over pool codes), so the output is a W direction like
every other method's and the same discovery and distillation stages score it. ``meta``
records, per concept, the set, the sensitivity vector (A: S; B: |g|) with its sparsity (Gini,
share of the top 10% of dimensions) and the class-to-class translation: codes of other classes
with the set's coordinates replaced by the concept's class mean, and the histogram of the
classes they are then given (``translation_rate``: the share that lands in the concept).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from core.config import check_ranges
from core.errors import SettingError
from core.hashing import stable_int
from core.io import atomic_path
from core.progress import Bar, BarFactory, open_bar
from datasets.render3d import SHAPE_NAMES
from methods.base import register_method
from models.bundle import Bundle
from models.directions import Directions
from models.generator import Generator, broadcast_ws, generator_device

SPACES = ("z", "w")
CLASS_NAMES: dict[tuple[str, int], tuple[str, ...]] = {("shape", len(SHAPE_NAMES)): SHAPE_NAMES}
"""Readable class names of known factors (factor name, number of classes) -> names."""


@dataclass(frozen=True)
class CorrelationConfig:
    """Settings both methods share. ``concepts``: entries ``factor`` (every class of it) or
    ``factor=class`` (index or name); empty means every class of every factor."""

    space: str = "z"
    concepts: tuple[str, ...] = ()
    pool_size: int = 20_000
    num_codes: int = 1000  # codes per concept (CA embeds 1,000 latents per class)
    min_codes: int = 8  # a concept with fewer codes in the pool is skipped (and recorded)
    max_set_size: int = 32
    direction_samples: int = 1000  # pool codes mapping a Z direction into W
    batch_size: int = 256

    RANGES: ClassVar[dict[str, str]] = {
        "pool_size": "[1, inf)", "num_codes": "[1, inf)", "min_codes": "[1, inf)",
        "max_set_size": "[1, inf)", "direction_samples": "[1, inf)", "batch_size": "[1, inf)"}

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """The space and every declared range (the subclasses' fields included)."""
        if self.space not in SPACES:
            raise SettingError(f"space must be one of {SPACES}, got {self.space!r}")
        check_ranges(self)
        if getattr(self, "deltas", None) == ():
            raise SettingError("deltas: expected at least one magnitude, got ()")


@dataclass(frozen=True)
class InterventionConfig(CorrelationConfig):
    """Method A: δ grid in units of each dimension's std (both signs), stopping rule."""

    deltas: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0)
    flip_fraction: float = 0.5
    prob_threshold: float = 0.5

    RANGES: ClassVar[dict[str, str]] = {
        "deltas": "(0, inf)", "flip_fraction": "(0, 1]", "prob_threshold": "(0, 1)"}


@dataclass(frozen=True)
class OptimizeConfig(CorrelationConfig):
    """Method B: Adam on ``a`` (g = tanh a), perturbation size κ (in stds), L1 weight λ."""

    steps: int = 1000
    opt_batch_size: int = 64
    lr: float = 0.05
    kappa: float = 2.5
    l1: float = 0.01
    init: float = 0.5
    set_threshold: float = 0.5
    checkpoint_every: int = 100

    # ``init``: the starting value of a (g = tanh a), any finite number
    RANGES: ClassVar[dict[str, str]] = {
        "steps": "[1, inf)", "opt_batch_size": "[1, inf)", "lr": "(0, inf)",
        "kappa": "(0, inf)", "l1": "[0, inf)", "init": "(-inf, inf)", "set_threshold": "[0, 1]",
        "checkpoint_every": "[1, inf)"}


# -- concepts, codes and the classifier ---------------------------------------------------------


@dataclass(frozen=True)
class Concept:
    factor: int
    factor_name: str
    cls: int
    name: str


def class_label(factor_name: str, size: int, cls: int) -> str:
    names = CLASS_NAMES.get((factor_name, size))
    return names[cls] if names else str(cls)


def parse_concepts(spec: Sequence[str], factor_names: Sequence[str],
                   factor_sizes: Sequence[int]) -> list[Concept]:
    """The concepts named by ``spec`` (see ``CorrelationConfig``), in factor and class order."""
    wanted: set[tuple[int, int]] = set()
    entries = list(spec) or list(factor_names)
    for entry in entries:
        factor, _, cls = str(entry).partition("=")
        if factor not in factor_names:
            raise ValueError(f"concept {entry!r}: unknown factor {factor!r} (the classifier has "
                             f"{', '.join(factor_names)})")
        f = list(factor_names).index(factor)
        size = int(factor_sizes[f])
        labels = [class_label(factor, size, k) for k in range(size)]
        if not cls:
            wanted.update((f, k) for k in range(size))
        elif cls in labels:
            wanted.add((f, labels.index(cls)))
        elif cls.isdigit() and int(cls) < size:
            wanted.add((f, int(cls)))
        else:
            raise ValueError(f"concept {entry!r}: class {cls!r} not in 0..{size - 1} or "
                             f"{', '.join(labels)}")
    return [Concept(f, factor_names[f], k,
                    f"{factor_names[f]}={class_label(factor_names[f], factor_sizes[f], k)}")
            for f, k in sorted(wanted)]


class LatentSpace:
    """Codes in Z or W of a generator: their images and the classifier's probabilities."""

    def __init__(self, generator: Generator, predictor: Any, space: str, batch_size: int) -> None:
        if not hasattr(predictor, "predict_proba") or not hasattr(predictor, "factor_names"):
            raise ValueError(f"correlation analysis needs a classifier with predict_proba and "
                             f"factor_names, got {type(predictor).__name__}")
        self.generator, self.predictor = generator, predictor
        self.space, self.batch_size = space, batch_size
        self.dim = int(generator.z_dim if space == "z" else generator.w_dim)
        self.device = generator_device(generator)

    def to_ws(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [n, dim] -> W+ [n, num_ws, w_dim] on the generator's device."""
        codes = codes.to(self.device)
        w = self.generator.mapping(codes) if self.space == "z" else codes
        return broadcast_ws(w, self.generator.num_ws)

    def probs(self, codes: torch.Tensor) -> list[torch.Tensor]:
        """Class probabilities per factor (CPU, float32), differentiable in ``codes``."""
        images = self.generator.synthesize(self.to_ws(codes))
        return [p.float().cpu() for p in self.predictor.predict_proba(images)]

    @torch.no_grad()
    def probs_batched(self, codes: torch.Tensor) -> list[torch.Tensor]:
        parts = [self.probs(codes[i:i + self.batch_size])
                 for i in range(0, len(codes), self.batch_size)]
        return [torch.cat(group) for group in zip(*parts, strict=True)]


@dataclass
class Pool:
    """Seeded codes, their per-dimension scale and the classifier's probabilities of them."""

    codes: torch.Tensor  # [n, dim]
    scale: torch.Tensor  # [dim]: 1 in Z, the std of each w coordinate in W
    probs: list[torch.Tensor]  # per factor [n, size]

    def classes(self, factor: int) -> torch.Tensor:
        return self.probs[factor].argmax(dim=1)


@torch.no_grad()
def sample_pool(latent: LatentSpace, size: int, seed: int) -> Pool:
    rng = torch.Generator().manual_seed(int(seed))
    z = torch.randn(size, latent.generator.z_dim, generator=rng)
    if latent.space == "z":
        codes, scale = z, torch.ones(latent.dim)
    else:
        codes = torch.cat([latent.generator.mapping(z[i:i + latent.batch_size].to(latent.device))
                           .float().cpu() for i in range(0, size, latent.batch_size)])
        scale = codes.std(dim=0).clamp(min=1e-8)
    return Pool(codes, scale, latent.probs_batched(codes))


def setup(bundle: Bundle, config: CorrelationConfig, seed: int
          ) -> tuple[LatentSpace, Pool, list[Concept], dict[Concept, torch.Tensor], list[str]]:
    """Classifier, pool, concepts and the pool indices of each concept's codes (first
    ``num_codes``); concepts with fewer than ``min_codes`` codes are returned as skipped names."""
    config.check()
    generator = bundle.generator
    if hasattr(generator, "requires_grad_"):
        generator.requires_grad_(False)
    predictor = bundle.predictor
    latent = LatentSpace(generator, predictor, config.space, config.batch_size)
    concepts = parse_concepts(config.concepts, list(predictor.factor_names),
                              list(predictor.factor_sizes))
    pool = sample_pool(latent, config.pool_size, seed)
    kept, members, skipped = [], {}, []
    for concept in concepts:
        idx = torch.nonzero(pool.classes(concept.factor) == concept.cls).flatten()
        if len(idx) < config.min_codes:
            skipped.append(concept.name)
            continue
        kept.append(concept)
        members[concept] = idx[: config.num_codes]
    if not kept:
        raise ValueError(f"no concept has {config.min_codes} codes in a pool of "
                         f"{config.pool_size} (skipped: {', '.join(skipped)}); raise pool_size")
    return latent, pool, kept, members, skipped


# -- what both methods report per concept -------------------------------------------------------


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 all equal, -> 1 all mass on one."""
    x = np.sort(np.abs(np.asarray(values, dtype=np.float64)))
    n, total = len(x), float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    return float(2 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def top_mass(values: np.ndarray, fraction: float = 0.1) -> float:
    """Share of the total held by the largest ``ceil(fraction · n)`` values."""
    x = np.sort(np.abs(np.asarray(values, dtype=np.float64)))[::-1]
    total = float(x.sum())
    return float(x[: max(1, math.ceil(fraction * len(x)))].sum() / total) if total > 0 else 0.0


def intervene(codes: torch.Tensor, dims: Sequence[int], values: torch.Tensor | Sequence[float]
              ) -> torch.Tensor:
    """``codes`` with the coordinates ``dims`` replaced by ``values`` (the do-intervention)."""
    out = codes.clone()
    out[:, list(dims)] = torch.as_tensor(values, dtype=out.dtype)
    return out


@torch.no_grad()
def translation(latent: LatentSpace, pool: Pool, concept: Concept, dims: Sequence[int],
                num_codes: int) -> dict[str, Any]:
    """Codes of the other classes with the set set to the concept's class mean: the target
    values, the resulting class histogram and the share given the concept's class."""
    classes = pool.classes(concept.factor)
    target = pool.codes[classes == concept.cls][:, list(dims)].mean(dim=0)
    others = pool.codes[classes != concept.cls][:num_codes]
    result: dict[str, Any] = {"target_values": target.tolist(), "translation_rate": None,
                              "translation_histogram": None}
    if len(others):
        after = latent.probs_batched(intervene(others, dims, target))[concept.factor]
        hist = torch.bincount(after.argmax(dim=1), minlength=after.shape[1])
        result["translation_rate"] = float(hist[concept.cls]) / len(others)
        result["translation_histogram"] = hist.tolist()
    return result


@torch.no_grad()
def to_w_direction(latent: LatentSpace, pool: Pool, vector: torch.Tensor, samples: int
                   ) -> torch.Tensor:
    """A latent direction as a W direction: itself in W; in Z the mean mapped difference."""
    if latent.space == "w":
        return vector.float()
    z = pool.codes[:samples]
    mapping = latent.generator.mapping
    moved = torch.cat([mapping((z[i:i + latent.batch_size] + vector).to(latent.device)).cpu()
                       - mapping(z[i:i + latent.batch_size].to(latent.device)).cpu()
                       for i in range(0, len(z), latent.batch_size)])
    return moved.mean(dim=0).float()


def mean_difference(pool: Pool, concept: Concept) -> torch.Tensor:
    classes = pool.classes(concept.factor)
    inside, rest = pool.codes[classes == concept.cls], pool.codes[classes != concept.cls]
    if not len(rest):
        return torch.zeros(pool.codes.shape[1])
    return inside.mean(dim=0) - rest.mean(dim=0)


def concept_record(concept: Concept, dims: Sequence[int], sensitivity: torch.Tensor,
                   num_codes: int, **extra: Any) -> dict[str, Any]:
    values = sensitivity.double().numpy()
    return {"name": concept.name, "factor": concept.factor_name, "class": concept.cls,
            "set": [int(i) for i in dims], "sensitivity": [float(v) for v in values],
            "ranking": [int(i) for i in np.argsort(-values, kind="stable")],
            "gini": gini(values), "top10_mass": top_mass(values), "num_codes": int(num_codes),
            **extra}


def finish(name: str, config: CorrelationConfig, seed: int, latent: LatentSpace, pool: Pool,
           records: list[dict[str, Any]], vectors: list[torch.Tensor], skipped: list[str],
           unit: str) -> Directions:
    generator = latent.generator
    meta = {"method": name, "config": asdict(config), "seed": int(seed), "native_unit": unit,
            "names": [r["name"] for r in records], "skipped_concepts": skipped,
            "correlation": {"space": config.space, "latent_scale": pool.scale.tolist(),
                            "concepts": records}}
    return Directions.from_w(torch.stack(vectors), generator.num_ws, meta=meta)


# -- method A: sequential intervention ----------------------------------------------------------


@torch.no_grad()
def intervention_changes(latent: LatentSpace, pool: Pool, rows: torch.Tensor,
                         factors: Sequence[int], deltas: torch.Tensor,
                         progress: BarFactory | None = None
                         ) -> dict[int, torch.Tensor]:
    """Per factor f: ``[len(rows), dim, len(deltas)]`` change of the probability of each code's
    own class of f when one coordinate moves by δ·σ_i."""
    codes = pool.codes[rows]
    n, dim, nd = len(codes), latent.dim, len(deltas)
    own = {f: pool.classes(f)[rows] for f in factors}
    base = {f: pool.probs[f][rows, own[f]] for f in factors}
    out = {f: torch.zeros(n, dim, nd) for f in factors}
    bar = open_bar(progress, dim, "corr-intervention: per-dimension sensitivity")
    for i in range(dim):
        moved = codes.repeat(nd, 1)
        moved[:, i] += (deltas * pool.scale[i]).repeat_interleave(n)
        probs = latent.probs_batched(moved)
        for f in factors:
            p = probs[f].reshape(nd, n, -1)[:, torch.arange(n), own[f]]  # [nd, n]
            out[f][:, i, :] = (p - base[f]).T
        bar.update(1)
    bar.close()
    return out


@torch.no_grad()
def grow_set(latent: LatentSpace, codes: torch.Tensor, concept: Concept, order: torch.Tensor,
             shift: torch.Tensor, config: InterventionConfig) -> tuple[list[int], list[dict]]:
    """Move the top-m dimensions together (m = 1, 2, ...) until the concept flips."""
    curve = []
    for m in range(1, min(config.max_set_size, len(order)) + 1):
        moved = codes.clone()
        dims = order[:m]
        moved[:, dims] += shift[dims]
        probs = latent.probs_batched(moved)[concept.factor]
        flipped = float((probs.argmax(dim=1) != concept.cls).double().mean())
        mean_p = float(probs[:, concept.cls].mean())
        curve.append({"size": m, "flip_fraction": flipped, "mean_prob": mean_p})
        if flipped >= config.flip_fraction or mean_p < config.prob_threshold:
            break
    return [int(i) for i in order[: curve[-1]["size"]]], curve


@register_method(
    "corr-intervention",
    description="correlation analysis A (Li et al. 2020): per-dimension intervention "
    "sensitivity of a classifier's concept, controlling set grown until the concept flips",
    kind="directions",
    config_cls=InterventionConfig,
    profiles={"quick": {"concepts": ("shape",), "pool_size": 512, "num_codes": 8,
                        "deltas": (3.0,), "max_set_size": 16, "direction_samples": 256,
                        "batch_size": 128}},
    requires=("generator", "predictor"),
    load_output=Directions.load,
    default=False,
)
def run_intervention(bundle: Bundle, config: InterventionConfig, seed: int,
                     progress: BarFactory | None = None) -> Directions:
    latent, pool, concepts, members, skipped = setup(bundle, config, seed)
    rows = torch.unique(torch.cat(list(members.values())))
    position = {int(r): k for k, r in enumerate(rows)}
    deltas = torch.tensor([s * d for d in config.deltas for s in (1.0, -1.0)])
    changes = intervention_changes(latent, pool, rows, sorted({c.factor for c in concepts}),
                                   deltas, progress)
    records, vectors = [], []
    for concept in concepts:
        local = torch.tensor([position[int(r)] for r in members[concept]])
        change = changes[concept.factor][local]  # [n_c, dim, nd]
        sensitivity = change.abs().amax(dim=2).mean(dim=0)
        best = deltas[change.mean(dim=0).argmin(dim=1)]  # the most damaging δ per dimension
        order = torch.argsort(-sensitivity, stable=True)
        dims, curve = grow_set(latent, pool.codes[members[concept]], concept, order,
                               best * pool.scale, config)
        mask = torch.zeros(latent.dim)
        mask[dims] = 1.0
        vectors.append(to_w_direction(latent, pool, mask * mean_difference(pool, concept),
                                      config.direction_samples))
        records.append(concept_record(
            concept, dims, sensitivity, len(local), flip_curve=curve,
            flipped=curve[-1]["flip_fraction"] >= config.flip_fraction
            or curve[-1]["mean_prob"] < config.prob_threshold,
            best_delta=[float(best[i]) for i in dims],
            **translation(latent, pool, concept, dims, config.num_codes)))
    return finish("corr-intervention", config, seed, latent, pool, records, vectors, skipped,
                  "class-mean difference (rest -> concept) restricted to the controlling set")


# -- method B: optimisation ---------------------------------------------------------------------


class ConceptOptimizer:
    """Method B for one concept: the weighting, its Adam state, the batch stream, checkpoints."""

    def __init__(self, latent: LatentSpace, codes: torch.Tensor, base: torch.Tensor,
                 scale: torch.Tensor, concept: Concept, config: OptimizeConfig, seed: int) -> None:
        self.latent, self.codes, self.base, self.scale = latent, codes, base, scale
        self.concept, self.config = concept, config
        self.logits = torch.nn.Parameter(torch.full((latent.dim,), float(config.init)))
        self.optimizer = torch.optim.Adam([self.logits], lr=config.lr)
        self.rng = torch.Generator().manual_seed(int(seed))
        self.step_done = 0
        self.history: list[dict[str, float]] = []

    def weights(self) -> torch.Tensor:
        return torch.tanh(self.logits.detach())

    def step(self) -> dict[str, float]:
        idx = torch.randint(len(self.codes), (self.config.opt_batch_size,), generator=self.rng)
        codes = self.codes[idx]
        g = torch.tanh(self.logits)
        delta = self.config.kappa * self.scale * g
        probs = self.latent.probs(torch.cat([codes + delta, codes - delta]))[self.concept.factor]
        p = probs[:, self.concept.cls].reshape(2, -1)
        change = (p - self.base[idx]).abs().amax(dim=0).mean()
        loss = -change + self.config.l1 * g.abs().sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step_done += 1
        return {"loss": float(loss.detach()), "change": float(change.detach())}

    def state(self) -> dict[str, Any]:
        return {"step": self.step_done, "logits": self.logits.detach().clone(),
                "optimizer": self.optimizer.state_dict(), "rng": self.rng.get_state(),
                "history": self.history}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    def load(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        with torch.no_grad():
            self.logits.copy_(state["logits"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.step_done = int(state["step"])
        self.history = list(state["history"])

    def train(self, steps: int, path: Path | None, bar: Bar | None = None) -> None:
        """Run to ``steps``, resuming from ``path`` and checkpointing into it (also at the end)."""
        if path is not None and path.is_file():
            self.load(path)
            if bar is not None:
                bar.update(min(self.step_done, steps))
        while self.step_done < steps:
            losses = self.step()
            if self.step_done % 10 == 0:
                self.history.append({"step": self.step_done, **losses})
            if path is not None and (self.step_done % self.config.checkpoint_every == 0
                                     or self.step_done == steps):
                self.save(path)
            if bar is not None:
                bar.update(1)


def weighted_set(weights: torch.Tensor, config: OptimizeConfig) -> list[int]:
    """Dimensions with ``|g| >= set_threshold · max |g|``, largest first, at most max_set_size."""
    magnitude = weights.abs()
    order = torch.argsort(-magnitude, stable=True)
    keep = [int(i) for i in order if magnitude[i] >= config.set_threshold * magnitude.max()]
    return keep[: config.max_set_size] or [int(order[0])]


@register_method(
    "corr-optimize",
    description="correlation analysis B (Li et al. 2020): a sparse weighting of latent "
    "dimensions optimised to change a classifier's concept most",
    kind="directions",
    config_cls=OptimizeConfig,
    profiles={"quick": {"concepts": ("shape",), "pool_size": 512, "num_codes": 64,
                        "steps": 60, "opt_batch_size": 8, "max_set_size": 16,
                        "direction_samples": 256, "batch_size": 128, "checkpoint_every": 20}},
    requires=("generator", "predictor"),
    load_output=Directions.load,
    resumable=True,
    default=False,
)
def run_optimize(bundle: Bundle, config: OptimizeConfig, seed: int,
                 progress: BarFactory | None = None,
                 checkpoint_dir: Path | None = None) -> Directions:
    latent, pool, concepts, members, skipped = setup(bundle, config, seed)
    bar = open_bar(progress, config.steps * len(concepts), "corr-optimize: weightings")
    records, vectors = [], []
    for k, concept in enumerate(concepts):
        rows = members[concept]
        trainer = ConceptOptimizer(latent, pool.codes[rows],
                                   pool.probs[concept.factor][rows, concept.cls], pool.scale,
                                   concept, config,
                                   (seed + stable_int(f"corr-optimize/{concept.name}")) % (1 << 63))
        path = None if checkpoint_dir is None else Path(checkpoint_dir) / f"concept-{k:03d}.pt"
        trainer.train(config.steps, path, bar)
        g = trainer.weights()
        dims = weighted_set(g, config)
        mask = torch.zeros(latent.dim)
        mask[dims] = 1.0
        vector = config.kappa * pool.scale * g * mask
        if float(vector @ mean_difference(pool, concept)) < 0:
            vector = -vector  # the perturbation's sign that leads into the concept
        vectors.append(to_w_direction(latent, pool, vector, config.direction_samples))
        records.append(concept_record(
            concept, dims, g.abs(), len(rows), weights=g.tolist(),
            final_change=trainer.history[-1]["change"] if trainer.history else None,
            **translation(latent, pool, concept, dims, config.num_codes)))
    bar.close()
    return finish("corr-optimize", config, seed, latent, pool, records, vectors, skipped,
                  "the learned perturbation kappa * sigma * g restricted to the controlling set")
