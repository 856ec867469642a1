"""Resumable StyleGAN2 training on registered ground-truth data (CPU-sized recipe, spec 2.2/2.4).

Non-saturating logistic loss, lazy R1 every 16 D steps, Adam (0, 0.99) with lazy-regularisation
compensation for D, style mixing, EMA generator with rampup, no noise inputs, no path-length
regularisation; optionally (``--balance``) the factor-balance term of ``training.factor_balance``.
Every snapshot atomically writes ``state.pt`` (full training state, loadable with
``weights_only=True``), the EMA generator as a native checkpoint (``generator.safetensors`` +
``.json``) and a sample grid; re-running the same command continues from ``state.pt``.

    python -m training.train_gan --data shapes3d-synth --config tiny64 --out training-runs/x
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import datasets
from core.hashing import file_sha256
from core.io import atomic_path
from datasets.base import GroundTruthData
from models.generator import broadcast_ws
from models.stylegan2.config import PRESETS, StyleGAN2Config, get_preset
from models.stylegan2.discriminator import StyleGAN2Discriminator
from models.stylegan2.generator import StyleGAN2Generator
from models.stylegan2.native import load_generator as load_native_generator
from models.stylegan2.native import read_checkpoint_json, save_generator
from training.factor_balance import (
    CLASSIFIER_LR,
    FactorClassifier,
    balance_loss,
    batch_marginals,
    marginal_kl,
    uniform_marginals,
    update_marginals,
)

STATE_FORMAT = "disentangle-bench/stylegan2-train-state"
R1_INTERVAL = 16
# lazy R1 correction of D's Adam: lr * c and beta2 ** c, c = interval / (interval + 1)
D_LAZY_RATIO = R1_INTERVAL / (R1_INTERVAL + 1)
EMA_RAMPUP = 0.05
GRID_SIZE = 8


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters that define a run (stored in the state and the exported JSON)."""

    data: str
    config: str
    kimg: float
    batch: int
    seed: int
    gamma: float
    lr: float
    mixing: float
    ema_kimg: float
    snapshot_kimg: float
    tick_kimg: float
    balance: float = 0.0  # weight of the factor-balance term (training.factor_balance); 0: off


# R1 weight default. NVIDIA's 'auto' heuristic 0.0002 * res^2 / batch (0.05 at 64x64, batch 16)
# and gamma 1 both let D dominate and G collapse to one colour scheme within 10-20 kimg on
# shapes3d-synth (tiny64, batch 16); gamma 10 (rosinality's default, ContraFeat's lowest)
# kept samples diverse.
DEFAULT_GAMMA = 10.0


def default_gamma(resolution: int, batch: int) -> float:
    """NVIDIA's 'auto' R1 heuristic 0.0002 * res^2 / batch (for reference; not the default)."""
    return 0.0002 * resolution**2 / batch


