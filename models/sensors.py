"""Sensors: frozen feature extractors whose multi-stage feature maps the contrastive methods
compare (ContraFeat's "S").

A sensor maps NCHW images in [-1, 1] (raw generator output: no ImageNet normalisation, no
resize, as the paper's code feeds its AlexNet) to a list of feature maps ``[n, c_i, h_i, w_i]``.
Built-ins, registered in ``SENSORS`` like methods:

- ``alexnet``: torchvision's AlexNet ``features`` cut as in LPIPS after its five ReLUs (the
  paper's sensor). Weights come from a user-given torchvision-format file (``weights=`` or
  ``$BENCH_ALEXNET``); nothing is downloaded.
- ``pixels``: the image at full, 1/2 and 1/4 resolution (no weights).
- ``lpips-vgg``: VGG16 at LPIPS's five stages, with LPIPS's learned linear weights when given
  (``channel_weights``); torchvision weights (+ LPIPS's ``vgg.pth``) from a user-given path or
  ``$BENCH_LPIPS_VGG``. The projector's loss for users who have them (``models.perceptual``).
- ``shapes3d-disc``: the residual blocks (64, 32, 16 and 8 px) of the discriminator trained with
  the first shipped shapes3d generator (tiny64 at 50 kimg), shipped as
  ``models/weights/shapes3d_sensor.safetensors``. It stays fixed when a newer generator is
  shipped, so that cells on the oracle bundles keep their ids and results; its JSON names the
  training state it came from by sha256; ``training.sensor_export`` rebuilds it from that state.

``sensor_identity(name, weights)`` is what a cell id records about the sensor it used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from core.errors import DataError, SettingError
from core.hashing import file_sha256
from core.inputs import env_path
from core.registry import Registry
from models.stylegan2.config import StyleGAN2Config
from models.stylegan2.discriminator import DiscriminatorBlock

ALEXNET_ENV = "BENCH_ALEXNET"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHAPES3D_SENSOR = WEIGHTS_DIR / "shapes3d_sensor.safetensors"

WeightsArg = str | os.PathLike[str] | None
SensorFactory = Callable[[WeightsArg], nn.Module]


@dataclass(frozen=True)
class SensorSpec:
    """One registered sensor: ``build(weights)`` -> the network (images -> list of feature
    maps), and ``weights_path(weights)``: the file it would load (None: it needs none, or
    nobody named one)."""

    build: SensorFactory
    weights_path: Callable[[WeightsArg], str | os.PathLike[str] | None]


SENSORS: Registry[SensorSpec] = Registry("sensor")


def register_sensor(name: str, *, description: str,
                    weights_path: Callable[[WeightsArg], str | os.PathLike[str] | None]
                    ) -> Callable[[SensorFactory], SensorFactory]:
    """Register a factory ``(weights: str | None) -> nn.Module`` returning a list of maps."""

    def decorator(build: SensorFactory) -> SensorFactory:
        SENSORS.add(name, SensorSpec(build, weights_path), description=description)
        return build

    return decorator


def load_sensor(name: str, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """A frozen sensor in eval mode (``requires_grad`` off on every parameter)."""
    sensor = SENSORS.get(name).build(weights)
    sensor.eval().requires_grad_(False)
    return sensor


def sensor_identity(name: str, weights: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What identifies a sensor for caching: its name and its weight file (sha256 when small)."""
    path = SENSORS.get(name).weights_path(weights)
    if path is None:
        return {"name": name, "weights": None}
    path = Path(path).expanduser()
    if not path.is_file():
        return {"name": name, "weights": str(path), "missing": True}
    if path.stat().st_size <= 64 << 20:
        digest = file_sha256(path)
        return {"name": name, "weights": path.name, "sha256": digest}
    stat = path.stat()
    return {"name": name, "weights": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


# -- AlexNet (LPIPS cut) ---------------------------------------------------------------------

# torchvision's AlexNet.features indices; the five slices end after each ReLU (LPIPS).
ALEXNET_CONVS = {0: (3, 64, 11, 4, 2), 3: (64, 192, 5, 1, 2), 6: (192, 384, 3, 1, 1),
                 8: (384, 256, 3, 1, 1), 10: (256, 256, 3, 1, 1)}
ALEXNET_SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
ALEXNET_KEYS = tuple(f"features.{i}.{p}" for i in ALEXNET_CONVS for p in ("weight", "bias"))


class AlexNetSensor(nn.Module):
    """AlexNet ``features[:12]`` with torchvision's module indices; returns the 5 ReLU maps."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(12):
            if index in ALEXNET_CONVS:
                c_in, c_out, k, stride, pad = ALEXNET_CONVS[index]
                layers.append(nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad))
            elif index in (1, 4, 7, 9, 11):
                layers.append(nn.ReLU(inplace=False))
            else:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        self.features = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        maps = []
        x = images
        for start, end in ALEXNET_SLICES:
            for index in range(start, end):
                x = self.features[index](x)
            maps.append(x)
        return maps


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a torch file (``weights_only``: no code runs); a
    file that cannot be read as one is a one-line DataError naming it."""
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line error
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        kind = ".safetensors file" if path.suffix == ".safetensors" else "torch state dict"
        raise DataError(f"{path}: not a readable {kind} ({first[:160]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DataError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return {str(k): v for k, v in state.items() if torch.is_tensor(v)}


def alexnet_weights_path(weights: str | os.PathLike[str] | None) -> Path | None:
    """The AlexNet weights: ``weights`` if given, else ``$BENCH_ALEXNET`` (which must name a
    file when set), else None."""
    if weights:
        return Path(weights).expanduser()
    return env_path(ALEXNET_ENV, kind="file", expected="torchvision AlexNet weights (.pth or "
                    ".safetensors)")


@register_sensor(
    "alexnet",
    description="AlexNet features, LPIPS cut (5 ReLU stages); torchvision weights from a given "
    f"path or ${ALEXNET_ENV}",
    weights_path=alexnet_weights_path,
)
def alexnet_sensor(weights: str | os.PathLike[str] | None = None) -> nn.Module:
    path = alexnet_weights_path(weights)
    expected = "torchvision AlexNet weights (keys features.{0,3,6,8,10}.{weight,bias})"
    if path is None:
        raise FileNotFoundError(f"sensor 'alexnet': no weights given; set ${ALEXNET_ENV} (or the "
                                f"method's sensor_weights) to a file with {expected}")
    if not path.is_file():
        raise FileNotFoundError(f"sensor 'alexnet': weights file {path} not found; expected "
                                f"{expected}")
    state = read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing = [k for k in ALEXNET_KEYS if k not in state]
    if missing:
        raise DataError(f"{path}: not {expected}; missing {', '.join(missing[:4])}"
                        f"{' ...' if len(missing) > 4 else ''}")
    sensor = AlexNetSensor()
    try:
        sensor.load_state_dict({k: state[k].float() for k in ALEXNET_KEYS})
    except RuntimeError as err:
        raise DataError(f"{path}: tensor shapes do not match {expected} "
                        f"({str(err).splitlines()[-1].strip()[:160]})") from None
    return sensor


# -- pixels: a parameter-free multi-scale sensor ------------------------------------------------


class PixelSensor(nn.Module):
    """The image itself at full, 1/2 and 1/4 resolution (average pooling): a sensor without
    learned features, for generators whose factors change colours and layout directly.
    ``unit_normalise`` False: a perceptual distance compares its maps raw (``models.perceptual``).
    """

    unit_normalise = False

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        half = torch.nn.functional.avg_pool2d(images, 2)
        return [images, half, torch.nn.functional.avg_pool2d(half, 2)]


@register_sensor(
    "pixels",
    description="the image at full, 1/2 and 1/4 resolution (no learned features, no weights)",
    weights_path=lambda weights: None,
)
def pixel_sensor(weights: str | os.PathLike[str] | None = None) -> nn.Module:
    if weights:
        raise SettingError(f"sensor 'pixels' takes no weights (got {weights})")
    return PixelSensor()


# -- VGG16 with LPIPS's linear weights ---------------------------------------------------------

LPIPS_VGG_ENV = "BENCH_LPIPS_VGG"
# torchvision's VGG16.features indices of the convolutions; LPIPS reads the ReLU after the last
# convolution of each of the five blocks (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3)
VGG16_CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256),
               12: (256, 256), 14: (256, 256), 17: (256, 512), 19: (512, 512), 21: (512, 512),
               24: (512, 512), 26: (512, 512), 28: (512, 512)}
