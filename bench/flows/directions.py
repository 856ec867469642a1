"""The directions flow: discover -> calibrate -> discovery metrics -> pairs -> group VAE ->
representation metrics -> figures, each stage cached by ``CellContext.stage``.

- "discover": the method's ``run(bundle, config, seed)`` -> Directions (saved/loaded).
- "calibrate": the first ``discovery.num_directions`` directions get their edit scale from the
  common pixel-change protocol (``metrics.discovery.calibrate_scales``), or, when the settings
  name an ``edit_scale``, from the reference notebooks' fixed edit (``fixed_scales``).
- "discovery-metrics": R matrices (both variants) from the bundle's attribute predictor; skipped
  when the bundle has none. R is copied into the cell's artifacts (``R_absdiff.npy``,
  ``R_meandiff.npy``, ``R.json``).
- "pairs": duplicates removed (|cos| > threshold), pair HDF5 written in the stage folder.
- "group-vae": ``distill.group_vae.train_group_vae`` with one latent per kept direction.
- "representation-metrics": on ``bundle.ground_truth`` with the distilled encoder; stages
  "pairs" to "representation-metrics" are skipped when the bundle has no ground truth (FFHQ).
- figures (not cached, cheap): traversal grid and R heatmap PNGs in the cell's artifacts; for
  correlation analysis (``meta["correlation"]``) also the sensitivity bars and the
  class-to-class translation grid.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

import metrics.sampling
from bench.flows.base import StepProgress, register_flow, score_encoder
from bench.flows.figures import (
    save_r_heatmap,
    save_sensitivity_bars,
    save_translation_grid,
    save_traversal_grid,
)
from bench.results.context import CellContext
from core.config import replace_fields, resolve_config
from core.errors import BenchError
from distill import group_vae
from distill.pairs import DEFAULT_DEDUP_THRESHOLD, deduplicate, make_pairs
from methods.base import method_spec
from metrics import recovery
from metrics.discovery import (
    CalibrationConfig,
    DiscoveryConfig,
    calibrate_scales,
    discovery_metrics,
    fixed_scales,
    normalise_rows,
    score_matrix,
)
from metrics.recovery import direction_recovery
from metrics.registry import ScoreKey
from models.bundle import MetricsProvider
from models.directions import Directions
from models.generator import Generator

T = TypeVar("T")

STAGE_VERSIONS: dict[str, int] = {
    "discover": 1,
    "calibrate": 1,
    "discovery-metrics": 1,
    "pairs": 1,
    "group-vae": 1,
    "representation-metrics": 1,
}


@dataclass(frozen=True)
class DirectionsFlowSettings:
    """Everything besides the method config that fixes a directions cell's numbers."""

    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    num_pairs: int = 240_000  # the reference pair script's default
    pair_batch: int = 1000
    pair_truncation_psi: float = 1.0  # reference: no truncation
    # pairs are w -/+ t * multiplier * calibrated scale * d: the discovery metrics' edit size
    # times a common factor, the same for every method (see docs/distillation.md)
    pair_edit_multiplier: float = 1.0
    pair_edit_sampling: str = "fixed"
    dedup_threshold: float = DEFAULT_DEDUP_THRESHOLD
    traversal_rows: int = 10
    traversal_steps: int = 7
    traversal_span: float = 2.0  # largest |amount|, in calibrated-scale units
    traversal_seeds: int = 3
    # None: the edit scale is calibrated per direction (``calibration``); a number e: every
    # direction is edited by w +/- e * d / rms(d), the reference notebooks' fixed scale
    # (``metrics.discovery.fixed_scales``; e.g. the ffhq bundle's protocol)
    edit_scale: float | None = None


@dataclass(frozen=True)
class PairSettings:
    """What fixes a cell's image pairs: ``make_pairs``'s keyword arguments, and with the
    calibration's key the pairs stage's key (the same names, so written once)."""

    num_pairs: int
    seed: int
    batch: int
    truncation_psi: float
    keep: list[int]  # the directions left after removing near-duplicates
    edit_multiplier: float
    edit_sampling: str


# Fields added after results were stored: they enter the metric settings (the cell id) and the
# stage keys only when set, so that the ids of results stored before them stay what they were.
LATER_FIELDS = ("edit_scale",)


