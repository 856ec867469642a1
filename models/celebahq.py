"""``celebahq40``: NVIDIA's 40 CelebA-HQ binary attribute classifiers as one attribute predictor.

StyleGAN's linear-separability metric scores images with 40 classifiers released as TensorFlow
pickles, ``celebahq-classifier-00-male.pkl`` ... ``celebahq-classifier-39-wearing-necktie.pkl``.
Each is ProGAN's discriminator (``D_paper`` of NVlabs/stylegan ``training/networks_progan.py``)
at a fixed 256-px input with one output and no minibatch-stddev layer:

- ``FromRGB_lod0``: 1x1 conv to nf(7) = 64 maps, leaky ReLU (0.2);
- per resolution r = 256, 128, ..., 8 a block ``<r>x<r>``: ``Conv0`` (3x3, nf -> nf) and
  ``Conv1_down`` (3x3 conv and 2x2 box downscale fused into one stride-2 conv with the kernel
  padded by one and averaged over its four 3x3 windows; ``fused_scale=True``), each followed by
  bias and leaky ReLU. The non-fused form (``Conv1``: 3x3 conv, bias, leaky ReLU, then the 2x2
  box downscale) is built when the variables are named that way;
- ``4x4``: ``Conv`` (3x3), ``Dense0`` (flattened NCHW -> nf(0)), ``Dense1`` (-> 1 logit, gain 1);
- equalised learning rate: every stored weight is multiplied at run time by
  gain / sqrt(fan_in) (gain sqrt(2), 1 for ``Dense1``); feature maps nf(s) = min(8192 / 2^s, 512).

The pickles are read with the restricted unpickler of ``models.stylegan2.nvidia_pickle`` (no
TensorFlow; the stored build source is dropped unread). A network's variables (TF layouts: conv
``[k, k, in, out]``, dense ``[in, out]``) are checked name by name and shape by shape against the
architecture inferred from them; ``lod`` (which must be 0) and the ``FromRGB_lod1...`` layers that
only progressive growing uses are checked and ignored. Anything else is a one-line
``CheckpointFormatError`` naming the file.

The predictor runs them as the metric does (``metrics/linear_separability.py``): images NCHW in
[-1, 1] (the generator's output range) are box-downsampled to 256 px when larger (mean over
f x f pixel blocks, f = size / 256), each classifier gives one logit l, and its attribute is the
probability pair softmax([l, -l]). ``predict_proba`` returns these 40 groups of width 2, so the
discovery metrics measure each attribute's change as a total variation, as for 3DShapes factors.
The 40 networks run one after another on chunks of images, so the activations of only one
network on one chunk are alive at a time (the weights of all 40, 3.7 GB in float32, stay loaded;
docs/ffhq.md has the measured memory and time).

``python -m models.celebahq check FILE...`` loads each classifier and prints what it is.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.stylegan2.foreign import CheckpointFormatError, short_list
from models.stylegan2.nvidia_pickle import TFNetworkRecord, read_nvidia_pickle
from models.stylegan2.tf_pickle import tf_variables

RESOLUTION = 256
LEAKY_SLOPE = 0.2

# In the order of NVlabs/stylegan metrics/linear_separability.py (``classifier_urls``), spelled
# as in the file names there.
CELEBAHQ40_ATTRIBUTES: tuple[str, ...] = (
    "male", "smiling", "attractive", "wavy-hair", "young", "5-o-clock-shadow", "arched-eyebrows",
    "bags-under-eyes", "bald", "bangs", "big-lips", "big-nose", "black-hair", "blond-hair",
    "blurry", "brown-hair", "bushy-eyebrows", "chubby", "double-chin", "eyeglasses", "goatee",
    "gray-hair", "heavy-makeup", "high-cheekbones", "mouth-slightly-open", "mustache",
    "narrow-eyes", "no-beard", "oval-face", "pale-skin", "pointy-nose", "receding-hairline",
    "rosy-cheeks", "sideburns", "straight-hair", "wearing-earrings", "wearing-hat",
    "wearing-lipstick", "wearing-necklace", "wearing-necktie",
)
CELEBAHQ40_FILES: tuple[str, ...] = tuple(
    f"celebahq-classifier-{i:02d}-{name}.pkl" for i, name in enumerate(CELEBAHQ40_ATTRIBUTES))
_FILE_NAME = re.compile(r"^celebahq-classifier-(\d\d)-(.+)\.pkl$")
_KIND = "a CelebA-HQ attribute classifier pickle (TensorFlow dnnlib network)"


def paper_fmaps(resolution: int, fmap_base: int = 8192, fmap_decay: float = 1.0,
                fmap_max: int = 512) -> tuple[int, ...]:
    """D_paper's feature-map table nf(s) = min(int(fmap_base / 2^(s * decay)), fmap_max) for
    s = 0 .. log2(resolution) - 1."""
    stages = int(math.log2(resolution))
    return tuple(min(int(fmap_base / (2.0 ** (s * fmap_decay))), fmap_max) for s in range(stages))


@dataclass(frozen=True)
class ClassifierArchitecture:
    """What fixes a classifier's shapes. ``fmaps[s]`` is nf(s); empty means D_paper's rule with
    its defaults (the real classifiers: 512 x 5, 256, 128, 64 at 256 px)."""

    resolution: int = RESOLUTION
    fmaps: tuple[int, ...] = ()
    fused_scale: bool = True
    num_channels: int = 3

    def __post_init__(self) -> None:
        res = int(self.resolution)
        if res < 4 or res & (res - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        fmaps = tuple(int(c) for c in self.fmaps) or paper_fmaps(res)
        if len(fmaps) != self.log2 or min(fmaps) < 1 or self.num_channels < 1:
            raise ValueError(f"need {self.log2} positive feature-map counts for {res} px and "
                             f">= 1 channel, got fmaps {fmaps}, num_channels {self.num_channels}")
        object.__setattr__(self, "fmaps", fmaps)

    @property
    def log2(self) -> int:
        return int(self.resolution).bit_length() - 1

    def nf(self, stage: int) -> int:
        return self.fmaps[stage]

    def block_resolutions(self) -> list[int]:
        """The ``<r>x<r>`` conv-down blocks, largest first (none at 4 px)."""
        return [2 ** k for k in range(self.log2, 2, -1)]

    def variable_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every variable the forward pass uses, in the TF layout, by TF name."""
        c, L = self.num_channels, self.log2
        out: dict[str, tuple[int, ...]] = {}

        def layer(scope: str, shape: tuple[int, ...]) -> None:
            out[f"{scope}/weight"] = shape
            out[f"{scope}/bias"] = (shape[-1],)

        layer("FromRGB_lod0", (1, 1, c, self.nf(L - 1)))
        for res in self.block_resolutions():
            k = res.bit_length() - 1
            layer(f"{res}x{res}/Conv0", (3, 3, self.nf(k - 1), self.nf(k - 1)))
            down = "Conv1_down" if self.fused_scale else "Conv1"
            layer(f"{res}x{res}/{down}", (3, 3, self.nf(k - 1), self.nf(k - 2)))
        layer("4x4/Conv", (3, 3, self.nf(1), self.nf(1)))
        layer("4x4/Dense0", (self.nf(1) * 16, self.nf(0)))
        layer("4x4/Dense1", (self.nf(0), 1))
        return out

    def unused_shapes(self) -> dict[str, tuple[int, ...]]:
        """Variables of a progressive-growing D that lod 0 never reads: ``lod`` and the
        ``FromRGB_lod<j>`` layers of the lower resolutions."""
        out: dict[str, tuple[int, ...]] = {"lod": ()}
        for j in range(1, self.log2 - 1):
            nf = self.nf(self.log2 - j - 1)
            out[f"FromRGB_lod{j}/weight"] = (1, 1, self.num_channels, nf)
            out[f"FromRGB_lod{j}/bias"] = (nf,)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "fmaps": list(self.fmaps),
                "fused_scale": self.fused_scale, "num_channels": self.num_channels}


