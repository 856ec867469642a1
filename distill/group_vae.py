"""Group-based VAE for distillation (Locatello et al. 2020, "Weakly-supervised disentanglement
without compromises", with known varied dimension; ContraFeat App. B, Eq. 22-23).

A training pair (x_a, x_b, k) differs along direction k only. Both images are encoded; on every
latent dim except k both posteriors are replaced by their average, dim k keeps each image's own
posterior. The loss is disentanglement_lib's GroupVAE objective on the fused posteriors:
½(rec_a + rec_b) + β·½(KL_a + KL_b), Bernoulli reconstruction on pixels in [0, 1].

Posterior fusion (``fusion``): ``"var"`` (default, disentanglement_lib) averages the means and
takes the log of the mean variance; ``"logvar"`` (ContraFeat ``main``) averages log-variances,
i.e. the geometric mean of the variances. Same conv architecture as the VAE baselines; the
number of latents is the number of kept directions; the representation is the posterior mean.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from core.config import resolve_config
from core.progress import StepCallback
from methods.vae_common import (
    AdamSettings,
    SeedStreams,
    VAEEncoder,
    run_steps,
)
from models.vae import (
    RESOLUTIONS,
    VAEArchitecture,
    bernoulli_reconstruction,
    build_vae,
    gaussian_kl,
    images_to_tensor,
    reparameterise,
    to_resolution,
)

Fusion = Literal["var", "logvar"]
FUSIONS: tuple[str, ...] = ("var", "logvar")
PAIR_KEYS = ("images_orig", "images_edit", "labels")


@dataclass(frozen=True)
class GroupVAEModelSettings:
    """The group VAE's loss and loop settings, the first fields of ``GroupVAEConfig``."""

    beta: float = 1.0
    batch_size: int = 64
    steps: int = 300_000

    RANGES: ClassVar[dict[str, str]] = {
        "beta": "[0, inf)", "batch_size": "[1, inf)", "steps": "[1, inf)"}


@dataclass(frozen=True)
class GroupVAEConfig(AdamSettings, GroupVAEModelSettings):
    """Group-VAE hyper-parameters (loss and loop, Adam, then fusion and size); defaults are
    disentanglement_lib's (shared.gin) and the suite's proposal (methods spec §3.2): β 1, batch
    64 pairs, Adam 1e-4, 300k steps."""

    fusion: Fusion = "var"
    resolution: int = 64  # the VAE's working size; 32 downsamples the 64x64 pairs (4x cheaper)

    RANGES: ClassVar[dict[str, str]] = {"resolution": "[1, inf)"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution}")


# Overrides per profile. "quick" is sized for 2 CPU cores: 4,800 steps of 32 pairs at lr 1e-3
# on the pairs area-downsampled to 32 px (about 2.5 minutes on one core, less than the former
# 2,400 steps at 64 px and lr 5e-4, with higher scores for exact directions and the same for
# random ones; docs/distillation.md).
GROUP_VAE_PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"steps": 4800, "batch_size": 32, "lr": 1e-3, "resolution": 32},
    "paper": {},
}


def group_vae_config(profile: str = "paper", **overrides: Any) -> GroupVAEConfig:
    """A profile's config: paper defaults, then the profile's overrides, then ``overrides``."""
    return resolve_config(GroupVAEConfig, GROUP_VAE_PROFILES, profile, overrides)