def settings_identity(settings: DirectionsFlowSettings) -> dict[str, Any]:
    """``asdict(settings)`` without the ``LATER_FIELDS`` left unset (None)."""
    out = asdict(settings)
    for name in LATER_FIELDS:
        if out.get(name) is None:
            del out[name]
    return out


# The result.json block of the direction-recovery score and the name its random reference's
# generator is derived from (``CellContext.rng``: SeedSequence([cell seed, stable_int(name)])).
RECOVERY_RECORD = "direction_recovery"
RECOVERY_RNG = "direction-recovery"

# The score keys this flow computes itself (the representation metrics' are the registered
# metrics'): the discovery scores of metrics.discovery, the edit size, the pair count and, on
# bundles that know their factor directions, direction recovery (metrics.recovery).
FLOW_KEYS = (
    ScoreKey("disentanglement_score",
             "Discovery: mean of (largest - second largest) per direction", headline=True),
    ScoreKey("attribute_count", "Discovery: attributes that are some direction's argmax",
             high=float("inf"), tolerance=1.0, headline=True),
    ScoreKey("disentanglement_score_meandiff",
             "Discovery, reference-code variant: score of R built from |mean difference|"),
    ScoreKey("attribute_count_meandiff",
             "Discovery, reference-code variant: attribute count of the |mean difference| R",
             high=float("inf"), tolerance=1.0),
    ScoreKey("edit_w_plus_displacement",
             "Mean W+ L2 displacement of the calibrated edit (common edit-size unit; not a "
             "score)", higher_is_better=False, high=float("inf"), tolerance=float("inf")),
    ScoreKey("edit_capped_fraction",
             "Fraction of directions whose calibrated edit hit the W+ displacement cap "
             "(they change the image less than the target)",
             higher_is_better=False, tolerance=0.2),
    ScoreKey("pairs_kept_fraction",
             "Fraction of scored directions kept after removing near-duplicates (|cos| above "
             "the configured dedup_threshold, "
             f"{DirectionsFlowSettings.dedup_threshold:g} by default; a cell's own is "
             "directions_flow.dedup_threshold in its metric settings)", tolerance=0.2),
    ScoreKey(recovery.W_KEY,
             "Direction recovery in W: mean over true factor directions of the best |cos| with "
             "a found direction's net W edit (oracle bundles; random reference in result.json)",
             tolerance=0.05),
    ScoreKey(recovery.WPLUS_KEY,
             "Direction recovery in W+: mean over factors of the best |cos| between the "
             "factor's exact edit (its direction on its home row) and a found W+ direction "
             "(layered oracle)", tolerance=0.05),
)

# Overrides of the paper defaults per profile (core.config); quick is sized for 2 CPU cores.
FLOW_PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "discovery": DiscoveryConfig(num_samples=64, num_directions=10, batch_size=64),
        "calibration": CalibrationConfig(num_samples=8, spread_samples=1000),
        "num_pairs": 2000,
        "pair_batch": 250,
        "traversal_rows": 10,
        "traversal_steps": 5,
        "traversal_seeds": 2,
        # pairs differ by 4 calibrated steps on each side: the discovery protocol's single step
        # is too subtle for a short-trained group VAE (docs/distillation.md)
        "pair_edit_multiplier": 4.0,
    },
}


def flow_settings(profile: str, protocol: Mapping[str, Any] | None = None
                  ) -> DirectionsFlowSettings:
    """The settings of ``profile`` (``FLOW_PROFILES`` over the paper defaults), then the
    dataset's own values for that profile (``Bundle.protocol[profile]``, e.g. ffhq's paper
    protocol): fields replaced, a mapping for ``discovery`` / ``calibration`` replacing only
    the sub-fields it names."""
    settings = resolve_config(DirectionsFlowSettings, FLOW_PROFILES, profile)
    return replace_fields(settings, protocol) if protocol else settings


# -- the group-VAE and representation-metric collaborators ------------------------------------


def metric_settings(profile: str, protocol: Mapping[str, Any] | None = None,
                    provider: MetricsProvider = metrics.sampling) -> dict[str, Any]:
    """Settings that enter the cell id: flow sizes (with the dataset's ``protocol`` for this
    profile, if it has one), group-VAE config, the representation metrics of ``provider``."""
    return {"directions_flow": settings_identity(flow_settings(profile, protocol)),
            "group_vae": asdict(group_vae.group_vae_config(profile)),
            "representation": dict(provider.metric_settings(profile))}


