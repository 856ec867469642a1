"""ContraFeat's contrastive losses on deep-feature changes, as pure functions of feature maps.

A feature *difference* is ``F(edited) - F(original)`` for one sensor stage, ``[n, c, h, w]``.
Three spatial modes (one flag, shared by the Bi and Pt losses and the L2-mask ablation):

- ``l2mask`` (the paper's): per position the cosine over channels, weighted by the spatial
  L2-norm mask of both differences, ``sum_p (cos(p) M(p))^k / (sum_p M(p) + 1e-6)``;
- ``nofoc``: the same without the mask, ``mean_p |cos(p)|^k``;
- ``pooled``: differences average-pooled over space first, then ``|cos|^k`` of the channel
  vectors, mask off (the paper's runs kept the mask on 1x1 maps, where it is identically 0; see
  docs/contrafeat.md).

``k = 2`` (squared cosine) in training; the 3DShapes analysis uses ``|cos|`` (``k = 1``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from core.errors import SettingError

SPATIAL_MODES = ("l2mask", "nofoc", "pooled")
MASK_EPS = 1e-6
COS_EPS = 1e-8


def check_spatial_mode(mode: str) -> str:
    if mode not in SPATIAL_MODES:
        raise SettingError(f"spatial_mode must be one of {', '.join(SPATIAL_MODES)}, got {mode!r}")
    return mode


def l2_norm_mask(diff: torch.Tensor) -> torch.Tensor:
    """Per-sample min-max normalised channel L2 norm of a difference: ``[n, c, h, w] -> [n, h, w]``
    in [0, 1] (1 where the change is largest)."""
    norm = diff.norm(dim=1)
    flat = norm.flatten(1)
    low = flat.min(dim=1).values[:, None, None]
    high = flat.max(dim=1).values[:, None, None]
    return (norm - low) / (high - low + MASK_EPS)


def pair_similarity(a: torch.Tensor, b: torch.Tensor, mode: str, power: int = 2) -> torch.Tensor:
    """Similarity of two batches of differences ``[n, c, h, w]`` under ``mode``: ``[n]``."""
    check_spatial_mode(mode)
    if mode == "pooled":
        a, b = a.mean(dim=(2, 3)), b.mean(dim=(2, 3))
        return F.cosine_similarity(a, b, dim=1, eps=COS_EPS).abs() ** power
    cos = F.cosine_similarity(a, b, dim=1, eps=COS_EPS)  # [n, h, w]
    if mode == "nofoc":
        return (cos.abs() ** power).flatten(1).mean(dim=1)
    mask = l2_norm_mask(a) * l2_norm_mask(b)
    numerator = ((cos * mask).abs() ** power).flatten(1).sum(dim=1)
    return numerator / (mask.flatten(1).sum(dim=1) + MASK_EPS)


def binary_contrast_loss(
    query: Sequence[torch.Tensor], positive: Sequence[torch.Tensor],
    negative: Sequence[torch.Tensor], mode: str, power: int = 2,
    pos_weight: float = 1.0, neg_weight: float = 1.0,
) -> torch.Tensor:
    """Contra-Bi: per stage ``-sim(q, pos) + sim(q, neg)``, summed over stages, mean over pairs.

    ``query``, ``positive``, ``negative``: per sensor stage, differences ``[h, c, y, x]``; the
    positive is the same direction edited from another original (consistency), the negative
    another direction (orthogonality).
    """
    if not (len(query) == len(positive) == len(negative)) or not query:
        raise ValueError("query, positive and negative need the same, non-zero number of stages")
    total = torch.zeros(query[0].shape[0], dtype=query[0].dtype, device=query[0].device)
    for q, p, n in zip(query, positive, negative, strict=True):
        total = total - pos_weight * pair_similarity(q, p, mode, power)
        total = total + neg_weight * pair_similarity(q, n, mode, power)
    return total.mean()


def pattern_similarity(diff: torch.Tensor, pattern: torch.Tensor, mode: str,
                       power: int = 2) -> torch.Tensor:
    """``C[b, k]``: similarity of each image difference ``[b, c, h, w]`` with each prototype
    pattern's own features ``[nv, c, h', w']`` (resized bilinearly to ``(h, w)``)."""
    check_spatial_mode(mode)
    if pattern.shape[2:] != diff.shape[2:]:
        pattern = F.interpolate(pattern, size=diff.shape[2:], mode="bilinear",
                                align_corners=False)
    if mode == "pooled":
        d = F.normalize(diff.mean(dim=(2, 3)), dim=1, eps=MASK_EPS)
        p = F.normalize(pattern.mean(dim=(2, 3)), dim=1, eps=MASK_EPS)
        return (d @ p.T).abs() ** power
    d = F.normalize(diff, dim=1, eps=MASK_EPS).flatten(2)  # [b, c, hw]
    p = F.normalize(pattern, dim=1, eps=MASK_EPS).flatten(2)  # [k, c, hw]
    cosmap = torch.einsum("bcp,kcp->bkp", d, p)
    if mode == "nofoc":
        return (cosmap.abs() ** power).mean(dim=2)
    mask = l2_norm_mask(diff).flatten(1)[:, None, :] * l2_norm_mask(pattern).flatten(1)[None]
    numerator = ((cosmap * mask).abs() ** power).sum(dim=2)
    return numerator / (mask.sum(dim=2) + MASK_EPS)


def pattern_contrast_loss(
    diffs: Sequence[torch.Tensor], pattern_features: Sequence[torch.Tensor],
    index: torch.Tensor, mode: str, power: int = 2,
    pos_weight: float = 1.0, neg_weight: float = 1.0,
) -> torch.Tensor:
    """Contra-Pt: per stage ``-mean_b C[b, q_b] + mean_{b, k != q_b} C[b, k]``, summed over
    stages (``index`` [b]: the direction edited in sample b)."""
    if len(diffs) != len(pattern_features) or not diffs:
        raise ValueError("diffs and pattern_features need the same, non-zero number of stages")
    total = torch.zeros((), dtype=diffs[0].dtype, device=diffs[0].device)
    for diff, pattern in zip(diffs, pattern_features, strict=True):
        sim = pattern_similarity(diff, pattern, mode, power)  # [b, nv]
        own = F.one_hot(index, sim.shape[1]).to(torch.bool)
        pos = sim[own].mean()
        neg = sim[~own].mean() if sim.shape[1] > 1 else torch.zeros_like(pos)
        total = total - pos_weight * pos + neg_weight * neg
    return total


def diversity_loss(edits: torch.Tensor) -> torch.Tensor:
    """Eq. 13: ``sum_{i != j} cos(vec E_i, vec E_j)^2`` over the flattened W+ edits
    ``[nv, num_ws, w_dim]`` (both orders count)."""
    flat = F.normalize(edits.flatten(1), dim=1, eps=COS_EPS)
    cos = flat @ flat.T
    off = cos - torch.diag_embed(torch.diagonal(cos))
    return (off**2).sum()