class EqualConv2d(nn.Module):
    """3x3 / 1x1 conv with the weight scaled by gain / sqrt(fan_in) at run time, then the bias.

    ``down``: TF's ``conv2d_downscale2d``, a stride-2 conv whose (k+1)x(k+1) kernel is the mean of
    the four shifted copies of the zero-padded kernel (= conv, then 2x2 box downscale)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, down: bool = False,
                 gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = gain / math.sqrt(c_in * kernel * kernel)
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        pad = (w.shape[-1] - 1) // 2
        if self.down:
            w = F.pad(w, [1, 1, 1, 1])
            w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) * 0.25
            x = F.conv2d(x, w, stride=2, padding=pad)
        else:
            x = F.conv2d(x, w, padding=pad)
        return x + self.bias.view(1, -1, 1, 1)


class EqualLinear(nn.Module):
    """Dense layer with the weight scaled by gain / sqrt(fan_in) at run time, then the bias."""

    def __init__(self, c_in: int, c_out: int, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(c_out, c_in))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = gain / math.sqrt(c_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class DownBlock(nn.Module):
    """``<r>x<r>``: Conv0, then Conv1_down (fused) or Conv1 + 2x2 box downscale."""

    def __init__(self, c_in: int, c_out: int, fused: bool) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_in, 3)
        self.conv1 = EqualConv2d(c_in, c_out, 3, down=fused)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv0(x), LEAKY_SLOPE)
        x = F.leaky_relu(self.conv1(x), LEAKY_SLOPE)
        return x if self.fused else F.avg_pool2d(x, 2)


class CelebAHQClassifier(nn.Module):
    """One classifier: images NCHW at ``arch.resolution`` in [-1, 1] -> logits ``[n, 1]``."""

    def __init__(self, arch: ClassifierArchitecture | None = None) -> None:
        super().__init__()
        self.arch = arch = arch or ClassifierArchitecture()
        L = arch.log2
        self.from_rgb = EqualConv2d(arch.num_channels, arch.nf(L - 1), 1)
        self.blocks = nn.ModuleDict()
        for res in arch.block_resolutions():
            k = res.bit_length() - 1
            self.blocks[f"b{res}"] = DownBlock(arch.nf(k - 1), arch.nf(k - 2), arch.fused_scale)
        self.conv = EqualConv2d(arch.nf(1), arch.nf(1), 3)
        self.dense0 = EqualLinear(arch.nf(1) * 16, arch.nf(0))
        self.dense1 = EqualLinear(arch.nf(0), 1, gain=1.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgb(images), LEAKY_SLOPE)
        for block in self.blocks.values():
            x = block(x)
        x = F.leaky_relu(self.conv(x), LEAKY_SLOPE)
        x = F.leaky_relu(self.dense0(x.flatten(1)), LEAKY_SLOPE)  # NCHW order, as TF's reshape
        return self.dense1(x)


# -- TF variables -> classifier -----------------------------------------------------------------


def _native_names(arch: ClassifierArchitecture) -> dict[str, str]:
    """TF scope -> module prefix."""
    names = {"FromRGB_lod0": "from_rgb", "4x4/Conv": "conv", "4x4/Dense0": "dense0",
             "4x4/Dense1": "dense1"}
    down = "Conv1_down" if arch.fused_scale else "Conv1"
    for res in arch.block_resolutions():
        names[f"{res}x{res}/Conv0"] = f"blocks.b{res}.conv0"
        names[f"{res}x{res}/{down}"] = f"blocks.b{res}.conv1"
    return names


def infer_architecture(variables: Mapping[str, np.ndarray], source: str
                       ) -> ClassifierArchitecture:
    """The architecture the variables' names and shapes describe (checked afterwards): the
    resolution from the largest ``<r>x<r>`` block, nf(s) from the first layer that shows it."""
    blocks = sorted({int(m.group(1)) for k in variables
                     if (m := re.match(r"^(\d+)x\1/Conv0/weight$", k))}, reverse=True)
    if "FromRGB_lod0/weight" not in variables or "4x4/Dense0/weight" not in variables:
        raise CheckpointFormatError(
            f"{source}: TF variables do not describe a ProGAN attribute classifier (D_paper): "
            f"expected 'FromRGB_lod0/weight', '<r>x<r>/Conv0/weight', ... '4x4/Dense0/weight'; "
            f"found {short_list(sorted(variables), 6)}")
    fused = {True if f"{r}x{r}/Conv1_down/weight" in variables else
             False if f"{r}x{r}/Conv1/weight" in variables else None for r in blocks} - {None}
    if len(fused) > 1:
        raise CheckpointFormatError(
            f"{source}: blocks mix fused (Conv1_down) and separate (Conv1) downscaling; D_paper "
            "uses one or the other throughout")
    fused_scale = fused.pop() if fused else True
    resolution = blocks[0] if blocks else 4
    stages = resolution.bit_length() - 1
    fmaps: dict[int, int] = {}
    down = "Conv1_down" if fused_scale else "Conv1"
    # (variable, axis of its shape, stage) where nf(stage) shows
    sources = [("FromRGB_lod0/weight", 3, stages - 1), ("4x4/Dense0/weight", 1, 0),
               ("4x4/Conv/weight", 3, 1)]
    for r in blocks:
        k = r.bit_length() - 1
        sources += [(f"{r}x{r}/Conv0/weight", 3, k - 1), (f"{r}x{r}/{down}/weight", 3, k - 2)]
    for name, axis, stage in sources:
        shape = getattr(variables.get(name), "shape", ())
        if len(shape) > axis and 0 <= stage < stages:
            fmaps.setdefault(stage, int(shape[axis]))
    rgb = variables["FromRGB_lod0/weight"].shape
    try:
        arch = ClassifierArchitecture(
            resolution, tuple(max(fmaps.get(s, 1), 1) for s in range(stages)), fused_scale,
            int(rgb[2]) if len(rgb) == 4 else 3)
    except ValueError as exc:
        raise CheckpointFormatError(f"{source}: {exc}") from None
    conv = variables.get("4x4/Conv/weight")
    if conv is not None and conv.ndim == 4 and conv.shape[2] == arch.nf(1) + 1:
        raise CheckpointFormatError(
            f"{source}: 4x4/Conv takes {arch.nf(1)} + 1 channels, a minibatch-stddev layer, "
            "which NVIDIA's attribute classifiers do not have and this port does not implement")
    return arch


def classifier_state(variables: Mapping[str, Any], source: str
                     ) -> tuple[ClassifierArchitecture, dict[str, torch.Tensor]]:
    """(architecture, state dict of ``CelebAHQClassifier``) from TF variables, strictly checked:
    missing, unknown or misshapen variables, non-float or non-finite values and a non-zero
    ``lod`` raise one ``CheckpointFormatError`` line naming ``source``."""
    arch, arrays = checked_variables(variables, source)
    state: dict[str, torch.Tensor] = {}
    for scope, prefix in _native_names(arch).items():
        weight = arrays[f"{scope}/weight"].astype(np.float32, copy=False)
        weight = weight.transpose(3, 2, 0, 1) if weight.ndim == 4 else weight.T
        state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        state[f"{prefix}.bias"] = torch.from_numpy(
            np.array(arrays[f"{scope}/bias"], dtype=np.float32))
    return arch, state


def checked_variables(variables: Mapping[str, Any], source: str
                      ) -> tuple[ClassifierArchitecture, dict[str, np.ndarray]]:
    """The checks of ``classifier_state`` without the conversion: (architecture, the variables
    as numpy arrays)."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in variables.items():
        if not isinstance(value, np.ndarray | np.generic):
            raise CheckpointFormatError(f"{source}: TF variable '{name}' is a "
                                        f"{type(value).__name__}, not a numpy array")
        arrays[name] = np.asarray(value)
    arch = infer_architecture(arrays, source)
    used, unused = arch.variable_shapes(), arch.unused_shapes()
    missing = [k for k in used if k not in arrays]
    unknown = sorted(k for k in arrays if k not in used and k not in unused)
    wrong = [f"{k} {arrays[k].shape} (expected {shape})"
             for k, shape in {**used, **unused}.items()
             if k in arrays and arrays[k].shape != shape]
    if missing or unknown or wrong:
        raise CheckpointFormatError(
            f"{source}: TF variables do not match a {arch.resolution}-px ProGAN attribute "
            f"classifier; missing: {short_list(missing)}; unknown: {short_list(unknown)}; "
            f"wrong shapes: {short_list(wrong, 3)}")
    for name in used.keys() | (unused.keys() & arrays.keys()):
        value = arrays[name]
        if value.dtype.kind != "f" or not np.all(np.isfinite(value)):
            raise CheckpointFormatError(f"{source}: TF variable '{name}' is not finite floating "
                                        f"point ({value.dtype})")
    if "lod" in arrays and float(arrays["lod"]) != 0.0:
        raise CheckpointFormatError(
            f"{source}: lod = {float(arrays['lod']):g}; only a fully grown classifier (lod 0, "
            "the FromRGB_lod0 path alone) is supported")
    return arch, arrays


