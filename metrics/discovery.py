"""Discovery metrics (ContraFeat's FFHQ protocol) on a direction-by-attribute matrix R.

Pure core: ``discovery_scores(R)``. Each row r_j says how much editing along direction j changes
each attribute; rows are normalised to max 1 (a zero row, a direction that changes nothing,
stays all-zero: it scores 0 and names no attribute).
- disentanglement score = mean over rows of (largest - second largest normalised entry);
- attribute count = number of distinct attributes that are some (non-zero) row's argmax.
  (The reference notebook counts every column equal to 1.0, so exact ties count twice there;
  with float-valued predictions ties do not occur in practice.)

Thin sampler: ``score_matrix`` edits a fixed, seeded latent bank along each direction by ±s
(s = ``Directions.scale``), runs a predictor on both images and averages the attribute change.
An attribute is one output group of the predictor: a group of width 1 is a scalar score, whose
change is the absolute difference; a group of width c > 1 is a probability vector over c classes
(e.g. one 3DShapes factor), whose change is the total variation distance 0.5 * sum_c |p+ - p-|.
Two rows per direction are produced:
- ``absdiff`` (the paper's text, our primary): mean over samples of the per-sample change;
- ``meandiff`` (the reference code): the change of the sample-mean outputs, |mean(p+ - p-)|
  (total variation of the mean difference for probability groups).

Edit-scale protocol (``calibrate_scales``), one rule for every method: per direction, s is chosen
by safeguarded secant steps in log-log space (bisection of the bracket when a step leaves it) so
that the mean absolute pixel difference between G(w ± s d) and G(w) (averaged over both signs,
images in [-1, 1]) is within ``tolerance`` (relative) of a fixed target on a small seeded
calibration bank; s is capped so that no W+ row moves further than ``max_displacement`` times the
RMS spread of W (sqrt(E||w - mean w||²), untruncated). Assumes the pixel change grows with s,
which holds for the small edits targeted here; when the search runs out of evaluations the
closest s tried is kept (its achieved change is recorded).

Fixed edit scale (``fixed_scales``), the reference notebooks' rule: every direction is edited by
w ± e · d / rms(d), e the same number for all, rms(d) the root mean square of the direction's
entries on its largest W+ row (ContraFeat's navigator normalises each W direction to unit second
moment, ``normalize_2nd_moment``, before ``evaluate_model`` adds ``var_scale`` times it). The
pixel change this gives on the calibration bank and the W+ displacement are recorded as for the
calibrated scale; nothing is capped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Generator as Coroutine
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from core.progress import Bar
from models.directions import Directions
from models.generator import Generator
from models.sampling import latent_bank, map_z, synthesize

Predict = Callable[[torch.Tensor], Sequence[np.ndarray]]
"""NCHW float images in [-1, 1] -> one array (n, c_a) per attribute (c_a = 1: scalar)."""


# --------------------------------------------------------------------------------------------
# Pure core


def normalise_rows(r: np.ndarray) -> np.ndarray:
    """Each row divided by its maximum; all-zero rows stay zero. Rejects negatives and NaN."""
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] == 0 or r.shape[1] == 0:
        raise ValueError(f"R must be 2-D [directions, attributes], non-empty; got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("R contains NaN or inf")
    if np.any(r < 0):
        raise ValueError("R must be non-negative (it holds magnitudes of attribute changes)")
    top = r.max(axis=1, keepdims=True)
    return np.divide(r, top, out=np.zeros_like(r), where=top > 0)


def discovery_scores(r: np.ndarray) -> dict[str, float]:
    """Disentanglement score and attribute count of R ``[k, A]`` (A >= 2)."""
    normed = normalise_rows(r)
    if normed.shape[1] < 2:
        raise ValueError(f"R needs at least 2 attribute columns, got {normed.shape[1]}")
    ordered = np.sort(normed, axis=1)
    gaps = ordered[:, -1] - ordered[:, -2]
    alive = normed.max(axis=1) > 0
    winners = set(np.argmax(normed[alive], axis=1).tolist())
    return {"disentanglement_score": float(gaps.mean()), "attribute_count": float(len(winners))}


def attribute_changes(
    plus: Sequence[np.ndarray], minus: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample attribute changes ``(n, A)`` and signed output differences ``(n, sum c_a)``."""
    if len(plus) != len(minus) or not plus:
        raise ValueError("predictor outputs of the two edits must be non-empty and aligned")
    changes, diffs = [], []
    for p, m in zip(plus, minus, strict=True):
        d = _as_2d(p) - _as_2d(m)
        diffs.append(d)
        changes.append(np.abs(d[:, 0]) if d.shape[1] == 1 else 0.5 * np.abs(d).sum(axis=1))
    return np.stack(changes, axis=1), np.concatenate(diffs, axis=1)


