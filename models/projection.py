"""Projecting images into a generator's W (one w per image) or W+ (one w per layer).

The recipe of NVIDIA's stylegan2-ada-pytorch ``projector.py``: the latent starts at the mean of
``w_avg_samples`` mapped z (drawn from a fixed seed, not the projection's); Adam (betas 0.9,
0.999) with a learning rate that ramps up over the first ``lr_rampup_length`` of the steps and
down along a half cosine over the last ``lr_rampdown_length``; Gaussian noise added to the
latent at every step, ``w_std * initial_noise_factor`` shrinking quadratically to zero at
``noise_ramp_length`` of the steps (w_std: the RMS distance of those samples from their mean);
the loss is a perceptual distance (``models.perceptual``) plus, optionally, ``mse_weight`` times
the pixel mean squared error; when the generator has noise inputs they are optimised too, from
unit Gaussian noise, regularised by the squared autocorrelation at one pixel's shift over an
average-pooled pyramid (weight ``regularize_noise_weight``) and renormalised to zero mean and
unit variance after every step.

Differences, all for batches: every image has its own latent, its own noise inputs and its own
seeded noise stream (``SeedSequence([seed, index])`` for the image at ``index`` of the whole
set), and the loss is the sum of the per-image losses, so each image follows the path it would
alone (Adam is per coordinate) up to floating-point rounding of batched convolutions. W+ mode
starts every row at the mean and adds the noise to each row. The result is deterministic for a
given seed, batch size and torch thread count.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import SettingError
from core.progress import Bar, BarFactory, open_bar
from models.generator import Generator, generator_device
from models.perceptual import PerceptualDistance

SPACES = ("w", "w+")
NOISE_BUFFER = "noise_const"


@dataclass(frozen=True)
class ProjectionConfig:
    """The projector's settings; the defaults are ``projector.py``'s (1000 steps, W). A value
    outside what a field accepts is a SettingError (a user's flag or override)."""

    space: str = "w"
    num_steps: int = 1000
    w_avg_samples: int = 10_000
    w_avg_seed: int = 123
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    mse_weight: float = 0.0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise SettingError(f"space must be one of {', '.join(SPACES)}, got {self.space!r}")
        for name in ("num_steps", "w_avg_samples", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise SettingError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("initial_learning_rate", "lr_rampdown_length", "lr_rampup_length",
                     "noise_ramp_length"):
            if not getattr(self, name) > 0:
                raise SettingError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("initial_noise_factor", "regularize_noise_weight", "mse_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise SettingError(f"{name} must be a finite number >= 0, got {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_rate(config: ProjectionConfig, step: int) -> float:
    """The learning rate at ``step`` (0-based): ramp up, flat, half-cosine ramp down."""
    t = step / config.num_steps
    ramp = min(1.0, (1.0 - t) / config.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / config.lr_rampup_length)
    return config.initial_learning_rate * ramp


def latent_noise_scale(config: ProjectionConfig, step: int, w_std: float) -> float:
    """Standard deviation of the noise added to the latent at ``step``."""
    t = step / config.num_steps
    return w_std * config.initial_noise_factor * max(0.0, 1.0 - t / config.noise_ramp_length) ** 2


@torch.no_grad()
def w_statistics(generator: Generator, num: int, seed: int, batch: int = 1000
                 ) -> tuple[torch.Tensor, float]:
    """(mean w ``[w_dim]``, RMS distance of w from it) of ``num`` mapped z ~ N(0, I) drawn on the
    CPU from ``seed`` (projector.py's starting point and latent-noise unit)."""
    rng = torch.Generator().manual_seed(int(seed))
    device = generator_device(generator)
    parts = []
    for start in range(0, num, batch):
        z = torch.randn(min(batch, num - start), generator.z_dim, generator=rng)
        parts.append(generator.mapping(z.to(device)).detach().to("cpu", torch.float64))
    w = torch.cat(parts)
    mean = w.mean(dim=0)
    std = float((w - mean).pow(2).sum(dim=1).mean().sqrt())
    return mean.float(), std


# -- noise inputs ------------------------------------------------------------------------------


def noise_layers(generator: Generator) -> dict[str, nn.Module]:
    """The synthesis layers whose constant noise input the generator reads, by module name
    (StyleGAN2 layers with ``use_noise`` while the generator's ``noise_mode`` is "const"); empty
    for a generator without noise inputs (the shipped shapes3d one, the oracle)."""
    if not isinstance(generator, nn.Module):
        return {}
    found = {}
    for name, module in generator.named_modules():
        if getattr(module, "noise_mode", "const") != "const":
            return {}
        if getattr(module, "use_noise", False) and NOISE_BUFFER in getattr(module, "_buffers", {}):
            found[name] = module
    return found


@contextlib.contextmanager
def noise_inputs(generator: Generator, noise: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """Within the block, every noise layer of ``generator`` reads ``noise[name]`` ``[n, h, w]``
    (one map per image of the batch) instead of its stored constant; restored afterwards."""
    layers = noise_layers(generator) if noise else {}
    saved = {}
    try:
        for name, module in layers.items():
            if name not in noise:
                raise ValueError(f"no noise map for layer {name!r}")
            saved[name] = module._buffers[NOISE_BUFFER]
            module._buffers[NOISE_BUFFER] = noise[name][:, None]
        yield
    finally:
        for name, value in saved.items():
            layers[name]._buffers[NOISE_BUFFER] = value


def render(generator: Generator, ws: torch.Tensor, noise: dict[str, torch.Tensor] | None = None,
           batch: int = 64) -> torch.Tensor:
    """Images (CPU float32 NCHW) of W+ codes ``[n, num_ws, w_dim]`` with per-image noise maps
    (``noise[name]`` ``[n, h, w]``, as ``project`` returns them) when given."""
    device = generator_device(generator)
    out = []
    with torch.no_grad():
        for start in range(0, len(ws), batch):
            part = {k: v[start:start + batch].to(device) for k, v in (noise or {}).items()}
            with noise_inputs(generator, part):
                images = generator.synthesize(ws[start:start + batch].to(device))
            out.append(images.detach().float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def noise_regularisation(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image ``[n]`` sum, over noise maps ``[n, h, w]`` and their 2x average-pooled pyramid
    down to 8 px, of the squared mean product of each map with itself shifted by one pixel
    (along each axis, wrapping around)."""
    total = None
    for noise in maps:
        x = noise[:, None]
        while True:
            for dim in (3, 2):
                term = (x * torch.roll(x, shifts=1, dims=dim)).flatten(1).mean(dim=1).pow(2)
                total = term if total is None else total + term
            if x.shape[2] <= 8:
                break
            x = F.avg_pool2d(x, kernel_size=2)
    if total is None:
        raise ValueError("no noise maps to regularise")
    return total


# -- the projector ------------------------------------------------------------------------------


@dataclass
class Projection:
    """What ``project`` found, per image: ``ws`` ``[n, num_ws, w_dim]`` (W mode: one w on every
    row), ``noise`` (layer name -> ``[n, h, w]``; empty without noise inputs), and at the final
    latent (no latent noise) the perceptual ``distance``, the pixel ``mse`` and the total
    ``loss`` (``distance + mse_weight * mse``), each ``[n]``. ``checkpoints``: step -> ws, for
    the steps asked for in ``record_steps`` (curves over steps from one run)."""

    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    distance: torch.Tensor
    mse: torch.Tensor
    loss: torch.Tensor
    config: ProjectionConfig
    seed: int
    checkpoints: dict[int, torch.Tensor] = field(default_factory=dict)


def check_targets(generator: Generator, targets: torch.Tensor) -> torch.Tensor:
    """``targets`` as float32 NCHW at the generator's size and channels, or a ValueError."""
    shape = (int(generator.img_channels), int(generator.resolution), int(generator.resolution))
    if targets.ndim != 4 or tuple(targets.shape[1:]) != shape or not targets.is_floating_point():
        raise ValueError(f"targets must be float images [n, {shape[0]}, {shape[1]}, {shape[2]}] "
                         f"in [-1, 1] (the generator's size), got {targets.dtype} "
                         f"{tuple(targets.shape)}")
    return targets.float()


def project_batches(
    generator: Any,
    targets: Sequence[torch.Tensor] | torch.Tensor,
    distance: PerceptualDistance,
    config: ProjectionConfig = ProjectionConfig(),
    *,
    seed: int = 0,
    progress: BarFactory | None = None,
    record_steps: Sequence[int] = (),
) -> Iterator[tuple[range, Projection]]:
    """Project ``targets`` batch by batch (``config.batch_size`` images), yielding each batch's
    index range in the whole set and its Projection as soon as it is done, so a caller can use
    and drop one batch before the next is projected. ``targets``: float NCHW images in [-1, 1]
    at the generator's size, or anything whose ``len`` is the number of images and whose slice
    ``targets[a:b]`` gives those images as such a tensor (converted only when projected)."""
    if hasattr(generator, "requires_grad_"):
        generator.requires_grad_(False)
    w_avg, w_std = w_statistics(generator, config.w_avg_samples, config.w_avg_seed)
    n = len(targets)
    batches = range(0, n, config.batch_size)
    bar = open_bar(progress, config.num_steps * len(batches), "project")
    try:
        for start in batches:
            index = range(start, min(start + config.batch_size, n))
            batch = check_targets(generator, targets[index.start:index.stop])
            yield index, _project_batch(generator, batch, index, distance, config, seed, w_avg,
                                        w_std, bar, set(int(s) for s in record_steps))
    finally:
        bar.close()


def project(
    generator: Generator,
    targets: torch.Tensor,
    distance: PerceptualDistance,
    config: ProjectionConfig = ProjectionConfig(),
    *,
    seed: int = 0,
    progress: BarFactory | None = None,
    record_steps: Sequence[int] = (),
) -> Projection:
    """Project ``targets`` (float NCHW in [-1, 1], the generator's size) into W or W+ of
    ``generator`` with the projector.py recipe (module docstring), in batches of
    ``config.batch_size``. ``progress(total, desc)`` makes a bar (``update``, ``close``) that
    advances once per step and batch."""
    targets = check_targets(generator, targets)
    parts = [part for _, part in project_batches(generator, targets, distance, config, seed=seed,
                                                 progress=progress, record_steps=record_steps)]
    return join(parts, config, seed)


def join(parts: Sequence[Projection], config: ProjectionConfig, seed: int) -> Projection:
    """One Projection of consecutive batches' ``parts``."""
    noise = {k: torch.cat([p.noise[k] for p in parts]) for k in (parts[0].noise if parts else {})}
    steps = parts[0].checkpoints if parts else {}
    return Projection(
        ws=torch.cat([p.ws for p in parts]), noise=noise,
        distance=torch.cat([p.distance for p in parts]), mse=torch.cat([p.mse for p in parts]),
        loss=torch.cat([p.loss for p in parts]), config=config, seed=int(seed),
        checkpoints={s: torch.cat([p.checkpoints[s] for p in parts]) for s in steps})


def _image_streams(seed: int, index: range) -> list[torch.Generator]:
    """One CPU torch generator per image, seeded by (seed, the image's index in the set)."""
    streams = []
    for i in index:
        low, high = np.random.SeedSequence([int(seed), int(i)]).generate_state(2, np.uint32)
        streams.append(torch.Generator().manual_seed((int(high) << 31) ^ int(low)))
    return streams


def _draw(streams: list[torch.Generator], shape: Sequence[int]) -> torch.Tensor:
    """A standard normal tensor ``[len(streams), *shape]``, image i's part from stream i."""
    return torch.stack([torch.randn(*shape, generator=g) for g in streams])


def _project_batch(
    generator: Generator, targets: torch.Tensor, index: range, distance: PerceptualDistance,
    config: ProjectionConfig, seed: int, w_avg: torch.Tensor, w_std: float, bar: Bar,
    record: set[int],
) -> Projection:
    device = generator_device(generator)
    num_ws = int(generator.num_ws)
    rows = 1 if config.space == "w" else num_ws
    streams = _image_streams(seed, index)
    n = len(targets)
    targets = targets.to(device)
    with torch.no_grad():
        target_features = [f.detach() for f in distance.features(targets)]
    w_opt = w_avg.to(device).reshape(1, 1, -1).repeat(n, rows, 1).requires_grad_(True)
    layers = noise_layers(generator)
    noise = {name: _draw(streams, module._buffers[NOISE_BUFFER].shape).to(device)
             .requires_grad_(True) for name, module in layers.items()}
    optimizer = torch.optim.Adam([w_opt, *noise.values()], betas=(0.9, 0.999),
                                 lr=config.initial_learning_rate)
    checkpoints: dict[int, torch.Tensor] = {}
    for step in range(config.num_steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        scale = latent_noise_scale(config, step, w_std)
        jitter = _draw(streams, w_opt.shape[1:]).to(device) * scale
        ws = (w_opt + jitter).expand(-1, num_ws, -1) if rows == 1 else w_opt + jitter
        with noise_inputs(generator, noise):
            images = generator.synthesize(ws)
        loss = distance.between(distance.features(images), target_features)
        if config.mse_weight:
            loss = loss + config.mse_weight * (images - targets).pow(2).flatten(1).mean(dim=1)
        if noise:
            loss = loss + config.regularize_noise_weight * noise_regularisation(
                list(noise.values()))
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        with torch.no_grad():
            for buf in noise.values():
                buf -= buf.mean(dim=(1, 2), keepdim=True)
                buf *= buf.square().mean(dim=(1, 2), keepdim=True).rsqrt()
        if step + 1 in record:
            checkpoints[step + 1] = w_opt.detach().expand(-1, num_ws, -1).cpu().clone()
        bar.update(1)
    final = w_opt.detach().expand(-1, num_ws, -1).contiguous()
    maps = {k: v.detach() for k, v in noise.items()}
    with torch.no_grad(), noise_inputs(generator, maps):
        images = generator.synthesize(final)
        dist = distance(images, targets)
        mse = (images - targets).pow(2).flatten(1).mean(dim=1)
    return Projection(ws=final.cpu().float(), noise={k: v.cpu() for k, v in maps.items()},
                      distance=dist.cpu().float(), mse=mse.cpu().float(),
                      loss=(dist + config.mse_weight * mse).cpu().float(), config=config,
                      seed=int(seed), checkpoints=checkpoints)


__all__ = ["SPACES", "Projection", "ProjectionConfig", "join", "learning_rate", "noise_inputs",
           "noise_layers", "noise_regularisation", "project", "project_batches", "render",
           "w_statistics"]
