"""``shapes3d-oracle``: a generator whose latent-to-factor map is known exactly.

It implements the ``models.generator.Generator`` protocol on top of the differentiable
3DShapes look-alike renderer (``datasets.shapes3d_synth``), so direction-discovery pipelines can be
tested against ground-truth directions without training a GAN.

Latent spaces (all fixed by ``seed``):

* ``Q`` is a random orthogonal ``w_dim × w_dim`` matrix; its first 6 columns ``q_j`` are the
  ground-truth factor directions in W (``true_directions()``), in factor order
  (floor_hue, wall_hue, object_hue, scale, shape, orientation); the rest span nuisance space.
* ``mapping(z) = w_avg + Q · diag(σ) · P^T z`` with ``P`` a second random orthogonal matrix and
  ``z ~ N(0, I)``. So W is Gaussian with covariance ``Q diag(σ²) Q^T``: the factor directions have
  standard deviations ``factor_stds`` (default 3, 2.5, 2, 1.5, 1, 0.8, decreasing in factor
  order) and the nuisance directions ``nuisance_std`` (default 0.3). PCA of W (GANSpace) therefore
  returns ``q_0 … q_5`` as its first six components, in this order.
* ``axis_aligned=True`` replaces ``Q`` and ``P`` by seeded permutation matrices: factor j is then
  read from one W coordinate (``argmax |q_j|``) and driven by one z coordinate, so a method that
  looks for the latent dimensions controlling a factor (correlation analysis) has a known answer.
  ``w_avg`` is the same as without the option.
* The synthesis reads W through one affine ``[21, w_dim]`` (``style_affines()``): factor j owns
  ``6 − j`` identical unit-norm style channels ``q_j`` (6 for floor_hue … 1 for orientation), so
  the SeFa eigenvalues of the affine are 6, 5, …, 1, distinct and in the same order as the PCA
  variances. Nuisance directions are read by no channel: they do not change the image.
* Factor coordinate ``t_j = q_j·(w − w_avg) / σ_j`` is N(0, 1) under the mapping; the continuous
  factor index is ``c_j = n_j·Φ(t_j) − 1/2`` (Φ the normal CDF, n_j the factor's grid size), so
  each grid class (``round(c_j)``) is equally likely, like the uniform ground-truth grid.
  Hues: ``hue = c_j / 10`` (cyclic). Scale and orientation: bilinear interpolation of the
  renderer's coefficient maps at ``c_j`` (clamped to the grid's ends). Shape: soft weights
  ``softmax(−(c − k)² / shape_temperature)`` over the 4 shapes (a sharp but smooth blend).
  The image is ``a_floor·rgb(floor) + a_wall·rgb(wall) + a_obj·rgb(object) + β``, mapped to
  [−1, 1]; everything is differentiable in ``ws``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from datasets import load_ground_truth
from datasets.base import GroundTruthData
from datasets.render3d import compose, hue_to_rgb

ORACLE_NAME = "shapes3d-oracle"
FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
NUM_FACTORS = len(FACTOR_NAMES)
STYLE_CHANNELS_PER_FACTOR = (6, 5, 4, 3, 2, 1)
NUM_BLOCKS = 4  # features: styles, factor values, coefficient maps, image


@dataclass(frozen=True)
class OracleConfig:
    """Everything that fixes the oracle's latent geometry (its identity for caching)."""

    seed: int = 0
    w_dim: int = 32
    z_dim: int = 32
    factor_stds: tuple[float, ...] = (3.0, 2.5, 2.0, 1.5, 1.0, 0.8)
    nuisance_std: float = 0.3
    w_avg_std: float = 0.5
    shape_temperature: float = 0.02
    num_ws: int = 1
    alias_strength: float = 1.0
    axis_aligned: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "factor_stds", tuple(float(s) for s in self.factor_stds))
        if len(self.factor_stds) != NUM_FACTORS or min(self.factor_stds) <= 0:
            raise ValueError(f"factor_stds must be {NUM_FACTORS} positive numbers, got "
                             f"{self.factor_stds}")
        if self.w_dim < NUM_FACTORS or self.z_dim != self.w_dim:
            raise ValueError(f"need z_dim == w_dim >= {NUM_FACTORS}, got z_dim {self.z_dim}, "
                             f"w_dim {self.w_dim}")
        if self.nuisance_std <= 0 or self.shape_temperature <= 0 or self.w_avg_std < 0:
            raise ValueError("nuisance_std and shape_temperature must be > 0, w_avg_std >= 0")
        if self.num_ws != 1 and self.num_ws < NUM_FACTORS:
            raise ValueError(f"num_ws must be 1 or at least {NUM_FACTORS}, got {self.num_ws}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["factor_stds"] = list(self.factor_stds)
        if self.num_ws == 1:  # the single-row oracle keeps its original identity
            del out["num_ws"], out["alias_strength"]
        if not self.axis_aligned:  # so does the rotated (default) one
            del out["axis_aligned"]
        return out


def _orthogonal(dim: int, gen: torch.Generator) -> torch.Tensor:
    """A random orthogonal matrix (QR of a Gaussian matrix with the sign fix), float64."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))[None, :]


class OracleGenerator(nn.Module):
    """The 3DShapes oracle generator (see the module docstring for the exact construction)."""

    def __init__(self, config: OracleConfig | None = None,
                 ground_truth: GroundTruthData | None = None) -> None:
        super().__init__()
        self.config = config = config or OracleConfig()
        if ground_truth is None:
            ground_truth = load_ground_truth("shapes3d-synth")
        if tuple(ground_truth.factor_names) != FACTOR_NAMES or not hasattr(
                ground_truth, "render_soft"):
            raise ValueError("the oracle needs the shapes3d-synth renderer (render_soft and "
                             f"factors {FACTOR_NAMES})")
        self.ground_truth = ground_truth
        self.z_dim = config.z_dim
        self.w_dim = config.w_dim
        self.num_ws = config.num_ws
        self.resolution = ground_truth.observation_shape[0]
        self.img_channels = 3
        self.factor_names = FACTOR_NAMES
        self.factor_sizes = FACTOR_SIZES

        gen = torch.Generator().manual_seed(int(config.seed))
        basis = _orthogonal(config.w_dim, gen)  # columns: factor directions, then nuisance
        z_rotation = _orthogonal(config.z_dim, gen)
        w_avg = torch.randn(config.w_dim, generator=gen, dtype=torch.float64) * config.w_avg_std
        if config.axis_aligned:  # drawn after w_avg, so the default oracle's stream is unchanged
            basis = torch.eye(config.w_dim, dtype=torch.float64)[
                :, torch.randperm(config.w_dim, generator=gen)]
            z_rotation = torch.eye(config.z_dim, dtype=torch.float64)[
                :, torch.randperm(config.z_dim, generator=gen)]
        stds = torch.full((config.w_dim,), config.nuisance_std, dtype=torch.float64)
        stds[:NUM_FACTORS] = torch.tensor(config.factor_stds, dtype=torch.float64)
        directions = basis[:, :NUM_FACTORS].T.contiguous()  # [6, w_dim]
        channel_factor = torch.repeat_interleave(
            torch.arange(NUM_FACTORS), torch.tensor(STYLE_CHANNELS_PER_FACTOR))
        self.register_buffer("_directions", directions.float())
        self.register_buffer("_factor_stds", stds[:NUM_FACTORS].float())
        self.register_buffer("_mapping_matrix", (basis * stds[None, :] @ z_rotation.T).float())
        self.register_buffer("_w_avg", w_avg.float())
        self.register_buffer("_affine", directions[channel_factor].float())  # [21, w_dim]
        self.register_buffer("_channel_factor", channel_factor)
        self.register_buffer("_sizes", torch.tensor(FACTOR_SIZES, dtype=torch.float32))
        rows = torch.arange(self.num_ws)
        homes = torch.tensor(layer_homes(self.num_ws))
        alias = (torch.arange(NUM_FACTORS)[None, :] + 1 + rows[:, None] % (NUM_FACTORS - 1)
                 ) % NUM_FACTORS  # [num_ws, 6]: the factor row l reads in place of factor k
        self.register_buffer("_homes", homes)
        self.register_buffer("_alias", alias)
        self.register_buffer("_alias_mask", (rows[:, None] != homes[None, :]).float())

    # ------------------------------------------------------------------ protocol
    @property
    def w_avg(self) -> torch.Tensor:
        return self._w_avg

    def identity(self) -> dict[str, Any]:
        """What identifies this generator for caching."""
        return {"name": ORACLE_NAME, "config": self.config.to_dict(),
                "ground_truth": self.ground_truth.identity()}

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """z [n, z_dim] -> W [n, w_dim] (linear; truncation towards ``w_avg``)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (n, {self.z_dim}), got {tuple(z.shape)}")
        w = self._w_avg + z.to(self._w_avg.dtype) @ self._mapping_matrix.T
        if truncation_psi != 1:
            w = self._w_avg + truncation_psi * (w - self._w_avg)
        return w

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        """W+ [n, 1, w_dim] (rows averaged if more) or W [n, w_dim] -> NCHW images in [-1, 1]."""
        return self._render(self.factor_values(ws))[-1]

    def style_affines(self) -> list[torch.Tensor]:
        """The one affine [21, w_dim]: factor j's direction repeated ``6 − j`` times (per row of
        a layered oracle: every row reads the same directions, at different factors)."""
        return [self._affine.clone() for _ in range(self.num_ws)]

    @property
    def factor_layers(self) -> list[int]:
        """The W+ row each factor is read from (its home row); all 0 for the one-row oracle."""
        return [int(h) for h in self._homes]

    def features(self, ws: torch.Tensor, upto_block: int) -> list[torch.Tensor]:
        """The first ``upto_block`` of: styles [n, 21, 1, 1], continuous factor indices
        [n, 6, 1, 1], composed coefficient maps [n, 6, H, W], image [n, 3, H, W]."""
        if not 1 <= upto_block <= NUM_BLOCKS:
            raise ValueError(f"upto_block must be in [1, {NUM_BLOCKS}], got {upto_block}")
        if self.num_ws > 1:
            proj = self._row_projections(ws)
            feats = [proj.flatten(1)[:, :, None, None]]
            coords = self._layered_coords(proj)
        else:
            styles = self._single_w(ws) @ self._affine.T
            feats = [styles[:, :, None, None]]
            coords = self._coords_from_styles(styles)
        if upto_block >= 2:
            feats.append(coords[:, :, None, None])
            if upto_block >= 3:
                feats += self._render(coords)[: upto_block - 2]
        return feats

    # ------------------------------------------------------------------ ground truth
    def true_directions(self) -> torch.Tensor:
        """Unit ground-truth factor directions in W, [6, w_dim], rows in ``factor_names`` order."""
        return self._directions.clone()

    def factor_dims(self, space: str = "w") -> list[int]:
        """Per factor, the W (``"w"``) or z (``"z"``) coordinate its direction loads on most:
        the one coordinate that controls it when ``axis_aligned``."""
        if space == "w":
            loading = self._directions
        elif space == "z":
            loading = self._directions @ self._mapping_matrix  # [6, z_dim]
        else:
            raise ValueError(f"space must be 'w' or 'z', got {space!r}")
        return [int(i) for i in loading.abs().argmax(dim=1)]

    @property
    def factor_stds(self) -> torch.Tensor:
        """Standard deviation of W along each true direction under ``mapping``."""
        return self._factor_stds.clone()

    def factor_values(self, ws: torch.Tensor) -> torch.Tensor:
        """Continuous factor indices [n, 6] in (−0.5, size − 0.5); ``round`` gives the class."""
        if self.num_ws > 1:
            return self._layered_coords(self._row_projections(ws))
        styles = self._single_w(ws) @ self._affine.T
        return self._coords_from_styles(styles)

    def factor_classes(self, ws: torch.Tensor) -> torch.Tensor:
        """Grid class per factor (``round`` of ``factor_values``), int64 [n, 6]."""
        classes = torch.round(self.factor_values(ws)).long()
        sizes = self._sizes.long()
        return torch.minimum(classes.clamp(min=0), sizes - 1)

    def factors_to_ws(self, factors: np.ndarray | torch.Tensor,
                      offset: torch.Tensor | None = None) -> torch.Tensor:
        """W codes [n, w_dim] whose images are exactly the grid images of ``factors`` (n, 6).

        ``offset`` [n, w_dim] adds a nuisance component (projected off the factor directions).
        """
        factors = torch.as_tensor(np.asarray(factors), dtype=torch.float64)
        if factors.ndim != 2 or factors.shape[1] != NUM_FACTORS:
            raise ValueError(f"factors must have shape (n, {NUM_FACTORS}), got "
                             f"{tuple(factors.shape)}")
        sizes = self._sizes.double()
        if (factors < 0).any() or (factors >= sizes).any():
            raise ValueError(f"factor indices out of range for sizes {FACTOR_SIZES}")
        t = torch.special.ndtri((factors + 0.5) / sizes)
        w = self._w_avg.double() + (t * self._factor_stds.double()) @ self._directions.double()
        if offset is not None:
            d = self._directions.double()
            offset = offset.double()
            w = w + offset - (offset @ d.T) @ d
        return w.to(self._w_avg.dtype)

    # ------------------------------------------------------------------ internals
    def _single_w(self, ws: torch.Tensor) -> torch.Tensor:
        if ws.ndim == 3:
            if ws.shape[1] < 1 or ws.shape[2] != self.w_dim:
                raise ValueError(f"ws must have shape (n, num_ws, {self.w_dim}), got "
                                 f"{tuple(ws.shape)}")
            return ws.to(self._w_avg.dtype).mean(dim=1)
        if ws.ndim != 2 or ws.shape[1] != self.w_dim:
            raise ValueError(f"ws must have shape (n, 1, {self.w_dim}) or (n, {self.w_dim}), got "
                             f"{tuple(ws.shape)}")
        return ws.to(self._w_avg.dtype)

    def _row_projections(self, ws: torch.Tensor) -> torch.Tensor:
        """Layered oracle: ``(ws[:, l] − w_avg)·q_j / σ_j`` for every row and factor, [n, L, 6]."""
        if ws.ndim == 2:
            ws = ws[:, None, :].expand(-1, self.num_ws, -1)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (n, {self.num_ws}, {self.w_dim}), got "
                             f"{tuple(ws.shape)}")
        centred = ws.to(self._w_avg.dtype) - self._w_avg
        return centred @ self._directions.T / self._factor_stds

    def _layered_coords(self, proj: torch.Tensor) -> torch.Tensor:
        """Factor k reads its own direction on its home row, and through every other row the
        direction of another factor (``alias_strength`` × their mean): a W direction broadcast
        to all rows is entangled, the same direction on its home row alone nearly pure (it
        leaks into the one factor aliased to it on that row, with weight 1 / (num_ws − 1))."""
        n = proj.shape[0]
        home = proj[:, self._homes, torch.arange(NUM_FACTORS, device=proj.device)]
        aliased = proj.gather(2, self._alias[None].expand(n, -1, -1)) * self._alias_mask
        t = home + self.config.alias_strength * aliased.sum(dim=1) / (self.num_ws - 1)
        return self._sizes * torch.special.ndtr(t) - 0.5

    def _coords_from_styles(self, styles: torch.Tensor) -> torch.Tensor:
        """Styles [n, 21] -> continuous factor indices [n, 6]."""
        centred = styles - self._w_avg @ self._affine.T
        sums = torch.zeros(len(styles), NUM_FACTORS, dtype=styles.dtype, device=styles.device)
        sums = sums.index_add(1, self._channel_factor, centred)
        counts = torch.tensor(STYLE_CHANNELS_PER_FACTOR, dtype=styles.dtype,
                              device=styles.device)
        t = sums / counts / self._factor_stds
        return self._sizes * torch.special.ndtr(t) - 0.5

    def _render(self, coords: torch.Tensor) -> list[torch.Tensor]:
        """Continuous factor indices [n, 6] -> [coefficient maps NCHW, image NCHW in [-1, 1]].

        The maps of all 8·4·15 grid geometries are mixed with weights = (scale hat weights) ×
        (shape softmax) × (orientation hat weights), i.e. bilinear in (scale, orientation) and
        soft over shapes, as one dense matrix product (faster on CPU than gathering corners).
        The image is clipped to [-1, 1] like the renderer's uint8 output (specular highlights
        can exceed white by a few percent).
        """
        maps = self.ground_truth.coefficient_maps_torch(coords.device, coords.dtype)
        n_scale, n_shape, n_orient, height, width, channels = maps.shape
        grid = torch.arange(max(n_scale, n_shape, n_orient), dtype=coords.dtype,
                            device=coords.device)
        scale_pos = coords[:, 3:4].clamp(0.0, n_scale - 1.0)
        orient_pos = coords[:, 5:6].clamp(0.0, n_orient - 1.0)
        scale_w = torch.relu(1.0 - (scale_pos - grid[:n_scale]).abs())  # bilinear hat weights
        orient_w = torch.relu(1.0 - (orient_pos - grid[:n_orient]).abs())
        shape_logits = -((coords[:, 4:5] - grid[:n_shape]) ** 2) / self.config.shape_temperature
        shape_w = torch.softmax(shape_logits, dim=1)
        weights = (scale_w[:, :, None, None] * shape_w[:, None, :, None]
                   * orient_w[:, None, None, :]).reshape(len(coords), -1)
        composed = (weights @ maps.reshape(n_scale * n_shape * n_orient, -1)).reshape(
            len(coords), height, width, channels)
        hues = coords[:, 0:3] / 10.0
        image = compose(composed, hue_to_rgb(hues[:, 0]), hue_to_rgb(hues[:, 1]),
                        hue_to_rgb(hues[:, 2]))
        image = (image.permute(0, 3, 1, 2) * 2.0 - 1.0).clamp(-1.0, 1.0)
        return [composed.permute(0, 3, 1, 2), image.contiguous()]


def layer_homes(num_ws: int) -> list[int]:
    """Home rows of the 6 factors, spread evenly over ``num_ws`` rows (all 0 for one row)."""
    if num_ws == 1:
        return [0] * NUM_FACTORS
    return [(2 * k + 1) * num_ws // (2 * NUM_FACTORS) for k in range(NUM_FACTORS)]


def load_oracle_generator(seed: int = 0, ground_truth: GroundTruthData | None = None,
                          **overrides: Any) -> OracleGenerator:
    """The ``shapes3d-oracle`` generator for ``seed`` (other ``OracleConfig`` fields optional)."""
    return OracleGenerator(OracleConfig(seed=seed, **overrides), ground_truth).eval()


__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "ORACLE_NAME", "OracleConfig", "OracleGenerator",
           "load_oracle_generator"]