def fuse_posteriors(
    mu_a: torch.Tensor,
    logvar_a: torch.Tensor,
    mu_b: torch.Tensor,
    logvar_b: torch.Tensor,
    varied_mask: torch.Tensor,
    mode: Fusion = "var",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Average the two posteriors on shared dims; keep each own posterior where ``varied_mask``.

    All tensors (n, D); ``varied_mask`` bool (n, D), True on the dim the pair varies along.
    ``mode="var"``: mean of the means, log of the mean variance; ``"logvar"``: mean of logvars.
    Returns (mu_a', logvar_a', mu_b', logvar_b').
    """
    if mode not in FUSIONS:
        raise ValueError(f"fusion mode must be one of {FUSIONS}, got {mode!r}")
    shape = mu_a.shape
    for name, t in (("logvar_a", logvar_a), ("mu_b", mu_b), ("logvar_b", logvar_b),
                    ("varied_mask", varied_mask)):
        if t.shape != shape:
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    if varied_mask.dtype != torch.bool:
        raise ValueError(f"varied_mask must be a bool tensor, got {varied_mask.dtype}")
    mu_avg = 0.5 * (mu_a + mu_b)
    if mode == "var":
        logvar_avg = torch.logaddexp(logvar_a, logvar_b) - math.log(2.0)
    else:
        logvar_avg = 0.5 * (logvar_a + logvar_b)
    return (torch.where(varied_mask, mu_a, mu_avg), torch.where(varied_mask, logvar_a, logvar_avg),
            torch.where(varied_mask, mu_b, mu_avg), torch.where(varied_mask, logvar_b, logvar_avg))


def group_vae_loss(
    encoder: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    decoder: Callable[[torch.Tensor], torch.Tensor],
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    labels: torch.Tensor,
    num_latents: int,
    beta: float,
    fusion: Fusion = "var",
    noise: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The group-VAE objective on a batch of pairs: (loss, reconstruction, KL).

    Both images go through ``encoder`` in one batch ([a; b], NCHW in [0, 1]); posteriors are
    fused by ``fuse_posteriors`` with label k = the varied latent; the loss is
    ½(rec_a + rec_b) + β·½(KL_a + KL_b), each term averaged over pairs (= the mean over 2n
    images). ``noise=None`` decodes the fused means (deterministic; for tests).
    """
    n = len(labels)
    mean, logvar = encoder(torch.cat([images_a, images_b]))
    varied = torch.arange(num_latents)[None, :] == labels.reshape(n, 1)
    mu_a, lv_a, mu_b, lv_b = fuse_posteriors(mean[:n], logvar[:n], mean[n:], logvar[n:], varied,
                                              fusion)
    fused_mean, fused_logvar = torch.cat([mu_a, mu_b]), torch.cat([lv_a, lv_b])
    logits = decoder(reparameterise(fused_mean, fused_logvar, noise))
    targets = to_resolution(torch.cat([images_a, images_b]), logits.shape[-1])
    reconstruction = bernoulli_reconstruction(logits, targets).mean()
    kl = gaussian_kl(fused_mean, fused_logvar).mean()
    return reconstruction + beta * kl, reconstruction, kl


class PairSource:
    """Random minibatches of (image_a, image_b, label) from arrays or an HDF5 pair file.

    ``images_a``/``images_b``: uint8 (N, 64, 64, C) arrays or h5py datasets; ``labels`` (N,)
    ints. Reads use sorted unique indices (h5py's fancy indexing needs increasing indices).
    """

    def __init__(self, images_a: Any, images_b: Any, labels: Any, name: str = "pairs") -> None:
        self.name = name
        n = len(labels)
        shape_a, shape_b = tuple(images_a.shape), tuple(images_b.shape)
        if len(shape_a) != 4 or shape_a[1:3] != (64, 64) or shape_a[3] not in (1, 3):
            raise ValueError(f"{name}: images_orig must be (N, 64, 64, 1|3), got {shape_a}")
        if shape_b != shape_a or shape_a[0] != n:
            raise ValueError(f"{name}: images_orig {shape_a}, images_edit {shape_b} and labels"
                             f" ({n},) must agree")
        for label, images in (("images_orig", images_a), ("images_edit", images_b)):
            if np.dtype(images.dtype) != np.uint8:
                raise ValueError(f"{name}: {label} must be uint8, got {images.dtype}")
        if n == 0:
            raise ValueError(f"{name}: no pairs")
        self.labels = np.asarray(labels)
        if self.labels.ndim != 1 or not np.issubdtype(self.labels.dtype, np.integer):
            raise ValueError(f"{name}: labels must be a 1-D integer array, got "
                             f"{self.labels.dtype} {self.labels.shape}")
        self.labels = self.labels.astype(np.int64)
        self.images_a, self.images_b = images_a, images_b
        self.channels = shape_a[3]

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], name: str = "pairs") -> PairSource:
        """From anything with keys images_orig / images_edit / labels (an h5py File, a dict)."""
        missing = [k for k in PAIR_KEYS if k not in data]
        if missing:
            raise ValueError(f"{name}: missing pair dataset(s) {missing} (expected {PAIR_KEYS})")
        return cls(data["images_orig"], data["images_edit"], data["labels"], name=name)

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """The indices of ``size`` pairs drawn uniformly with replacement (what ``batch`` and
        ``PreparedPairs.batch`` take from ``rng``)."""
        return rng.integers(0, len(self), size=size)

    def batch(self, size: int, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``size`` pairs drawn uniformly with replacement: (uint8 a, uint8 b, int64 labels)."""
        index = self.draw(size, rng)
        unique, inverse = np.unique(index, return_inverse=True)
        a = np.asarray(self.images_a[unique])[inverse]
        b = np.asarray(self.images_b[unique])[inverse]
        return a, b, self.labels[index]


# Most bytes of float images PreparedPairs holds (both sides); a larger pair set is converted
# batch by batch, as before.
PREPARED_BYTES = 256 << 20


class PreparedPairs:
    """A pair set converted once to the float tensors the group VAE trains on.

    Each training step used to convert its batch (uint8 to float, then the area downsampling to
    the VAE's resolution); here every pair is converted once, in chunks, by the same functions,
    and a step gathers its rows. A pixel's value does not depend on the batch it is converted
    in, and the gathered batch has the strides of the batch converted the old way, so training
    gives the same numbers to the last bit (``tests/test_group_vae.py``).
    """

    def __init__(self, source: PairSource, resolution: int, chunk: int = 256) -> None:
        self.source = source
        parts: dict[str, list[torch.Tensor]] = {"a": [], "b": []}
        for start in range(0, len(source), chunk):
            rows = slice(start, start + chunk)
            for side, images in (("a", source.images_a), ("b", source.images_b)):
                converted = to_resolution(images_to_tensor(np.asarray(images[rows]),
                                                            source.channels), resolution)
                parts[side].append(converted.permute(0, 2, 3, 1).contiguous())  # NHWC rows
        self.images_a = torch.cat(parts["a"])
        self.images_b = torch.cat(parts["b"])
        self.labels = torch.from_numpy(source.labels)

    @staticmethod
    def fits(source: PairSource, resolution: int) -> bool:
        """Whether the converted pairs stay within ``PREPARED_BYTES``."""
        return 2 * len(source) * source.channels * resolution ** 2 * 4 <= PREPARED_BYTES

    def batch(self, size: int, rng: np.random.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``size`` pairs drawn as ``PairSource.batch`` draws them: float NCHW a, b (laid out
        channels-last, like a converted uint8 NHWC batch) and int64 labels."""
        index = torch.from_numpy(self.source.draw(size, rng))
        return (self.images_a[index].permute(0, 3, 1, 2),
                self.images_b[index].permute(0, 3, 1, 2), self.labels[index])


@contextmanager
def open_pairs(pairs: Any, in_memory_bytes: int = 1 << 30) -> Iterator[PairSource]:
    """A ``PairSource`` for a path to an HDF5 pair file, a mapping (h5py File, dict), a tuple
    (images_a, images_b, labels) or a ``PairSource``. Files below ``in_memory_bytes`` are read
    into memory once (random reads from a chunked file are slow); larger ones stay on disk."""
    if isinstance(pairs, PairSource):
        yield pairs
        return
    if isinstance(pairs, (str, os.PathLike)):
        import h5py

        path = Path(pairs)
        if not path.is_file():
            raise FileNotFoundError(f"pair file not found: {path}")
        with h5py.File(path, "r") as f:
            source = PairSource.from_mapping(f, name=str(path))
            if 2 * source.images_a.size <= in_memory_bytes:
                source = PairSource(source.images_a[()], source.images_b[()], source.labels,
                                    name=str(path))
            yield source
        return
    if isinstance(pairs, Mapping) or hasattr(pairs, "keys"):
        yield PairSource.from_mapping(pairs)
        return
    if isinstance(pairs, (tuple, list)) and len(pairs) == 3:
        yield PairSource(*pairs)
        return
    raise ValueError("pairs must be an HDF5 path, a mapping with images_orig/images_edit/labels,"
                     f" a (images_a, images_b, labels) tuple or a PairSource; got {type(pairs)}")


def train_group_vae(pairs: Any, num_latents: int, config: GroupVAEConfig, seed: int,
                    progress: StepCallback | None = None, *, prepare: bool = True
                    ) -> VAEEncoder:
    """Train a group VAE with ``num_latents`` dims on labelled pairs (label k = varied dim).

    ``pairs``: see ``open_pairs``. Deterministic given ``seed`` (and the torch thread count).
    ``prepare``: convert the pairs once (``PreparedPairs``, when they fit) instead of every
    batch; the same numbers either way.
    """
    if not isinstance(num_latents, (int, np.integer)) or num_latents < 1:
        raise ValueError(f"num_latents must be a positive integer, got {num_latents!r}")
    with open_pairs(pairs) as source:
        labels = source.labels
        if labels.min() < 0 or labels.max() >= num_latents:
            raise ValueError(f"{source.name}: labels must lie in [0, {num_latents}), got range "
                             f"[{labels.min()}, {labels.max()}]")
        streams = SeedStreams(seed)
        data_rng = streams.numpy("pairs")
        arch = VAEArchitecture(int(num_latents), source.channels, config.resolution)
        vae = build_vae(arch, streams.torch_seed("init")).train()
        noise = streams.torch("noise")
        optimizer = config.optimizer(vae.parameters())

        prepared = (PreparedPairs(source, config.resolution)
                    if prepare and PreparedPairs.fits(source, config.resolution) else None)

        def pair_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            if prepared is not None:
                return prepared.batch(config.batch_size, data_rng)
            a, b, k = source.batch(config.batch_size, data_rng)
            # downsampled once here: the encoder's input and the reconstruction target are
            # then both at the VAE's resolution (the same values, half the pooling work)
            return (to_resolution(images_to_tensor(a, source.channels), config.resolution),
                    to_resolution(images_to_tensor(b, source.channels), config.resolution),
                    torch.from_numpy(k))

        def step(_: int) -> dict[str, float]:
            images_a, images_b, k = pair_batch()
            loss, reconstruction, kl = group_vae_loss(
                vae.encoder, vae.decoder, images_a, images_b, k, num_latents,
                config.beta, config.fusion, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return {"loss": loss.item(), "reconstruction": reconstruction.item(),
                    "kl": kl.item()}

        history = run_steps(config.steps, step, progress, description="group-vae")
        meta = {"method": "group-vae", "config": dataclasses.asdict(config), "seed": int(seed),
                "num_latents": int(num_latents), "pairs": source.name,
                "num_pairs": len(source), "loss_history": history}
    return VAEEncoder(vae, meta)


def load_encoder(directory: str | Path) -> VAEEncoder:
    """Rebuild a trained group-VAE encoder from the directory its ``save`` wrote."""
    return VAEEncoder.load(directory)