# -- predictor adapter ------------------------------------------------------------------------


def attribute_predict(predictor: Any) -> tuple[Any, list[str]]:
    """(predict: images NCHW [-1, 1] -> list of (n, c) arrays, attribute names).

    A predictor with ``predict_proba`` (the 3DShapes factor classifier) gives one probability
    group per factor; one with ``attributes(images) -> (n, A)`` gives A scalar attributes.
    """
    if hasattr(predictor, "predict_proba"):
        names = list(getattr(predictor, "factor_names", []))

        @torch.no_grad()
        def predict(images: torch.Tensor) -> list[np.ndarray]:
            return [p.detach().float().cpu().numpy() for p in predictor.predict_proba(images)]

    elif hasattr(predictor, "attributes"):
        names = list(getattr(predictor, "attribute_names", []))

        @torch.no_grad()
        def predict(images: torch.Tensor) -> list[np.ndarray]:
            scores = predictor.attributes(images)
            scores = scores.detach().float().cpu().numpy() if torch.is_tensor(scores) else scores
            return [np.asarray(scores)[:, i] for i in range(np.asarray(scores).shape[1])]

    else:
        raise BenchError(
            f"attribute predictor {type(predictor).__name__} has neither predict_proba(images) "
            "nor attributes(images)"
        )
    return predict, names


# -- the flow -----------------------------------------------------------------------------------


@register_flow("directions", description="discover directions in a generator, score them, "
               "distil them into an encoder and score that", stage_versions=STAGE_VERSIONS,
               metric_settings=metric_settings, keys=FLOW_KEYS)
def run_directions_flow(ctx: CellContext) -> dict[str, float]:
    """Run (or load from cache) every stage of one directions cell; return its metrics."""
    settings = flow_settings(ctx.profile, ctx.bundle.protocol.get(ctx.profile))
    bundle = ctx.bundle
    generator = flow_generator(ctx)
    directions = scored_directions(ctx, generator, settings)
    calibration = directions.meta["calibration"]
    metrics: dict[str, float] = {
        "edit_w_plus_displacement": float(calibration["mean_w_plus_displacement"]),
        "edit_capped_fraction": float(np.mean(calibration["capped"])),
    }
    scored = directions.num_directions
    names = list(directions.meta.get("names") or [f"d{j}" for j in range(scored)])[:scored]

    r_matrices: dict[str, np.ndarray] | None = None
    attribute_names: list[str] = []
    if "predictor" in bundle.provides():
        r_matrices, attribute_names, scores = discovery_stage(ctx, generator, directions,
                                                              settings)
        metrics.update(scores)

    if bundle.ground_truth is not None:
        metrics.update(_distillation_stages(ctx, generator, directions, settings))

    _figures(ctx, generator, directions, names, r_matrices, attribute_names, settings)
    recovered = recovery_scores(ctx, directions)
    if recovered is not None:
        scores, record = recovered
        metrics.update(scores)
        ctx.records[RECOVERY_RECORD] = record
    return metrics


def flow_generator(ctx: CellContext) -> Generator:
    """The bundle's generator, frozen (a BenchError where the bundle has none)."""
    if "generator" not in ctx.bundle.provides():
        raise BenchError(f"dataset {ctx.bundle.name!r} has no generator; method "
                         f"{ctx.cell.method!r} needs one")
    generator = ctx.bundle.generator
    if hasattr(generator, "requires_grad_"):
        generator.requires_grad_(False)
    return generator


def recovery_scores(ctx: CellContext, directions: Directions
                    ) -> tuple[dict[str, float], dict[str, Any]] | None:
    """Direction recovery of the scored ``directions`` on a bundle that knows its factor
    directions (capability ``true_directions``; None elsewhere): the score keys for the metrics
    and the ``direction_recovery`` record of result.json (version, per-factor values, random
    reference). Cheap and deterministic: the reference's draws come from
    ``ctx.rng(RECOVERY_RNG)``, i.e. from the cell seed, so a rescored cell gets the same."""
    if "true_directions" not in ctx.bundle.provides():
        return None
    generator = ctx.bundle.generator
    homes = getattr(generator, "factor_layers", None) if directions.num_ws > 1 else None
    readings = direction_recovery(directions.vectors.numpy(),
                                  generator.true_directions().detach().cpu().numpy(), homes,
                                  ctx.rng(RECOVERY_RNG))
    keys = {"w": recovery.W_KEY, "wplus": recovery.WPLUS_KEY}
    scores = {keys[space]: reading.score for space, reading in readings.items()}
    record = {"version": recovery.RECOVERY_VERSION, "directions": directions.num_directions,
              "random_draws": recovery.RANDOM_DRAWS,
              "reference_quantile": recovery.REFERENCE_QUANTILE,
              **{space: reading.as_dict() for space, reading in readings.items()}}
    return scores, record


