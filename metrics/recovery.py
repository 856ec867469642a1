"""Direction recovery: how well found directions match known factor directions, beside chance.

On a generator that knows its factor directions (``true_directions``: the oracle bundles), the
recovery of a set of k found directions is the mean over factors of the best |cos| between the
factor's true direction and one of the k found ones. It is read in two spaces:

- **W** (``direction_recovery``): a found W+ direction is read as its net W edit, the sum of its
  rows (a plain W direction broadcast to every row reads as itself); the true direction is q_j.
- **W+** (``direction_recovery_wplus``, only where the generator is layered, ``num_ws`` > 1):
  the true direction of factor j is its exact edit, q_j on its home row (``factor_layers``) and
  zero elsewhere, and the found direction is the whole flattened W+ tensor, so a direction
  broadcast to all L rows reaches at most 1/sqrt(L) and only a row-selective one reaches 1.

Chance level: the same statistic for k isotropic random unit directions in the same space
(W, or the whole of W+), over ``RANDOM_DRAWS`` draws from a generator the caller seeds; its
median and 95th percentile are recorded beside the score. The discovery metrics' R matrix does
not give this reading: on the one-row oracle random directions reach a disentanglement score
level with or above methods that recover the factors far better (docs/discovery.md).

``RECOVERY_VERSION`` is recorded with every score; bump it when what is computed changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RECOVERY_VERSION = 1
RANDOM_DRAWS = 1000  # draws of k random directions per space: the reference's sample
REFERENCE_QUANTILE = 0.95
W_KEY = "direction_recovery"
WPLUS_KEY = "direction_recovery_wplus"


def best_cos(found: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per true direction (rows of ``true`` [F, D]), the best |cos| with a row of ``found``
    [..., k, D] (leading axes are kept: [..., F]). A zero found row matches nothing (cos 0)."""
    found = np.asarray(found, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    norms = np.linalg.norm(found, axis=-1, keepdims=True)
    unit = np.divide(found, norms, out=np.zeros_like(found), where=norms > 0)
    true_unit = true / np.linalg.norm(true, axis=-1, keepdims=True)
    return np.abs(unit @ true_unit.T).max(axis=-2)


def exact_wplus(true: np.ndarray, homes: Sequence[int], num_ws: int) -> np.ndarray:
    """The true W+ edits [F, num_ws * w_dim]: factor j's direction on its home row only."""
    true = np.asarray(true, dtype=np.float64)
    plus = np.zeros((true.shape[0], num_ws, true.shape[1]))
    plus[np.arange(true.shape[0]), np.asarray(homes, dtype=int)] = true
    return plus.reshape(true.shape[0], -1)


@dataclass(frozen=True)
class Recovery:
    """One space's reading: the score, its per-factor best |cos| and the random reference."""

    score: float
    per_factor: list[float]
    random_median: float
    random_p95: float

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "per_factor": self.per_factor,
                "random_median": self.random_median, "random_p95": self.random_p95}


def _reading(found: np.ndarray, true: np.ndarray, rng: np.random.Generator) -> Recovery:
    per_factor = best_cos(found, true)
    draws = rng.standard_normal((RANDOM_DRAWS, found.shape[0], found.shape[1]))
    random_scores = best_cos(draws, true).mean(axis=-1)
    return Recovery(float(per_factor.mean()), [float(x) for x in per_factor],
                    float(np.median(random_scores)),
                    float(np.quantile(random_scores, REFERENCE_QUANTILE)))


def direction_recovery(
    vectors: np.ndarray, true: np.ndarray, homes: Sequence[int] | None,
    rng: np.random.Generator,
) -> dict[str, Recovery]:
    """The W reading (``"w"``) of the found W+ directions ``vectors`` [k, num_ws, w_dim]
    against the true W directions ``true`` [F, w_dim], and, where ``num_ws`` > 1, the W+
    reading (``"wplus"``) against each factor's direction on its home row ``homes[j]``. The
    random references are drawn from ``rng`` (W first, then W+), so a seed fixes them."""
    vectors = np.asarray(vectors, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if vectors.ndim != 3 or vectors.shape[0] == 0 or true.ndim != 2 \
            or vectors.shape[2] != true.shape[1]:
        raise ValueError(f"direction_recovery: expected found directions [k, num_ws, w_dim] "
                         f"and true directions [F, w_dim] of one w_dim, got "
                         f"{vectors.shape} and {true.shape}")
    out = {"w": _reading(vectors.sum(axis=1), true, rng)}
    num_ws = vectors.shape[1]
    if num_ws > 1:
        if homes is None or len(homes) != true.shape[0]:
            raise ValueError(f"direction_recovery: a layered generator ({num_ws} W+ rows) needs "
                             f"one home row per factor, got {homes}")
        out["wplus"] = _reading(vectors.reshape(vectors.shape[0], -1),
                                exact_wplus(true, homes, num_ws), rng)
    return out