def _check_static_kwargs(record: TFNetworkRecord, arch: ClassifierArchitecture,
                         source: str) -> None:
    """Constructor arguments stored in the pickle, where present, must agree with the variables."""
    kwargs = record.static_kwargs
    inferred = {"resolution": arch.resolution, "num_channels": arch.num_channels,
                "fused_scale": arch.fused_scale}
    clashes = [f"{key}={kwargs[key]!r} (variables: {value!r})" for key, value in inferred.items()
               if key in kwargs and kwargs[key] is not None and kwargs[key] != value]
    if clashes:
        raise CheckpointFormatError(f"{source}: the network's stored arguments disagree with its "
                                    f"variables: {', '.join(clashes)}")


def classifier_from_record(record: Any, source: str) -> CelebAHQClassifier:
    """Classifier (eval mode, no gradients) from an unpickled TF network record."""
    if not isinstance(record, TFNetworkRecord):
        raise CheckpointFormatError(f"{source}: expected one TF network (dnnlib.tflib.network."
                                    f"Network); found a {type(record).__name__}")
    arch, state = classifier_state(tf_variables(record, source), source)
    _check_static_kwargs(record, arch, source)
    with torch.device("meta"):  # no throw-away initial weights: the state is assigned
        net = CelebAHQClassifier(arch)
    net.load_state_dict(state, strict=True, assign=True)
    net.eval()
    net.requires_grad_(False)
    return net