def group_change(mean_diff: np.ndarray, widths: Sequence[int]) -> np.ndarray:
    """Attribute change of the mean difference (the ``meandiff`` row) from concatenated groups."""
    out, start = [], 0
    for c in widths:
        block = mean_diff[start : start + c]
        out.append(abs(block[0]) if c == 1 else 0.5 * np.abs(block).sum())
        start += c
    return np.asarray(out, dtype=np.float64)


def _advance(progress: Bar | None, amount: int) -> None:
    """Advance an optional bar (anything with ``update(n)``, e.g. tqdm) by one direction."""
    if progress is not None:
        progress.update(amount)


def _as_2d(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


# --------------------------------------------------------------------------------------------
# Sampler


@dataclass(frozen=True)
class DiscoveryConfig:
    """Paper settings: 500 latents, ψ = 0.5 (the notebook's ``evaluate_model`` default), 30 rows."""

    num_samples: int = 500
    truncation_psi: float = 0.5
    num_directions: int = 30
    batch_size: int = 50
    bank_seed: int = 20_231_123


@dataclass(frozen=True)
class CalibrationConfig:
    """Edit-scale protocol: pixel-change target in [-1, 1] units, W+ displacement cap."""

    # 0.04 (2% of the [-1, 1] range, averaged over the whole image): visible on every factor of
    # the 3DShapes oracle, where object-only factors (scale, shape) saturate near 0.06.
    target_pixel_change: float = 0.04
    num_samples: int = 16
    truncation_psi: float = 0.5
    max_displacement: float = 2.0  # per W+ row, in units of the RMS spread of W
    tolerance: float = 0.02  # relative
    max_evaluations: int = 10  # per direction
    spread_samples: int = 2000
    batch_size: int = 64
    bank_seed: int = 1_234


@torch.no_grad()
def w_spread(generator: Generator, num: int, seed: int) -> float:
    """RMS distance of untruncated w from their mean: sqrt(E||w - mean w||²)."""
    w = map_z(generator, num, seed, 1.0, 1000).double()
    return float((w - w.mean(0)).pow(2).sum(1).mean().sqrt())


@torch.no_grad()
def pixel_changes(
    generator: Generator, base_ws: torch.Tensor, base_images: torch.Tensor, deltas: torch.Tensor,
    batch: int,
) -> np.ndarray:
    """Per edit m: mean |G(w ± deltas[m]) - G(w)| over both signs, samples, pixels, channels.

    ``deltas`` is ``[m, num_ws, w_dim]``; all 2·m·n edited codes go through the generator in
    chunks of ``batch`` (one call for many directions, never all images in memory).
    """
    m, n = deltas.shape[0], base_ws.shape[0]
    signs = torch.tensor([1.0, -1.0], dtype=base_ws.dtype)
    total = torch.zeros(m, dtype=torch.float64)
    count = 2 * m * n
    for start in range(0, count, batch):
        idx = torch.arange(start, min(start + batch, count))
        edit, sign, sample = idx // (2 * n), (idx // n) % 2, idx % n
        ws = base_ws[sample] + signs[sign, None, None] * deltas[edit]
        images = synthesize(generator, ws, batch)
        err = (images - base_images[sample]).abs().flatten(1).mean(1).double()
        total.index_add_(0, edit, err)
    return (total / (2 * n)).numpy()


@torch.no_grad()
def calibrate_scales(
    generator: Generator, directions: Directions, config: CalibrationConfig,
    progress: Bar | None = None,
) -> Directions:
    """``directions`` with ``scale`` set by the edit-scale protocol (see module docstring).

    The method's own scale is kept in ``meta['native_scale']``; the protocol, the achieved pixel
    change, the W+ displacement and which directions hit the cap go to ``meta['calibration']``.
    """
    if config.target_pixel_change <= 0:
        raise ValueError(f"target_pixel_change must be > 0, got {config.target_pixel_change}")
    spread = w_spread(generator, config.spread_samples, config.bank_seed + 1)
    ws = latent_bank(generator, config.num_samples, config.bank_seed, config.truncation_psi)
    base = synthesize(generator, ws, config.batch_size)
    k = directions.num_directions
    if k == 0:
        raise ValueError("no directions to calibrate")
    row_norm = directions.vectors.norm(dim=2).amax(dim=1).double()  # [k]
    if torch.any(row_norm == 0):
        raise ValueError("a direction is all-zero; cannot calibrate its edit scale")
    cap = config.max_displacement * spread / row_norm  # largest allowed s per direction
    target = config.target_pixel_change

    # one search per direction, run in lockstep so each round is one batched generator pass
    searches = [_scale_search(target, float(cap[j]), config) for j in range(k)]
    pending = {j: next(search) for j, search in enumerate(searches)}
    results: dict[int, tuple[float, float, bool, int]] = {}
    while pending:
        order = sorted(pending)
        deltas = torch.stack([pending[j] * directions.vectors[j] for j in order]).to(ws.dtype)
        changes = pixel_changes(generator, ws, base, deltas, config.batch_size)
        for j, f in zip(order, changes, strict=True):
            try:
                pending[j] = searches[j].send(float(f))
            except StopIteration as done:
                results[j] = done.value
                del pending[j]
                _advance(progress, 1)
    scales, achieved, capped, evaluations = (list(v) for v in zip(*(results[j]
                                                                     for j in range(k)),
                                                                  strict=True))
    scale = torch.tensor(scales, dtype=torch.float32)
    displacement = (scale.double() * directions.vectors.flatten(1).norm(dim=1).double()).tolist()
    calibration = {
        "protocol": "pixel-change target, safeguarded log-log secant, W+ row displacement cap",
        "config": asdict(config),
        "w_spread": spread,
        "achieved_pixel_change": achieved,
        "capped": capped,
        "evaluations": evaluations,
        "w_plus_displacement": displacement,
        "mean_w_plus_displacement": float(np.mean(displacement)),
    }
    return directions.with_scale(
        scale, native_scale=directions.scale.tolist(), calibration=calibration
    )


@torch.no_grad()
def fixed_scales(
    generator: Generator, directions: Directions, edit_scale: float, config: CalibrationConfig,
    progress: Bar | None = None,
) -> Directions:
    """``directions`` with ``scale`` set by the fixed-edit rule (module docstring): s_j =
    ``edit_scale`` / rms of direction j's largest W+ row. The achieved pixel change (on the
    calibration bank of ``config``) and the W+ displacement go to ``meta['calibration']`` as
    ``calibrate_scales`` records them, so both rules report the same edit-size keys."""
    if not edit_scale > 0:
        raise ValueError(f"edit_scale must be > 0, got {edit_scale}")
    k = directions.num_directions
    if k == 0:
        raise ValueError("no directions to scale")
    row_rms = directions.vectors.double().pow(2).mean(dim=2).sqrt().amax(dim=1)  # [k]
    if torch.any(row_rms == 0):
        raise ValueError("a direction is all-zero; cannot scale its edit")
    scale = (edit_scale / row_rms).float()
    spread = w_spread(generator, config.spread_samples, config.bank_seed + 1)
    ws = latent_bank(generator, config.num_samples, config.bank_seed, config.truncation_psi)
    base = synthesize(generator, ws, config.batch_size)
    deltas = (scale[:, None, None] * directions.vectors).to(ws.dtype)
    achieved = pixel_changes(generator, ws, base, deltas, config.batch_size).tolist()
    _advance(progress, k)
    displacement = (scale.double() * directions.vectors.flatten(1).norm(dim=1).double()).tolist()
    calibration = {
        "protocol": "fixed edit scale: w +/- edit_scale * d / rms(d), rms over the largest "
                    "W+ row",
        "edit_scale": float(edit_scale),
        "config": asdict(config),
        "w_spread": spread,
        "achieved_pixel_change": achieved,
        "capped": [False] * k,
        "evaluations": [1] * k,
        "w_plus_displacement": displacement,
        "mean_w_plus_displacement": float(np.mean(displacement)),
    }
    return directions.with_scale(
        scale, native_scale=directions.scale.tolist(), calibration=calibration
    )


def _scale_search(
    target: float, cap: float, config: CalibrationConfig
) -> Coroutine[float, float, tuple[float, float, bool, int]]:
    """Coroutine solving change(s) = target for s in (0, cap]: yields s, is sent change(s);
    returns (s, achieved change, capped, evaluations).

    Keeps a bracket: ``lo`` (largest s seen below target, 0 if none) and ``hi`` (smallest s seen
    at or above target, None if none). Every s tried lies inside the bracket, so the last point
    is one of its ends: from below the target the secant proposes a larger s, from above a
    smaller one. While ``hi`` is None the proposal is therefore always above ``lo`` (and clipped
    to the cap); once both ends exist, a proposal outside (lo, hi) is replaced by their geometric
    mean (lo > 0 then: with no point below the target, the last point is ``hi`` and the proposal
    falls below it).
    """
    lo, hi = 0.0, None
    s = cap / 16
    history: list[tuple[float, float]] = []
    for count in range(1, config.max_evaluations + 1):
        f = yield s
        history.append((s, f))
        if abs(f / target - 1.0) <= config.tolerance:
            return s, f, False, count
        if f < target:
            if s >= cap:
                return cap, f, True, count
            lo = s
        else:
            hi = s
        proposal = _secant_proposal(history, target)
        if hi is not None and not lo < proposal < hi:
            proposal = float(np.sqrt(lo * hi))
        s = min(proposal, cap)
    # a point at the cap below the target returned above, so the best point is never capped
    s_best, f_best = min(history, key=lambda sf: abs(sf[1] - target))
    return s_best, f_best, False, config.max_evaluations


def _secant_proposal(history: list[tuple[float, float]], target: float) -> float:
    """Next s from the last one or two (s, change) points, assuming change ~ a * s**p."""
    s1, f1 = history[-1]
    if f1 <= 0:
        return s1 * 16
    power = 1.0
    if len(history) >= 2:
        s0, f0 = history[-2]
        if f0 > 0 and s0 != s1:
            slope = (np.log(f1) - np.log(f0)) / (np.log(s1) - np.log(s0))
            if np.isfinite(slope) and 0.2 <= slope <= 5.0:
                power = float(slope)
    return float(s1 * (target / f1) ** (1.0 / power))


@torch.no_grad()
def score_matrix(
    generator: Generator,
    directions: Directions,
    predict: Predict,
    config: DiscoveryConfig,
    progress: Bar | None = None,
) -> dict[str, np.ndarray]:
    """R rows for the first ``config.num_directions`` directions, both variants.

    Returns ``{"absdiff": [k, A], "meandiff": [k, A]}`` (float64).
    """
    k = min(config.num_directions, directions.num_directions)
    if k <= 0:
        raise ValueError("no directions to score")
    bank = latent_bank(generator, config.num_samples, config.bank_seed, config.truncation_psi)
    n = bank.shape[0]
    rows_abs, rows_mean = [], []
    for j in range(k):
        delta = (directions.scale[j] * directions.vectors[j]).to(bank.dtype)
        change_sum, diff_sum, widths = None, None, None
        for start in range(0, n, config.batch_size):
            ws = bank[start : start + config.batch_size]
            plus = predict(synthesize(generator, ws + delta, config.batch_size))
            minus = predict(synthesize(generator, ws - delta, config.batch_size))
            changes, diffs = attribute_changes(plus, minus)
            if widths is None:
                widths = [_as_2d(p).shape[1] for p in plus]
                change_sum, diff_sum = changes.sum(0), diffs.sum(0)
            else:
                change_sum, diff_sum = change_sum + changes.sum(0), diff_sum + diffs.sum(0)
        rows_abs.append(change_sum / n)
        rows_mean.append(group_change(diff_sum / n, widths))
        _advance(progress, 1)
    return {"absdiff": np.stack(rows_abs), "meandiff": np.stack(rows_mean)}


def discovery_metrics(matrices: dict[str, np.ndarray]) -> dict[str, float]:
    """Score keys for both R variants: the primary (absdiff) and ``*_meandiff``."""
    out = discovery_scores(matrices["absdiff"])
    ref = discovery_scores(matrices["meandiff"])
    out["disentanglement_score_meandiff"] = ref["disentanglement_score"]
    out["attribute_count_meandiff"] = ref["attribute_count"]
    return out
