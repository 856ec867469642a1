"""What the VAE baselines and the group VAE share: seeding, data batches, the step loop with
progress, and the trained encoder (``represent`` = posterior mean, safetensors + JSON on disk).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file

from core.config import check_ranges
from core.io import write_tensors_and_json
from core.progress import StepCallback
from datasets.base import GroundTruthData
from models.bundle import Bundle
from models.vae import VAE, VAEArchitecture, build_vae, images_to_tensor

ENCODER_FORMAT = "disentangle-bench/vae-encoder"
ENCODER_VERSION = 1
WEIGHTS_FILE = "vae.safetensors"
META_FILE = "vae.json"

class SeedStreams:
    """Independent random streams derived from one integer seed (SeedSequence children).

    ``numpy(name)`` and ``torch_seed(name)`` give a fresh stream per consumer name, so adding a
    consumer never shifts another's draws.
    """

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)

    def _sequence(self, name: str) -> np.random.SeedSequence:
        key = [int(b) for b in name.encode("utf-8")]
        return np.random.SeedSequence([self.seed, *key])

    def numpy(self, name: str) -> np.random.Generator:
        return np.random.default_rng(self._sequence(name))

    def torch_seed(self, name: str) -> int:
        return int(self._sequence(name).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

    def torch(self, name: str) -> torch.Generator:
        return torch.Generator().manual_seed(self.torch_seed(name))


class GroundTruthBatches:
    """Uniform i.i.d. minibatches of ground-truth images as float NCHW tensors in [0, 1].

    Renders ``chunk`` batches at a time (one vectorised ``sample`` call) from an explicit rng.
    """

    def __init__(self, ground_truth: GroundTruthData, batch_size: int, rng: np.random.Generator,
                 chunk: int = 8) -> None:
        shape = tuple(ground_truth.observation_shape)
        if len(shape) != 3 or shape[:2] != (64, 64) or shape[2] not in (1, 3):
            raise ValueError(
                f"{getattr(ground_truth, 'name', 'ground truth')}: the VAE needs 64x64 images with"
                f" 1 or 3 channels, got observation_shape {shape}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.ground_truth = ground_truth
        self.channels = shape[2]
        self.batch_size = batch_size
        self.rng = rng
        self.chunk = chunk
        self._pending: list[torch.Tensor] = []

    def next(self) -> torch.Tensor:
        if not self._pending:
            _, images = self.ground_truth.sample(self.batch_size * self.chunk, self.rng)
            tensor = images_to_tensor(np.asarray(images), self.channels)
            self._pending = list(tensor.split(self.batch_size))[::-1]
        return self._pending.pop()


def run_steps(
    total: int,
    step: Callable[[int], dict[str, float]],
    progress: StepCallback | None = None,
    description: str = "train",
    history_every: int = 50,
) -> list[dict[str, float]]:
    """Call ``step(i)`` for i in 0..total-1; return mean losses per ``history_every`` steps.
    ``progress`` hears every step; None shows a tqdm bar on an interactive stderr.

    A non-finite loss stops training with a clear error instead of writing NaN weights.
    """
    if total < 1:
        raise ValueError(f"the number of training steps must be >= 1, got {total}")
    bar = None
    if progress is None:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=description, disable=not sys.stderr.isatty(), leave=False)
    history: list[dict[str, float]] = []
    window: dict[str, float] = {}
    count = 0
    try:
        for i in range(total):
            losses = step(i)
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise FloatingPointError(f"{description}: non-finite {', '.join(bad)} at step {i}")
            for key, value in losses.items():
                window[key] = window.get(key, 0.0) + value
            count += 1
            if count == history_every or i == total - 1:
                history.append({"step": i + 1, **{k: v / count for k, v in window.items()}})
                window, count = {}, 0
            if bar is not None:
                bar.update(1)
                if i % 20 == 0:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
            elif progress is not None:
                progress(i + 1, total, losses)
    finally:
        if bar is not None:
            bar.close()
    return history


def adam(params: Any, lr: float, betas: tuple[float, float], eps: float = 1e-8
         ) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)


@dataclass(frozen=True)
class AdamSettings:
    """The VAE trainers' optimiser settings, with their ranges and the range check, shared by the
    β-VAE, FactorVAE and group-VAE configs (and DisCo's, one Adam over navigator and encoder).
    A dataclass lists its bases' fields first (the last base's first), so a config that keeps
    these three after its own names its own leading fields in a second base:
    ``class XConfig(AdamSettings, XModelSettings)``."""

    lr: float = 1e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8

    RANGES: ClassVar[dict[str, str]] = {
        "lr": "(0, inf)", "adam_betas": "[0, 1)", "adam_eps": "(0, inf)"}

    def __post_init__(self) -> None:
        check_ranges(self)

    def optimizer(self, params: Any) -> torch.optim.Adam:
        """Adam over ``params`` with these settings."""
        return adam(params, self.lr, self.adam_betas, self.adam_eps)


# Images per encoder forward in ``VAEEncoder.represent``: the activations of 64 images (the first
# conv's output is 8 MB) stay clear of the allocator's fresh-mapping path that larger batches hit
# on every call (page faults), about 2x less CPU per image than 256 on one thread.
REPRESENT_BATCH = 64


class VAEEncoder:
    """A trained VAE used as a representation: ``represent`` returns the posterior mean.

    Saved as ``vae.safetensors`` (full VAE, so decoding stays possible) + ``vae.json``
    (architecture and free-form metadata such as the config, seed and loss history).
    """

    def __init__(self, vae: VAE, meta: dict[str, Any] | None = None) -> None:
        self.vae = vae.eval()
        self.meta = dict(meta or {})

    @property
    def arch(self) -> VAEArchitecture:
        return self.vae.arch

    @property
    def num_latents(self) -> int:
        return self.vae.arch.num_latents

    def represent(self, observations: np.ndarray, batch_size: int = REPRESENT_BATCH
                  ) -> np.ndarray:
        """uint8 (n, 64, 64, C) -> posterior means float32 (n, num_latents).

        Encoded in ``ceil(n / batch_size)`` near-equal batches (each at least ``batch_size / 2``
        images when n > ``batch_size``): small enough for the activations to stay in cache, and
        a row's code does not depend on the batch it is in (size >= 12, position, other rows;
        checked in ``tests/test_vae_models.py``), hence ``represent.batch_invariant``.
        """
        images_to_tensor(observations[:0], self.arch.channels)  # validates shape and dtype
        n = len(observations)
        out = np.empty((n, self.num_latents), dtype=np.float32)
        pieces = max(1, -(-n // batch_size))
        bounds = [n * i // pieces for i in range(pieces + 1)]
        with torch.inference_mode():
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
                chunk = images_to_tensor(observations[start:stop], self.arch.channels)
                out[start:stop] = self.vae.encoder(chunk)[0].numpy()
        return out

    represent.batch_invariant = True  # type: ignore[attr-defined]

    @torch.no_grad()
    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes (n, num_latents) -> uint8 images (n, 64, 64, C) (sigmoid of the logits)."""
        codes = np.asarray(codes, dtype=np.float32)
        if codes.ndim != 2 or codes.shape[1] != self.num_latents:
            raise ValueError(f"codes must have shape (n, {self.num_latents}), got {codes.shape}")
        probs = torch.sigmoid(self.vae.decoder(torch.from_numpy(codes)))
        return (probs * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def save(self, directory: str | Path) -> None:
        """Write weights and metadata atomically (temp names in ``directory``, then rename)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().clone() for k, v in self.vae.state_dict().items()}
        info = {
            "format": ENCODER_FORMAT,
            "version": ENCODER_VERSION,
            "architecture": self.arch.to_dict(),
            "representation": "posterior mean",
            "meta": self.meta,
        }
        write_tensors_and_json(directory, WEIGHTS_FILE, tensors, META_FILE, info)

    @classmethod
    def load(cls, directory: str | Path) -> VAEEncoder:
        directory = Path(directory)
        weights, meta_path = directory / WEIGHTS_FILE, directory / META_FILE
        for path in (weights, meta_path):
            if not path.is_file():
                raise FileNotFoundError(f"VAE encoder file missing: {path}")
        try:
            info = json.loads(meta_path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{meta_path}: not valid JSON ({err})") from None
        if info.get("format") != ENCODER_FORMAT:
            raise ValueError(f"{meta_path}: expected format {ENCODER_FORMAT!r}, "
                             f"got {info.get('format')!r}")
        arch = VAEArchitecture(**info["architecture"])
        vae = VAE(arch)
        state = load_file(str(weights))
        try:
            vae.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{weights}: weights do not match architecture {arch}: {err}"
                             ) from None
        return cls(vae, info.get("meta", {}))


@dataclass
class VAETraining:
    """What every ground-truth VAE trainer starts from: named seed streams, the batch source,
    the freshly initialised VAE (train mode), its reparameterisation noise and its Adam."""

    streams: SeedStreams
    batches: GroundTruthBatches
    vae: VAE
    noise: torch.Generator
    optimizer: torch.optim.Adam


def start_vae_training(ground_truth: GroundTruthData, config: Any, seed: int) -> VAETraining:
    """Build the shared training state from ``config`` (num_latents, batch_size and the
    ``AdamSettings``); each random consumer draws from its own named stream of ``seed``."""
    streams = SeedStreams(seed)
    batches = GroundTruthBatches(ground_truth, config.batch_size, streams.numpy("data"))
    arch = VAEArchitecture(config.num_latents, batches.channels)
    vae = build_vae(arch, streams.torch_seed("init")).train()
    optimizer = config.optimizer(vae.parameters())
    return VAETraining(streams, batches, vae, streams.torch("noise"), optimizer)


def finish_vae_training(method: str, ground_truth: GroundTruthData, config: Any, seed: int,
                        vae: VAE,
                        step: Callable[[int], dict[str, float]],
                        progress: StepCallback | None = None) -> VAEEncoder:
    """Run ``config.steps`` steps of ``step`` and wrap ``vae`` as an encoder whose metadata
    records the method, config, seed, ground truth and loss history."""
    history = run_steps(config.steps, step, progress, description=method)
    meta = {"method": method, "config": dataclasses.asdict(config), "seed": int(seed),
            "ground_truth": getattr(ground_truth, "name", None), "loss_history": history}
    return VAEEncoder(vae, meta)


def load_vae_encoder(directory: str | Path) -> VAEEncoder:
    """``load_output`` of the VAE methods: rebuild the encoder that ``save`` wrote."""
    return VAEEncoder.load(directory)


def fresh_encoder(arch: VAEArchitecture, seed: int) -> VAEEncoder:
    """An untrained, seeded VAE as an encoder (the random-encoder baseline)."""
    return VAEEncoder(build_vae(arch, seed), {"trained": False, "seed": seed})


def require_ground_truth(bundle: Bundle, method: str) -> GroundTruthData:
    ground_truth = getattr(bundle, "ground_truth", None)
    if ground_truth is None:
        raise ValueError(f"{method} needs a dataset with ground-truth images; "
                         f"{getattr(bundle, 'name', bundle)!r} has none")
    return ground_truth