VGG16_POOLS = (4, 9, 16, 23)
VGG16_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
VGG16_KEYS = tuple(f"features.{i}.{p}" for i in VGG16_CONVS for p in ("weight", "bias"))
LPIPS_LIN_KEYS = tuple(f"lin{k}.model.1.weight" for k in range(5))
# LPIPS's input scaling of images in [-1, 1] (its ScalingLayer)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


class VGG16LPIPSSensor(nn.Module):
    """VGG16 ``features[:30]`` (torchvision's indices) behind LPIPS's input scaling; returns
    the five LPIPS stages. ``channel_weights`` holds LPIPS's learned linear weights per stage
    when they were given (``models.perceptual`` then computes LPIPS exactly), else None."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(30):
            if index in VGG16_CONVS:
                c_in, c_out = VGG16_CONVS[index]
                layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            elif index in VGG16_POOLS:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(nn.ReLU(inplace=False))
        self.features = nn.Sequential(*layers)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).reshape(1, 3, 1, 1))
        self.channel_weights: list[torch.Tensor] | None = None

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        x = (images - self.shift) / self.scale
        maps = []
        for start, end in VGG16_SLICES:
            for index in range(start, end):
                x = self.features[index](x)
            maps.append(x)
        return maps


def lpips_vgg_paths(weights: str | os.PathLike[str] | None) -> list[Path] | None:
    """The files of the ``lpips-vgg`` sensor: ``weights`` if given, else ``$BENCH_LPIPS_VGG``;
    one file, or two joined by the path separator (torchvision's VGG16 weights, then LPIPS's
    ``vgg.pth`` linear layers). None when neither is set."""
    text = str(weights) if weights else os.environ.get(LPIPS_VGG_ENV, "").strip()
    if not text:
        return None
    return [Path(part).expanduser() for part in text.split(os.pathsep) if part]


def _lpips_vgg_weights_path(weights: str | os.PathLike[str] | None) -> Path | None:
    paths = lpips_vgg_paths(weights)
    return paths[0] if paths else None


@register_sensor(
    "lpips-vgg",
    description="VGG16 features at LPIPS's five stages with LPIPS's linear weights when given "
    f"(LPIPS-VGG); torchvision VGG16 weights [+ LPIPS vgg.pth] from a given path or "
    f"${LPIPS_VGG_ENV}",
    weights_path=_lpips_vgg_weights_path,
)
def lpips_vgg_sensor(weights: str | os.PathLike[str] | None = None) -> nn.Module:
    paths = lpips_vgg_paths(weights)
    expected = ("torchvision VGG16 weights (keys features.N.weight/bias), optionally with "
                "LPIPS's linear layers (lin0..lin4.model.1.weight) in the same or a second "
                f"file joined by {os.pathsep!r}")
    if not paths:
        raise FileNotFoundError(f"sensor 'lpips-vgg': no weights given; set ${LPIPS_VGG_ENV} to "
                                f"{expected}")
    state: dict[str, torch.Tensor] = {}
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"sensor 'lpips-vgg': weights file {path} not found; "
                                    f"expected {expected}")
        state.update({k.removeprefix("module."): v for k, v in read_state_dict(path).items()})
    missing = [k for k in VGG16_KEYS if k not in state]
    if missing:
        raise DataError(f"{paths[0]}: not {expected}; missing {', '.join(missing[:4])}"
                        f"{' ...' if len(missing) > 4 else ''}")
    sensor = VGG16LPIPSSensor()
    try:
        sensor.load_state_dict({**{k: state[k].float() for k in VGG16_KEYS},
                                "shift": sensor.shift, "scale": sensor.scale})
    except RuntimeError as err:
        raise DataError(f"{paths[0]}: tensor shapes do not match {expected} "
                        f"({str(err).splitlines()[-1].strip()[:160]})") from None
    lin = [state.get(k) for k in LPIPS_LIN_KEYS]
    if all(w is not None for w in lin):
        channels = [VGG16_CONVS[end - 2][1] for _, end in VGG16_SLICES]
        if [int(w.numel()) for w in lin] != channels:
            raise DataError(f"{paths[-1]}: LPIPS linear weights of {[w.numel() for w in lin]} "
                            f"channels, expected {channels}")
        sensor.channel_weights = [w.float().reshape(-1) for w in lin]
    return sensor


# -- the shapes3d discriminator's blocks -------------------------------------------------------


class DiscriminatorSensor(nn.Module):
    """The residual blocks of a StyleGAN2 discriminator (no minibatch-std head); returns each
    block's output map, highest resolution first."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.block_resolutions = [r for r in reversed(config.block_resolutions) if r > 4]
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(
                config.disc_channels_at(res), config.disc_channels_at(res // 2),
                config.img_channels,
                first=res == config.resolution, conv_clamp=config.conv_clamp))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of NCHW ``images`` at the discriminator's resolution; images a whole
        multiple larger (a 32-px generator seen at 64 px) are area-downsampled to it first."""
        res = self.config.resolution
        size = images.shape[-1] if images.ndim == 4 else 0
        if size > res and size % res == 0 and images.shape[-2] == size:
            images = nn.functional.avg_pool2d(images, size // res)
        expected = (self.config.img_channels, res, res)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"sensor expects images [n, {expected[0]}, {expected[1]}, "
                             f"{expected[2]}], got {tuple(images.shape)}")
        maps = []
        x = images
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x)
            maps.append(x)
        return maps


def disc_weights_path(weights: str | os.PathLike[str] | None) -> Path:
    return Path(weights).expanduser() if weights else SHAPES3D_SENSOR


@register_sensor(
    "shapes3d-disc",
    description="blocks of the discriminator trained with the first shipped shapes3d generator "
    "(embedded default sensor for the shapes3d bundles)",
    weights_path=disc_weights_path,
)
def shapes3d_disc_sensor(weights: str | os.PathLike[str] | None = None) -> nn.Module:
    path = disc_weights_path(weights)
    meta_path = path.with_suffix(".json")
    for file in (path, meta_path):
        if not file.is_file():
            raise FileNotFoundError(f"sensor 'shapes3d-disc': {file} not found; rebuild it with "
                                    "`python -m training.sensor_export export-disc --state STATE`")
    try:  # a JSON that does not parse is a ValueError too
        config = StyleGAN2Config.from_dict(json.loads(meta_path.read_text(encoding="utf-8"))
                                           ["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{meta_path}: no valid StyleGAN2 config ({err})") from None
    sensor = DiscriminatorSensor(config)
    state = load_file(str(path))
    expected = set(sensor.state_dict())
    if set(state) != expected:
        extra = sorted(set(state) - expected)[:3]
        missing = sorted(expected - set(state))[:3]
        raise DataError(f"{path}: discriminator block keys do not match its config "
                        f"(missing {missing}, unexpected {extra})")
    sensor.load_state_dict({k: v.float() for k, v in state.items()})
    return sensor