def load_celebahq_classifier(path: str | os.PathLike[str]) -> CelebAHQClassifier:
    """One classifier pickle (``celebahq-classifier-NN-<attribute>.pkl``) as a module."""
    return classifier_from_record(read_nvidia_pickle(path, _KIND), str(path))


def inspect_celebahq_classifier(path: str | os.PathLike[str]) -> ClassifierArchitecture:
    """The architecture of one classifier pickle after every check ``load_celebahq_classifier``
    makes, without converting the weights or building the network: 0.1 s for a real-size file
    on one busy CPU core here, against 0.25-0.7 s to load it (the unpickling and the
    finiteness check remain)."""
    source = str(path)
    record = read_nvidia_pickle(path, _KIND)
    if not isinstance(record, TFNetworkRecord):
        raise CheckpointFormatError(f"{source}: expected one TF network (dnnlib.tflib.network."
                                    f"Network); found a {type(record).__name__}")
    arch, _ = checked_variables(tf_variables(record, source), source)
    _check_static_kwargs(record, arch, source)
    return arch


# -- the predictor ------------------------------------------------------------------------------


def box_downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """NVIDIA's downsampling to ``size`` px: the mean over f x f blocks, f = side / size (only
    when the images are larger; an integer f is required)."""
    side = images.shape[-1]
    if side == size:
        return images
    n, c, h, w = images.shape
    f = side // size
    return images.reshape(n, c, h // f, f, w // f, f).mean(dim=(3, 5))


class CelebAHQ40Predictor(nn.Module):
    """Binary attribute classifiers as one predictor: ``factor_names``, ``factor_sizes`` (2 each),
    ``predict_proba(images)`` -> per attribute ``[n, 2]`` = softmax([l, -l]).

    Images: float NCHW in [-1, 1], square, ``resolution`` px or an integer multiple of it
    (box-downsampled). Classifiers run one after another, each on chunks of ``chunk`` images.
    Gradients flow when enabled (nothing here switches them off)."""

    name = "celebahq40"

    def __init__(self, classifiers: Sequence[CelebAHQClassifier], names: Sequence[str],
                 chunk: int = 8) -> None:
        super().__init__()
        if not classifiers or len(classifiers) != len(names) or len(set(names)) != len(names):
            raise ValueError(f"need one distinct name per classifier, got {len(classifiers)} "
                             f"classifiers and names {list(names)}")
        sizes = {(net.arch.resolution, net.arch.num_channels) for net in classifiers}
        if len(sizes) != 1:
            raise ValueError(f"classifiers disagree on input resolution/channels: {sorted(sizes)}")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.classifiers = nn.ModuleList(classifiers)
        self._names = tuple(str(n) for n in names)
        self.resolution, self.num_channels = sizes.pop()
        self.chunk = int(chunk)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return (2,) * len(self._names)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Checked, box-downsampled images on the classifiers' device."""
        res, c = self.resolution, self.num_channels
        if (images.ndim != 4 or images.shape[1] != c or images.shape[2] != images.shape[3]
                or images.shape[2] < res or images.shape[2] % res):
            raise ValueError(f"{self.name} expects float images NCHW (n, {c}, s, s) in [-1, 1] "
                             f"with s a multiple of {res}, got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"{self.name} expects float images in [-1, 1], got {images.dtype}")
        param = self.classifiers[0].dense1.weight
        return box_downsample(images.to(device=param.device, dtype=param.dtype), res)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """One logit per classifier, ``[n, A]``."""
        x = self.prepare(images)
        columns = []
        for net in self.classifiers:
            parts = [net(x[i:i + self.chunk])[:, 0] for i in range(0, len(x), self.chunk)]
            columns.append(torch.cat(parts) if parts else x.new_zeros(0))
        return torch.stack(columns, dim=1)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Logit pairs ``[l, -l]`` (``[n, 2]``) per attribute, as the metric concatenates them."""
        logits = self.logits(images)
        return [torch.stack([logits[:, a], -logits[:, a]], dim=1) for a in range(logits.shape[1])]

    def predict_proba(self, images: torch.Tensor) -> list[torch.Tensor]:
        """softmax([l, -l]) per attribute: column 0 is the probability of a positive logit."""
        return [torch.softmax(pair, dim=1) for pair in self(images)]

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Most likely class per attribute (0: logit >= 0, as argmax breaks the tie), int64
        ``[n, A]``."""
        return (self.logits(images) < 0).to(torch.int64)


def celebahq40_order(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The 40 classifier files in attribute order, recognised by NVIDIA's file names."""
    paths = [Path(p) for p in paths]
    by_name: dict[str, Path] = {}
    stray, twice = [], []
    for path in paths:
        if path.name not in CELEBAHQ40_FILES:
            stray.append(str(path))
        elif path.name in by_name:
            twice.append(path.name)
        by_name.setdefault(path.name, path)
    missing = [name for name in CELEBAHQ40_FILES if name not in by_name]
    if stray or twice or missing:
        raise CheckpointFormatError(
            f"celebahq40 needs the 40 files {CELEBAHQ40_FILES[0]} ... {CELEBAHQ40_FILES[-1]} "
            f"(the names of NVIDIA's linear-separability metric); missing: {short_list(missing, 4)}"
            f"; not a classifier file name: {short_list(stray, 3)}; given twice: "
            f"{short_list(twice, 3)}")
    return [by_name[name] for name in CELEBAHQ40_FILES]


def load_celebahq40(paths: Sequence[str | os.PathLike[str]], chunk: int = 8
                    ) -> CelebAHQ40Predictor:
    """The ``celebahq40`` predictor from NVIDIA's 40 classifier pickles (any order; recognised by
    file name). Each file is unpickled, checked and converted before the next is read."""
    ordered = celebahq40_order(paths)
    nets = [load_celebahq_classifier(path) for path in ordered]
    resolutions = {net.arch.resolution for net in nets}
    if len(resolutions) != 1:
        raise CheckpointFormatError(f"celebahq40: the classifiers take different resolutions "
                                    f"{sorted(resolutions)}; they must share one")
    return CelebAHQ40Predictor(nets, CELEBAHQ40_ATTRIBUTES, chunk=chunk)


# -- command line -------------------------------------------------------------------------------


def _summary(path: Path, net: CelebAHQClassifier) -> dict[str, Any]:
    match = _FILE_NAME.match(path.name)
    return {"file": str(path), "attribute": match.group(2) if match else None,
            **net.arch.to_dict(),
            "parameters": sum(p.numel() for p in net.parameters())}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.celebahq",
                                     description="Check NVIDIA's CelebA-HQ classifier pickles.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load each classifier (one at a time) and describe it; "
                           "a folder stands for the 40 files of celebahq40 in it")
    check.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    paths: list[Path] = []
    for path in args.paths:
        paths += [path / name for name in CELEBAHQ40_FILES] if path.is_dir() else [path]
    try:
        for path in paths:
            print(json.dumps(_summary(path, load_celebahq_classifier(path))), flush=True)
    except (CheckpointFormatError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
