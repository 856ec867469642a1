"""Reference-form StyleGAN2 ops: FIR resampling (upfirdn2d), bias+activation, equalized-lr layers,
and the modulated convolution in its fused and non-fused forms.

Everything uses only ``conv2d`` / ``conv_transpose2d``, ``pad`` and reshapes, so it runs anywhere
PyTorch runs. Stored parameters are the raw standard-normal tensors; equalized-learning-rate gains
are applied at run time (NVIDIA's convention), so state dicts match NVIDIA's parameter values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """Separable 2-D FIR kernel: the outer product of ``taps`` with itself, normalised to sum 1."""
    f = torch.as_tensor(np.asarray(taps, dtype=np.float32))
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f"FIR taps must be a non-empty 1-D sequence, got shape {tuple(f.shape)}")
    f2 = torch.outer(f, f)
    return f2 / f2.sum()


def _pad4(pad: int | Sequence[int]) -> tuple[int, int, int, int]:
    """Normalise padding to (x0, x1, y0, y1)."""
    if isinstance(pad, int):
        return pad, pad, pad, pad
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        return pad  # type: ignore[return-value]
    raise ValueError(f"padding must be an int, (p0, p1) or (x0, x1, y0, y1), got {pad}")


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: int | Sequence[int] = 0,
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample (zero insertion), pad (negative = crop), FIR-filter (true convolution), downsample.

    ``x`` is NCHW, ``f`` a 2-D kernel; the filter is applied per channel (depthwise).
    Output size per axis: ``(n * up + p0 + p1 - k) // down + 1``.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects NCHW input, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    px0, px1, py0, py1 = _pad4(pad)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    kernel = (f * gain).flip([0, 1]).to(x.dtype)  # conv2d correlates; flip for a true convolution
    kernel = kernel[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, kernel, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """FIR upsampling by ``up`` with DC gain preserved (kernel gain up**2)."""
    k = f.shape[-1]
    p0 = (k + up - 1) // 2
    p1 = (k - up) // 2
    return upfirdn2d(x, f, up=up, pad=(p0, p1, p0, p1), gain=up**2)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """FIR downsampling by ``down`` (blur then keep every ``down``-th sample)."""
    k = f.shape[-1]
    p0 = (k - down + 1) // 2
    p1 = (k - down) // 2
    return upfirdn2d(x, f, down=down, pad=(p0, p1, p0, p1))


def bias_act(
    x: torch.Tensor,
    bias: torch.Tensor | None,
    act: str = "linear",
    gain: float = 1.0,
    clamp: float | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply ``linear`` or ``lrelu`` (times sqrt 2), gain, clamp.

    ``inplace``: the caller hands ``x`` over (nothing reads it afterwards, no autograd graph
    needs it), so every step overwrites it instead of holding a new copy beside it: the same
    kernels and values, one image-sized tensor less at a time (synthesis' largest)."""
    if act not in ("lrelu", "linear"):
        raise ValueError(f"unknown activation {act!r} (expected 'linear' or 'lrelu')")
    if inplace:
        if bias is not None:
            x.add_(bias.reshape([1, -1] + [1] * (x.ndim - 2)))
        if act == "lrelu":
            F.leaky_relu(x, LRELU_SLOPE, inplace=True).mul_(LRELU_GAIN * gain)
        elif gain != 1:
            x.mul_(gain)
        return x if clamp is None else x.clamp_(-clamp, clamp)
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE) * (LRELU_GAIN * gain)
    elif gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: weight gain ``lr_mul / sqrt(in)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str = "linear",
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalized-lr conv with optional FIR-blurred stride-2 downsampling (discriminator)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.down = down
        self.conv_clamp = conv_clamp
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", setup_filter(), persistent=False)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.down > 1:
            # blur, then a strided conv without padding: blur pad (2, 2) for 3x3, (1, 1) for 1x1
            f = self.resample_filter
            k = f.shape[-1]
            p0 = self.padding + (k - self.down + 1) // 2
            p1 = self.padding + (k - self.down) // 2
            x = upfirdn2d(x, f, pad=(p0, p1, p0, p1))
            x = F.conv2d(x, w, stride=self.down)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=gain, clamp=clamp)


def demod_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-output-channel 1/sqrt(sum over (I, kh, kw) of (w * s)^2 + 1e-8): [n, O]."""
    wsq = weight.square().sum(dim=[2, 3])  # [O, I]
    return (styles.square() @ wsq.t() + 1e-8).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: int = 1,
    resample_filter: torch.Tensor | None = None,
    fused: bool = False,
) -> torch.Tensor:
    """Modulated convolution of NCHW ``x`` by ``weight`` [O, I, k, k] with ``styles`` [n, I].

    ``up=2`` runs a stride-2 transposed conv (weight used as stored, transposed in/out) and then
    the 4-tap FIR with gain 4 and padding (1, 1), giving exactly 2H x 2W.
    Non-fused (default): scale activations, one shared conv, scale outputs; fast for batches on
    CPU. Fused: per-sample weights and a grouped conv (the reference form).
    """
    n, in_c, h, w = x.shape
    out_c, w_in, kh, kw = weight.shape
    if w_in != in_c or styles.shape != (n, in_c):
        raise ValueError(f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)}, "
                         f"styles {tuple(styles.shape)} do not fit")
    if up not in (1, 2):
        raise ValueError(f"modulated_conv2d supports up=1 or 2, got {up}")
    if up == 2 and resample_filter is None:
        raise ValueError("modulated_conv2d with up=2 needs a resample_filter")
    dcoefs = demod_coefficients(weight, styles) if demodulate else None
    pad = kh // 2

    if not fused:
        x = x * styles.reshape(n, in_c, 1, 1).to(x.dtype)
        if up == 1:
            x = F.conv2d(x, weight, padding=pad)
        else:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            x = upfirdn2d(x, resample_filter, pad=(pad, pad, pad, pad), gain=4)
        if dcoefs is not None:
            x = x * dcoefs.reshape(n, out_c, 1, 1).to(x.dtype)
        return x

    wmod = weight.unsqueeze(0) * styles.reshape(n, 1, in_c, 1, 1)  # [n, O, I, k, k]
    if dcoefs is not None:
        wmod = wmod * dcoefs.reshape(n, out_c, 1, 1, 1)
    xg = x.reshape(1, n * in_c, h, w)
    if up == 1:
        out = F.conv2d(xg, wmod.reshape(n * out_c, in_c, kh, kw), padding=pad, groups=n)
    else:
        wt = wmod.transpose(1, 2).reshape(n * in_c, out_c, kh, kw)
        out = F.conv_transpose2d(xg, wt, stride=2, groups=n)
        out = upfirdn2d(out, resample_filter, pad=(pad, pad, pad, pad), gain=4)
    return out.reshape(n, out_c, out.shape[2], out.shape[3])