def scored_directions(ctx: CellContext, generator: Generator,
                      settings: DirectionsFlowSettings) -> Directions:
    """Stages "discover" (the method's run, :func:`discover_stage`) and "calibrate" (edit
    scales of the first ``discovery.num_directions``): the scored directions every later stage
    uses."""
    method = ctx.cell.method
    found = discover_stage(ctx, method, method_spec(method).load_output or Directions.load)

    scored = min(settings.discovery.num_directions, found.num_directions)

    def calibrate(directory: Path) -> None:
        with ctx.progress(scored, f"{method}: calibrate edit scales") as bar:
            chosen = found.subset(range(scored))
            if settings.edit_scale is None:
                calibrated = calibrate_scales(generator, chosen, settings.calibration,
                                              progress=bar)
            else:
                calibrated = fixed_scales(generator, chosen, settings.edit_scale,
                                          settings.calibration, progress=bar)
        calibrated.save(directory)

    calibrate_inputs = {"discover": ctx.stage_keys["discover"],
                        "calibration": asdict(settings.calibration), "scored": scored}
    if settings.edit_scale is not None:  # a later field: absent from the keys made before it
        calibrate_inputs["edit_scale"] = settings.edit_scale
    return ctx.stage("calibrate", calibrate_inputs, calibrate, Directions.load)


def discover_stage(ctx: CellContext, method: str, load: Callable[[Path], T]) -> T:
    """Stage "discover": the directions method ``method``'s ``run`` on the cell's bundle,
    config and seed (with a checkpoint folder when it is resumable), saved, then read with
    ``load``. A representation method ``trained_by`` ``method`` (``MethodSpec.trained_by``)
    runs this same stage, with the same inputs, to read its encoder from the same folder: one
    training serves both cells."""
    spec, bundle = method_spec(method), ctx.bundle
    inputs = {"method": method, "config": asdict(ctx.config), "seed": ctx.seed,
              "dataset": bundle.identity}

    def discover(directory: Path) -> None:
        extra = ({"checkpoint_dir": ctx.work_dir("discover", inputs)}
                 if spec.resumable else {})
        directions = spec.run(bundle, ctx.config, ctx.seed, progress=ctx.progress, **extra)
        if not isinstance(directions, Directions):
            raise BenchError(f"method {method!r} returned {type(directions).__name__}, "
                             "expected Directions")
        directions.save(directory)

    return ctx.stage("discover", inputs, discover, load)


