"""Attribute predictor: a small CNN classifying every ground-truth factor of an image.

Used to score generated images (which factor values a traversal changes, how realistic a
generator's images are). Layout: four 4×4 stride-2 convolutions (32, 32, 64, 64 channels, ReLU)
take a 64×64 image to 64×4×4, a dense layer gives 256 penultimate features (ReLU), and one linear
classification head per factor gives that factor's logits.

Entry point: images float NCHW in [-1, 1] (what ``Generator.synthesize`` returns). uint8 NHWC
images (what ``GroundTruthData.observations`` returns) go through ``uint8_to_input`` first.
Weights live as ``name.safetensors`` with an architecture/provenance JSON beside them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from core.errors import DataError
from core.io import atomic_path

RESOLUTION = 64
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHAPES3D_PREDICTOR = WEIGHTS_DIR / "shapes3d_predictor.safetensors"


@dataclass(frozen=True)
class PredictorArchitecture:
    """What fixes the network's shapes (stored in the JSON beside the weights)."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    channels: int = 3
    resolution: int = RESOLUTION
    conv_channels: tuple[int, ...] = (32, 32, 64, 64)
    hidden: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "factor_names", tuple(str(n) for n in self.factor_names))
        object.__setattr__(self, "factor_sizes", tuple(int(s) for s in self.factor_sizes))
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        if len(self.factor_names) != len(self.factor_sizes) or not self.factor_names:
            raise ValueError(
                f"factor_names {self.factor_names} and factor_sizes {self.factor_sizes} must be "
                "non-empty and of equal length"
            )
        if any(s < 2 for s in self.factor_sizes):
            raise ValueError(f"every factor needs >= 2 classes, got {self.factor_sizes}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.resolution != RESOLUTION or len(self.conv_channels) != 4:
            raise ValueError(
                f"the predictor expects {RESOLUTION}x{RESOLUTION} images and 4 conv layers, got "
                f"resolution {self.resolution}, conv_channels {self.conv_channels}"
            )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["factor_names"] = list(self.factor_names)
        out["factor_sizes"] = list(self.factor_sizes)
        out["conv_channels"] = list(self.conv_channels)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictorArchitecture:
        keys = ("factor_names", "factor_sizes", "channels", "resolution", "conv_channels",
                "hidden")
        missing = [k for k in ("factor_names", "factor_sizes") if k not in data]
        if missing:
            raise ValueError(f"predictor architecture lacks {missing}")
        return cls(**{k: data[k] for k in keys if k in data})


class AttributePredictor(nn.Module):
    """Images NCHW in [-1, 1] -> one logit vector per factor (plus penultimate features)."""

    def __init__(self, arch: PredictorArchitecture) -> None:
        super().__init__()
        self.arch = arch
        layers: list[nn.Module] = []
        c_in = arch.channels
        for c_out in arch.conv_channels:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
            c_in = c_out
        spatial = arch.resolution // 2 ** len(arch.conv_channels)
        layers += [nn.Flatten(), nn.Linear(c_in * spatial * spatial, arch.hidden), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(arch.hidden, size) for size in arch.factor_sizes)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.arch.factor_names

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self.arch.factor_sizes

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        shape = (self.arch.channels, self.arch.resolution, self.arch.resolution)
        if images.ndim != 4 or tuple(images.shape[1:]) != shape:
            raise ValueError(
                f"predictor expects float images NCHW (n, {shape[0]}, {shape[1]}, {shape[2]}) in "
                f"[-1, 1], got shape {tuple(images.shape)}"
            )
        if not images.is_floating_point():
            raise ValueError(
                f"predictor expects float images in [-1, 1], got {images.dtype}; convert uint8 "
                "NHWC images with uint8_to_input"
            )
        param = self.heads[0].weight
        return images.to(device=param.device, dtype=param.dtype)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Logits ``[n, size_k]`` for every factor k."""
        hidden = self.body(self._check(images))
        return [head(hidden) for head in self.heads]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[n, hidden]`` (after the ReLU)."""
        return self.body(self._check(images))

    def predict_proba(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Class probabilities ``[n, size_k]`` per factor."""
        return [torch.softmax(logits, dim=1) for logits in self(images)]

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Most likely class index per factor, int64 ``[n, K]``."""
        return torch.stack([logits.argmax(dim=1) for logits in self(images)], dim=1)


def uint8_to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC images (ground-truth observations) -> float32 NCHW in [-1, 1]."""
    tensor = torch.as_tensor(np.asarray(images)) if isinstance(images, np.ndarray) else images
    if tensor.dtype != torch.uint8 or tensor.ndim != 4:
        raise ValueError(
            f"expected uint8 images (n, H, W, C), got {tensor.dtype} {tuple(tensor.shape)}"
        )
    return tensor.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1.0


def build_predictor(arch: PredictorArchitecture, seed: int) -> AttributePredictor:
    """A freshly initialised predictor whose weights depend only on ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AttributePredictor(arch)


def batched_outputs(
    predictor: AttributePredictor, images: torch.Tensor, batch: int = 500
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(probabilities per factor, features) for many images, without gradients."""
    probs: list[list[torch.Tensor]] = [[] for _ in predictor.factor_sizes]
    feats = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            hidden = predictor.features(images[start : start + batch])
            for k, head in enumerate(predictor.heads):
                probs[k].append(torch.softmax(head(hidden), dim=1))
            feats.append(hidden)
    return [torch.cat(p) for p in probs], torch.cat(feats)


def save_predictor(
    predictor: AttributePredictor, path: str | os.PathLike[str], meta: dict[str, Any]
) -> None:
    """Write ``path`` (.safetensors) and the JSON beside it, each atomically."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"predictor weights path must end in .safetensors, got {path}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in predictor.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    info = {"architecture": predictor.arch.to_dict(), **meta}
    write_json_atomic(path.with_suffix(".json"), info)


def load_predictor(path: str | os.PathLike[str] = SHAPES3D_PREDICTOR) -> AttributePredictor:
    """Load weights + JSON written by ``save_predictor``; returns an eval-mode CPU model.

    A missing file is a FileNotFoundError, a file that is not what ``save_predictor`` writes a
    one-line DataError naming it."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise FileNotFoundError(f"attribute predictor {path} {what}: expected its .safetensors "
                                "weights (with the .json written beside them)")
    if not meta_path.is_file():
        raise FileNotFoundError(f"attribute predictor {path}: its architecture file "
                                f"{meta_path.name} is missing beside it (both are written by "
                                "`bench train-predictor`)")
    try:
        info = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"attribute predictor {path}: {meta_path.name} beside it is not valid "
                        "JSON") from None
    if not isinstance(info, dict) or "architecture" not in info:
        raise DataError(f"attribute predictor {path}: {meta_path.name} has no 'architecture' "
                        "entry")
    try:
        model = AttributePredictor(PredictorArchitecture.from_dict(info["architecture"]))
    except (TypeError, ValueError, KeyError) as err:
        raise DataError(f"attribute predictor {path}: bad 'architecture' in {meta_path.name} "
                        f"({err})") from None
    try:
        state = load_file(str(path))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise DataError(f"attribute predictor {path}: not a readable .safetensors file "
                        f"({str(err).splitlines()[0][:120] if str(err) else type(err).__name__})"
                        ) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise DataError(f"{path}: weights do not match the architecture in {meta_path}") from err
    model.eval()
    model.requires_grad_(False)
    model.info = info  # provenance (training command, accuracies) for callers that report it
    return model


def load_any_predictor(path: str | os.PathLike[str]) -> nn.Module:
    """A predictor in either format: the suite's own (``.safetensors`` + JSON with an
    ``architecture``, written by ``save_predictor``) or a user's TorchScript file with its
    description (``models.user_predictor``), told apart by the JSON beside the file."""
    from models.user_predictor import FORMAT, load_user_predictor

    path = Path(path)
    meta_path = path.with_suffix(".json")
    if meta_path.is_file():
        try:
            info = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            info = None
        if isinstance(info, dict) and info.get("format") == FORMAT:
            return load_user_predictor(path)
    return load_predictor(path)


def load_shapes3d_predictor() -> AttributePredictor:
    """The shipped predictor for the 3DShapes factor grid."""
    return load_predictor(SHAPES3D_PREDICTOR)


def write_json_atomic(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write sorted, indented JSON to a temp file in the same folder, then rename."""
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")


def accuracy_per_factor(
    predictor: AttributePredictor, images: torch.Tensor, factors: np.ndarray | torch.Tensor,
    batch: int = 500,
) -> list[float]:
    """Fraction of images whose predicted class equals the true factor index, per factor."""
    factors = torch.as_tensor(np.asarray(factors), dtype=torch.int64)
    probs, _ = batched_outputs(predictor, images, batch)
    return [float((p.argmax(dim=1) == factors[:, k]).double().mean()) for k, p in enumerate(probs)]


__all__: Sequence[str] = (
    "SHAPES3D_PREDICTOR", "AttributePredictor", "PredictorArchitecture", "accuracy_per_factor",
    "batched_outputs", "build_predictor", "load_predictor", "load_shapes3d_predictor",
    "save_predictor", "uint8_to_input", "write_json_atomic",
)