def images_to_tensor(images: np.ndarray, resolution: int, channels: int,
                     memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1], area-downsampled to ``resolution`` if needed, laid
    out in ``memory_format``."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (n, H, W, C), got {images.dtype} {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32)
    x = x / 127.5 - 1.0
    if x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != channels:
        raise ValueError(f"data has {x.shape[1]} channels, the model expects {channels}")
    h = x.shape[2]
    if h != resolution:
        if h % resolution or x.shape[3] != h:
            raise ValueError(f"data resolution {h}x{x.shape[3]} cannot be area-downsampled to "
                             f"{resolution}")
        x = F.avg_pool2d(x, h // resolution)
    return x.contiguous(memory_format=memory_format)


def _atomic_save(obj: Any, target: Path, write: Any) -> None:
    """``write(obj, tmp_path)`` to a temp file beside ``target``, then rename it into place."""
    with atomic_path(target) as tmp:
        write(obj, str(tmp))


def save_image_grid(images: torch.Tensor, path: Path, cols: int = GRID_SIZE) -> None:
    """NCHW float in [-1, 1] -> PNG grid (written atomically)."""
    from PIL import Image

    x = (images.detach() * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()
    n, c, h, w = x.shape
    rows = math.ceil(n / cols)
    grid = torch.zeros(c, rows * h, cols * w, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[:, r * h:(r + 1) * h, k * w:(k + 1) * w] = x[i]
    arr = grid.permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if c == 1 else arr)
    _atomic_save(img, path, lambda im, tmp: im.save(tmp, format="PNG"))


# How the networks' 4-D weights and the image batches are laid out in memory. Channels-last
# is 1.08-1.21x faster per step on CPU through oneDNN (benchmarks/gan_step.py, docs/generator.md
# "Cost of a training step"); the values are the same up to float rounding, so it is a speed
# setting, not a hyper-parameter: it is not part of TrainOptions, and a state saved in one
# layout resumes in the other.
MEMORY_FORMATS = {"channels-last": torch.channels_last, "contiguous": torch.contiguous_format}
DEFAULT_MEMORY_FORMAT = "channels-last"


class GanTrainer:
    """Holds networks, optimisers and RNG streams; ``step`` runs one G + D iteration."""

    def __init__(self, config: StyleGAN2Config, options: TrainOptions,
                 ground_truth: GroundTruthData,
                 memory_format: str = DEFAULT_MEMORY_FORMAT) -> None:
        if memory_format not in MEMORY_FORMATS:
            raise ValueError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}, got "
                             f"{memory_format!r}")
        self.config = config
        self.options = options
        self.ground_truth = ground_truth
        self.memory_format = MEMORY_FORMATS[memory_format]
        self.torch_rng = torch.Generator().manual_seed(options.seed)
        self.data_rng = np.random.default_rng(options.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(options.seed)  # initial weights only; never the global stream later
            self.G = StyleGAN2Generator(config).train()
            self.D = StyleGAN2Discriminator(config).train()
            self.C = (FactorClassifier(config.resolution, config.img_channels,
                                       ground_truth.factor_sizes).train()
                      if options.balance > 0 else None)
        for net in (self.G, self.D, self.C):
            if net is not None:
                net.to(memory_format=self.memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.G_opt = torch.optim.Adam(self.G.parameters(), lr=options.lr, betas=(0.0, 0.99),
                                      eps=1e-8)
        self.D_opt = torch.optim.Adam(self.D.parameters(), lr=options.lr * D_LAZY_RATIO,
                                      betas=(0.0, 0.99**D_LAZY_RATIO), eps=1e-8)
        self.C_opt = (torch.optim.Adam(self.C.parameters(), lr=CLASSIFIER_LR)
                      if self.C is not None else None)
        # running predicted marginal of generated images, per factor
        self.marginals = uniform_marginals(ground_truth.factor_sizes)
        self.cur_nimg = 0
        self.iteration = 0
        self.elapsed_s = 0.0
        self.history: list[dict[str, float]] = []

    def _set_learning_rates(self) -> None:
        """G at ``options.lr``, D at ``options.lr * D_LAZY_RATIO``."""
        for group in self.G_opt.param_groups:
            group["lr"] = self.options.lr
        for group in self.D_opt.param_groups:
            group["lr"] = self.options.lr * D_LAZY_RATIO

    # ------------------------------------------------------------------ training
    def real_sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Factor indices int64 [batch, K] and images of one real batch."""
        factors, images = self.ground_truth.sample(self.options.batch, self.data_rng)
        return torch.from_numpy(factors), images_to_tensor(
            images, self.config.resolution, self.config.img_channels, self.memory_format)

    def real_batch(self) -> torch.Tensor:
        return self.real_sample()[1]

    def generate(self, n: int) -> torch.Tensor:
        """Images from G with style mixing; RNG use is identical whether or not mixing fires."""
        G, gen = self.G, self.torch_rng
        z = torch.randn(n, G.z_dim, generator=gen)
        z2 = torch.randn(n, G.z_dim, generator=gen)
        cutoff = int(torch.randint(1, G.num_ws, (), generator=gen)) if G.num_ws > 1 else 1
        mix = float(torch.rand((), generator=gen)) < self.options.mixing
        ws = broadcast_ws(G.mapping(z), G.num_ws)
        if mix:
            ws2 = broadcast_ws(G.mapping(z2, update_w_avg=False), G.num_ws)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return G.synthesize(ws)

    def step(self) -> dict[str, float]:
        opts, G, D = self.options, self.G, self.D
        losses: dict[str, float] = {}
        # generator: softplus(-D(G(z))) [+ balance * factor-balance penalty]
        G.requires_grad_(True)
        D.requires_grad_(False)
        fake_g = self.generate(opts.batch)
        loss_g = F.softplus(-D(fake_g)).mean()
        losses["loss_G"] = float(loss_g.detach())
        if self.C is not None:
            self.C.requires_grad_(False)
            batch = batch_marginals(self.C(fake_g))
            loss_g = loss_g + opts.balance * balance_loss(batch, self.marginals)
            self.marginals = update_marginals(self.marginals, batch)
            losses["balance_G"] = marginal_kl(self.marginals)
        self.G_opt.zero_grad(set_to_none=True)
        loss_g.backward()
        self.G_opt.step()
        # discriminator: softplus(D(fake)) + softplus(-D(real))
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = self.generate(opts.batch)
        real_factors, real = self.real_sample()
        logits_fake = D(fake)
        logits_real = D(real)
        loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        self.D_opt.zero_grad(set_to_none=True)
        loss_d.backward()
        self.D_opt.step()
        losses["loss_D"] = float(loss_d.detach())
        losses["D_real"] = float(logits_real.detach().mean())
        losses["D_fake"] = float(logits_fake.detach().mean())
        # lazy R1 on reals, scaled by the interval
        if opts.gamma > 0 and self.iteration % R1_INTERVAL == 0:
            real_req = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(D(real_req).sum(), real_req, create_graph=True)
            penalty = grad.square().sum(dim=[1, 2, 3])
            loss_r1 = (penalty * (opts.gamma / 2)).mean() * R1_INTERVAL
            self.D_opt.zero_grad(set_to_none=True)
            loss_r1.backward()
            self.D_opt.step()
            losses["r1_penalty"] = float(penalty.detach().mean())
        D.requires_grad_(False)
        if self.C is not None and self.C_opt is not None:
            self.C.requires_grad_(True)
            loss_c = self.C.loss(real, real_factors)
            self.C_opt.zero_grad(set_to_none=True)
            loss_c.backward()
            self.C_opt.step()
            self.C.requires_grad_(False)
            losses["loss_C"] = float(loss_c.detach())
        for name, value in losses.items():
            if not math.isfinite(value):
                raise FloatingPointError(f"training diverged: {name} = {value} at iteration "
                                         f"{self.iteration} ({self.cur_nimg} images)")
        self.cur_nimg += opts.batch
        self.iteration += 1
        self.update_ema()
        return losses

    @torch.no_grad()
    def update_ema(self) -> None:
        ema_nimg = self.options.ema_kimg * 1000
        ema_nimg = min(ema_nimg, self.cur_nimg * EMA_RAMPUP)
        beta = 0.5 ** (self.options.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain containers, tensors, numbers and strings only (``weights_only=True``-safe)."""
        return {
            "format": STATE_FORMAT,
            "options": asdict(self.options),
            "config": self.config.to_dict(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "G_opt": self.G_opt.state_dict(),
            "D_opt": self.D_opt.state_dict(),
            "torch_rng": self.torch_rng.get_state(),
            "data_rng": json.dumps(self.data_rng.bit_generator.state),
            "cur_nimg": self.cur_nimg,
            "iteration": self.iteration,
            "elapsed_s": self.elapsed_s,
            "history": list(self.history),
        } | ({"C": self.C.state_dict(), "C_opt": self.C_opt.state_dict(),
              "marginals": list(self.marginals)}
             if self.C is not None and self.C_opt is not None else {})

    def load_state_dict(self, state: dict[str, Any], source: str = "state") -> None:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"{source}: not a {STATE_FORMAT} file")
        if StyleGAN2Config.from_dict(state["config"]) != self.config:
            raise ValueError(f"{source}: saved model config differs from --config "
                             f"{self.options.config!r}; use another --out or the same config")
        saved = state["options"]
        for key in ("data", "batch", "seed"):
            if saved[key] != getattr(self.options, key):
                raise ValueError(f"{source}: saved {key}={saved[key]!r} differs from "
                                 f"{getattr(self.options, key)!r}; use another --out")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.G_opt.load_state_dict(state["G_opt"])
        self.D_opt.load_state_dict(state["D_opt"])
        self._lay_out_optimizer_moments(self.G_opt, self.D_opt)
        # the saved param groups carry the old learning rate: a resumed run uses this run's
        self._set_learning_rates()
        self.torch_rng.set_state(state["torch_rng"])
        self.data_rng.bit_generator.state = json.loads(state["data_rng"])
        self.cur_nimg = int(state["cur_nimg"])
        self.iteration = int(state["iteration"])
        self.elapsed_s = float(state["elapsed_s"])
        self.history = list(state["history"])
        # a state saved without the classifier (balance 0) starts it afresh
        if self.C is not None and self.C_opt is not None and "C" in state:
            self.C.load_state_dict(state["C"])
            self.C_opt.load_state_dict(state["C_opt"])
            self._lay_out_optimizer_moments(self.C_opt)
            if "marginals" in state:
                self.marginals = [m.float() for m in state["marginals"]]

    def _lay_out_optimizer_moments(self, *optimizers: torch.optim.Optimizer) -> None:
        """Loaded Adam moments in the parameters' memory format (a state may come from a run in
        the other layout; mixed layouts would compute the same, only slower)."""
        for optimizer in optimizers:
            for moments in optimizer.state.values():
                for key, value in moments.items():
                    if isinstance(value, torch.Tensor) and value.dim() == 4:
                        moments[key] = value.contiguous(memory_format=self.memory_format)


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``state.pt`` (or a compact state) safely: tensors and plain containers only."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training state {path} not found")
    return torch.load(path, map_location="cpu", weights_only=True)


# -- the compact state committed beside the shipped generator ---------------------------------
#
# Every committed version of a state file stays in the repository's history, so the committed
# one keeps only what cannot be rebuilt: G and D (and the factor-balance classifier of a
# ``--balance`` run) in float16, the running marginal, the RNG states and the history. Dropped:
# G_ema (it *is* the shipped generator, which the compact state names and checks by sha256) and
# every optimizer's moments: a resumed Adam starts afresh (step 0, bias-corrected), which a
# branch of the shipped run measured to be harmless on the quality curve (docs/generator.md,
# "Resuming without optimizer moments"). Compact states of an older format that kept second
# moments still load.


def _expand_optimizer(state: dict[str, Any]) -> dict[str, Any]:
    """An Adam state dict in float32 from a compact one (moments it lacks are zero)."""
    expanded = {}
    for key, saved in state["state"].items():
        second = saved["exp_avg_sq"].float()
        first = saved["exp_avg"].float() if "exp_avg" in saved else torch.zeros_like(second)
        expanded[key] = {"step": saved["step"], "exp_avg": first, "exp_avg_sq": second}
    return {"param_groups": state["param_groups"], "state": expanded}


def compact_state(state: dict[str, Any], generator_path: Path, state_path: Path
                  ) -> dict[str, Any]:
    """The committable form of a full training ``state`` whose G_ema is ``generator_path``."""
    nets = ("G", "D", "C")
    out = {k: v for k, v in state.items()
           if k not in (*nets, "G_ema", "G_opt", "D_opt", "C_opt")}
    out["compact"] = {
        "generator": os.path.relpath(generator_path, state_path.parent),
        "generator_sha256": file_sha256(generator_path),
    }
    for net in nets:
        if net in state:
            out[net] = {k: v.half() for k, v in state[net].items()}
            out[f"{net}_opt"] = {"param_groups": state[f"{net}_opt"]["param_groups"], "state": {}}
    return out


def expand_state(state: dict[str, Any], state_path: Path) -> dict[str, Any]:
    """A full training state from a compact one (G_ema read from the generator it names)."""
    info = state["compact"]
    generator = (state_path.parent / info["generator"]).resolve()
    if not generator.is_file() or file_sha256(generator) != info["generator_sha256"]:
        raise ValueError(f"{state_path}: its EMA generator {generator} is missing or differs "
                         "from the one it was saved with (sha256 mismatch)")
    out = {k: v for k, v in state.items() if k != "compact"}
    out["G_ema"] = load_native_generator(generator).state_dict()
    for net in ("G", "D", "C"):
        if net in state:
            out[net] = {k: v.float() for k, v in state[net].items()}
            out[f"{net}_opt"] = _expand_optimizer(state[f"{net}_opt"])
    return out


def export_compact_state(run_dir: str | os.PathLike[str], generator_path: str | os.PathLike[str],
                         target: str | os.PathLike[str]) -> Path:
    """Ship the last snapshot of ``run_dir``: its G_ema as a float16 generator at
    ``generator_path`` (with the snapshot's ``generator.json`` metadata) and the compact form of
    its ``state.pt`` at ``target``, which names that generator."""
    run_dir, target, generator_path = Path(run_dir), Path(target), Path(generator_path)
    state = load_training_state(run_dir / "state.pt")
    meta = read_checkpoint_json(run_dir / "generator.json")["meta"]
    kimg = state["cur_nimg"] / 1000
    if meta.get("kimg") != kimg:
        raise ValueError(f"{run_dir / 'generator.json'} (kimg {meta.get('kimg')}) is not the "
                         f"snapshot of {run_dir / 'state.pt'} (kimg {kimg})")
    G_ema = StyleGAN2Generator(StyleGAN2Config.from_dict(state["config"]))
    G_ema.load_state_dict(state["G_ema"])
    save_generator(G_ema, generator_path, extra_meta=meta | {"precision": "float16"},
                   dtype=torch.float16)
    _atomic_save(compact_state(state, generator_path, target), target, torch.save)
    return target


def _grid_latents(z_dim: int, seed: int) -> torch.Tensor:
    return torch.randn(GRID_SIZE * GRID_SIZE, z_dim, generator=torch.Generator().manual_seed(seed))


def train_generator(
    data_name: str,
    config_name: str,
    out_dir: str | os.PathLike[str],
    kimg: float,
    batch: int = 16,
    seed: int = 0,
    data_dir: str | None = None,
    resume: bool = True,
    snapshot_kimg: float = 4.0,
    progress: bool = True,
    *,
    gamma: float | None = None,
    lr: float = 0.002,
    mixing: float = 0.9,
    ema_kimg: float | None = None,
    tick_kimg: float | None = None,
    threads: int | None = None,
    command: str | None = None,
    ground_truth: GroundTruthData | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    balance: float = 0.0,
    memory_format: str = DEFAULT_MEMORY_FORMAT,
) -> dict[str, Any]:
    """Train (or continue training) until ``kimg`` thousand real images have been shown.

    ``ground_truth`` overrides loading ``data_name`` from the registry (tests use stubs).
    ``resume_from`` starts a new ``out_dir`` from a saved (full or compact) state.
    ``balance`` > 0 adds the factor-balance term (``training.factor_balance``) to G's loss.
    ``memory_format`` (``MEMORY_FORMATS``) is a speed setting: the values are the same up to
    float rounding.
    Returns a summary: kimg reached, iterations, last losses, output paths.
    """
    if batch < 1 or (batch % 4 and batch > 4):
        raise ValueError(f"batch must be positive and a multiple of 4 (minibatch-stddev group), "
                         f"got {batch}")
    if kimg <= 0 or snapshot_kimg <= 0:
        raise ValueError(f"kimg and snapshot_kimg must be positive, got {kimg}, {snapshot_kimg}")
    if ema_kimg is not None and not ema_kimg > 0:
        raise ValueError(f"ema_kimg must be positive, got {ema_kimg}")
    if not 0 <= mixing <= 1:
        raise ValueError(f"mixing must be a probability in [0, 1], got {mixing}")
    if not (math.isfinite(balance) and balance >= 0):
        raise ValueError(f"balance must be a finite weight >= 0, got {balance}")
    if threads is not None:
        torch.set_num_threads(threads)
    if tick_kimg is None:
        tick_kimg = min(1.0, snapshot_kimg / 2)
    config = get_preset(config_name)
    if ground_truth is None:
        ground_truth = datasets.load_ground_truth(data_name, data_dir)
    options = TrainOptions(
        data=data_name, config=config_name, kimg=float(kimg), batch=batch, seed=seed,
        gamma=DEFAULT_GAMMA if gamma is None else float(gamma),
        lr=lr, mixing=mixing,
        ema_kimg=batch * 10 / 32 if ema_kimg is None else float(ema_kimg),
        snapshot_kimg=float(snapshot_kimg), tick_kimg=float(tick_kimg), balance=float(balance),
    )
    if command is None:
        command = "python -m training.train_gan " + shlex.join([
            "--data", data_name, "--config", config_name, "--out", str(out_dir),
            "--kimg", f"{kimg:g}", "--batch", str(batch), "--seed", str(seed),
            "--gamma", f"{options.gamma:g}", "--lr", f"{lr:g}", "--mixing", f"{mixing:g}",
            "--ema-kimg", f"{options.ema_kimg:g}", "--snapshot-kimg", f"{snapshot_kimg:g}"]
            + (["--balance", f"{balance:g}"] if balance else []))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trainer = GanTrainer(config, options, ground_truth, memory_format)
    state_path = out / "state.pt"
    if resume and state_path.is_file():
        trainer.load_state_dict(load_training_state(state_path), source=str(state_path))
    elif resume_from is not None:
        source = Path(resume_from)
        saved = load_training_state(source)
        if "compact" in saved:
            saved = expand_state(saved, source)
        trainer.load_state_dict(saved, source=str(source))
    grid_z = _grid_latents(config.z_dim, seed)
    if not (out / "reals.png").exists():
        reals = ground_truth.sample(GRID_SIZE * GRID_SIZE, np.random.default_rng(seed + 1))[1]
        save_image_grid(images_to_tensor(reals, config.resolution, config.img_channels),
                        out / "reals.png")

    def snapshot() -> None:
        _atomic_save(trainer.state_dict(), state_path, torch.save)
        meta = {"command": command, "data": data_name, "config_name": config_name,
                "kimg": trainer.cur_nimg / 1000, "iterations": trainer.iteration, "seed": seed,
                "batch": batch, "gamma": options.gamma, "lr": lr, "mixing": mixing,
                "ema_kimg": options.ema_kimg, "balance": options.balance,
                "train_seconds": round(trainer.elapsed_s, 1),
                "threads": torch.get_num_threads(), "memory_format": memory_format,
                "generator": "G_ema"}
        save_generator(trainer.G_ema, out / "generator", extra_meta=meta)
        with torch.no_grad():
            images = torch.cat([trainer.G_ema(z) for z in grid_z.split(16)])
        save_image_grid(images, out / f"samples_kimg{trainer.cur_nimg // 1000:04d}.png")

    target_nimg = int(round(kimg * 1000))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(kimg, 3), initial=round(trainer.cur_nimg / 1000, 3), unit="kimg",
                   disable=not sys.stderr.isatty(), dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} kimg [{elapsed}<{remaining}]"
                              " {postfix}")
    tick_n = max(1, int(round(tick_kimg * 1000)))
    snap_n = max(1, int(round(snapshot_kimg * 1000)))
    next_tick = (trainer.cur_nimg // tick_n + 1) * tick_n
    next_snap = (trainer.cur_nimg // snap_n + 1) * snap_n
    tick_losses: list[dict[str, float]] = []
    tick_start, tick_nimg = time.perf_counter(), trainer.cur_nimg
    losses: dict[str, float] = {}
    wrote_snapshot = False
    with open(out / "log.jsonl", "a", encoding="utf-8") as log:
        while trainer.cur_nimg < target_nimg:
            t0 = time.perf_counter()
            losses = trainer.step()
            trainer.elapsed_s += time.perf_counter() - t0
            tick_losses.append(losses)
            wrote_snapshot = False
            if bar is not None:
                bar.update(options.batch / 1000)
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items() if k.startswith("loss")},
                                refresh=False)
            done = trainer.cur_nimg >= target_nimg
            if trainer.cur_nimg >= next_tick or done:
                seconds = time.perf_counter() - tick_start
                keys = sorted({k for d in tick_losses for k in d})
                record = {"kimg": trainer.cur_nimg / 1000, "iteration": trainer.iteration,
                          **{k: float(np.mean([d[k] for d in tick_losses if k in d]))
                             for k in keys},
                          "img_per_s": (trainer.cur_nimg - tick_nimg) / max(seconds, 1e-9),
                          "train_seconds": round(trainer.elapsed_s, 2), "time": time.time()}
                trainer.history.append(record)
                log.write(json.dumps(record) + "\n")
                log.flush()
                tick_losses, tick_start, tick_nimg = [], time.perf_counter(), trainer.cur_nimg
                next_tick += tick_n
            if trainer.cur_nimg >= next_snap or done:
                snapshot()
                wrote_snapshot = True
                next_snap += snap_n
        if not wrote_snapshot and not state_path.exists():
            snapshot()
    if bar is not None:
        bar.close()
    return {"kimg": trainer.cur_nimg / 1000, "iterations": trainer.iteration,
            "losses": losses, "state": str(state_path), "generator": str(out / "generator"),
            "train_seconds": trainer.elapsed_s}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train_gan",
                                description="Train a small StyleGAN2 on registered ground-truth "
                                            "data (resumes from OUT/state.pt).")
    p.add_argument("--data", required=True, help="ground-truth data name, e.g. shapes3d-synth")
    p.add_argument("--config", required=True,
                   help=f"StyleGAN2 preset: {', '.join(PRESETS)}")
    p.add_argument("--out", required=True, help="output folder (state.pt, generator.*, PNGs)")
    p.add_argument("--kimg", type=float, default=1000.0, help="train until this many kimg")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder with real data files, if any")
    p.add_argument("--gamma", type=float, default=DEFAULT_GAMMA, help="R1 weight")
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--mixing", type=float, default=0.9, help="style-mixing probability")
    p.add_argument("--ema-kimg", type=float, default=None,
                   help="half-life of the EMA generator in kimg (default batch * 10 / 32)")
    p.add_argument("--snapshot-kimg", type=float, default=4.0)
    p.add_argument("--balance", type=float, default=0.0,
                   help="weight of the factor-balance term in G's loss (0: off, the plain "
                        "StyleGAN2 objective; see training/factor_balance.py)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--memory-format", choices=sorted(MEMORY_FORMATS), default=DEFAULT_MEMORY_FORMAT,
                   help="layout of weights and images: channels-last is faster on CPU; the "
                        "values are the same up to float rounding (default %(default)s)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing OUT/state.pt")
    p.add_argument("--resume-from", default=None, metavar="STATE",
                   help="start OUT from this (full or compact) state when OUT has none "
                        "(the shipped generator's: docs/generator.md, 'Continue training')")
    p.add_argument("--export-compact", nargs=2, default=None, metavar=("GENERATOR", "TARGET"),
                   help="ship OUT's last snapshot: write its G_ema in float16 to GENERATOR and "
                        "the compact form of OUT/state.pt to TARGET, then exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.export_compact:
        target = export_compact_state(args.out, *args.export_compact)
        print(json.dumps({"compact_state": str(target), "bytes": target.stat().st_size}))
        return 0
    summary = train_generator(
        args.data, args.config, args.out, kimg=args.kimg, batch=args.batch, seed=args.seed,
        data_dir=args.data_dir, resume=not args.no_resume, snapshot_kimg=args.snapshot_kimg,
        gamma=args.gamma, lr=args.lr, mixing=args.mixing, ema_kimg=args.ema_kimg,
        threads=args.threads, command="python -m training.train_gan " + shlex.join(argv),
        resume_from=args.resume_from, balance=args.balance, memory_format=args.memory_format,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"} |
                     {"losses": summary["losses"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