def discovery_stage(
    ctx: CellContext, generator: Generator, directions: Directions,
    settings: DirectionsFlowSettings,
) -> tuple[dict[str, np.ndarray], list[str], dict[str, float]]:
    """Stage "discovery-metrics": the R matrices of ``directions`` from the bundle's predictor,
    copied into the cell's artifacts (``R.json`` and the arrays); returns them, the attribute
    names and the discovery scores."""
    predict, attribute_names = attribute_predict(ctx.bundle.predictor)

    def compute(directory: Path) -> None:
        desc = f"{ctx.cell.method}: discovery metrics"
        with ctx.progress(directions.num_directions, desc) as bar:
            matrices = score_matrix(generator, directions, predict, settings.discovery, bar)
        for variant, r in matrices.items():
            np.save(directory / f"R_{variant}.npy", r)
        names = attribute_names or [f"a{i}" for i in range(matrices["absdiff"].shape[1])]
        info = {
            "attribute_names": names,
            "direction_names": directions.meta.get("names"),
            "R_absdiff": matrices["absdiff"].tolist(),
            "R_meandiff": matrices["meandiff"].tolist(),
            "scores": discovery_metrics(matrices),
            "discovery_config": asdict(settings.discovery),
        }
        (directory / "R.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    def load(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
        matrices = {v: np.load(directory / f"R_{v}.npy") for v in ("absdiff", "meandiff")}
        return matrices, json.loads((directory / "R.json").read_text()), directory

    matrices, info, folder = ctx.stage(
        "discovery-metrics",
        {"calibrate": ctx.stage_keys["calibrate"], "discovery": asdict(settings.discovery),
         "dataset": ctx.bundle.identity},
        compute, load)
    ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
    for name in ("R_absdiff.npy", "R_meandiff.npy", "R.json"):
        shutil.copyfile(folder / name, ctx.artifacts_dir / name)
        ctx.add_artifact("discovery", name, ctx.artifacts_dir / name)
    return matrices, list(info["attribute_names"]), {k: float(v) for k, v in
                                                     info["scores"].items()}


def _distillation_stages(
    ctx: CellContext, generator: Generator, directions: Directions,
    settings: DirectionsFlowSettings,
) -> dict[str, float]:
    pair = PairSettings(
        num_pairs=settings.num_pairs, seed=ctx.torch_seed("pairs"), batch=settings.pair_batch,
        truncation_psi=settings.pair_truncation_psi,
        keep=deduplicate(directions, settings.dedup_threshold),
        edit_multiplier=settings.pair_edit_multiplier, edit_sampling=settings.pair_edit_sampling)

    def pairs(directory: Path) -> None:
        with ctx.progress(pair.num_pairs, f"{ctx.cell.method}: pairs") as bar:
            summary = make_pairs(generator, directions, directory / "pairs.h5", **asdict(pair),
                                 progress=bar)
        summary["path"] = "pairs.h5"
        (directory / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))

    def load_pairs(directory: Path) -> tuple[Path, dict[str, Any]]:
        return directory / "pairs.h5", json.loads((directory / "summary.json").read_text())

    pair_path, summary = ctx.stage(
        "pairs",
        {"calibrate": ctx.stage_keys["calibrate"], **asdict(pair)}, pairs, load_pairs)
    num_latents = len(summary["kept_indices"])
    vae_config = group_vae.group_vae_config(ctx.profile)
    vae_seed = ctx.torch_seed("group-vae")

    def train(directory: Path) -> None:
        with StepProgress(ctx, f"{ctx.cell.method}: group VAE") as progress:
            encoder = group_vae.train_group_vae(pair_path, num_latents, vae_config, vae_seed,
                                                progress=progress)
        encoder.save(directory)

    encoder = ctx.stage(
        "group-vae",
        {"pairs": ctx.stage_keys["pairs"], "num_latents": num_latents,
         "config": asdict(vae_config), "seed": vae_seed},
        train, group_vae.load_encoder)
    out = score_encoder(ctx, encoder, "group-vae")
    out["pairs_kept_fraction"] = num_latents / directions.num_directions
    return out


def _figures(
    ctx: CellContext, generator: Generator, directions: Directions, names: list[str],
    r_matrices: dict[str, np.ndarray] | None, attribute_names: list[str],
    settings: DirectionsFlowSettings,
) -> None:
    title = f"{ctx.cell.method} on {ctx.bundle.name}, seed {ctx.seed} ({ctx.profile})"
    traversal = save_traversal_grid(
        generator, directions, ctx.artifacts_dir / "traversal.png", names=names, title=title,
        rows=settings.traversal_rows, steps=settings.traversal_steps,
        span=settings.traversal_span, num_seeds=settings.traversal_seeds,
        truncation_psi=settings.discovery.truncation_psi, seed=ctx.torch_seed("figures"),
        attention=(np.asarray(directions.meta["attention"])
                   if directions.meta.get("attention") is not None else None))
    ctx.add_artifact("figures", "traversal", traversal)
    if r_matrices is not None:
        heatmap = save_r_heatmap(normalise_rows(r_matrices["absdiff"]),
                                 ctx.artifacts_dir / "r_heatmap.png",
                                 attribute_names=attribute_names, direction_names=names,
                                 title=f"R (row-normalised): {title}")
        ctx.add_artifact("figures", "r_heatmap", heatmap)
    if "correlation" in directions.meta:  # correlation analysis: its own two figures
        bars = save_sensitivity_bars(directions.meta, ctx.artifacts_dir / "sensitivity.png",
                                     title=title)
        ctx.add_artifact("figures", "sensitivity", bars)
        grid = save_translation_grid(generator, directions.meta,
                                     ctx.artifacts_dir / "translation.png", title=title,
                                     seed=ctx.torch_seed("figures"))
        ctx.add_artifact("figures", "translation", grid)
