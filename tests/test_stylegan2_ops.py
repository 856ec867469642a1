"""Known answers for the StyleGAN2 ops beyond test_stylegan2_model.py: FIR filters, resampling
by hand-built matrices, bias_act gains, equalized-lr layers, modulated conv edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.stylegan2.ops import (
    Conv2dLayer,
    FullyConnectedLayer,
    bias_act,
    demod_coefficients,
    downsample2d,
    modulated_conv2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _x(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ----------------------------------------------------------------------------- FIR filters


def test_setup_filter_normalises_and_is_float32() -> None:
    for taps in ([1, 3, 3, 1], [1.0, 2.0, 1.0], (2,)):
        f = setup_filter(taps)
        assert f.dtype == torch.float32 and f.shape == (len(taps), len(taps))
        np.testing.assert_allclose(f.sum().item(), 1.0, rtol=1e-6)
    # one tap is the identity filter; [1, 2, 1] is the outer product over 16
    np.testing.assert_array_equal(setup_filter([5.0]).numpy(), [[1.0]])
    np.testing.assert_allclose(setup_filter([1, 2, 1]).numpy(),
                               np.outer([1, 2, 1], [1, 2, 1]) / 16, rtol=1e-6)


@pytest.mark.parametrize("taps", [[], [[1.0, 3.0], [3.0, 1.0]]])
def test_setup_filter_rejects_empty_or_2d_taps(taps: list) -> None:
    with pytest.raises(ValueError, match="non-empty 1-D sequence, got shape"):
        setup_filter(taps)


# ----------------------------------------------------------------------------- upfirdn2d


def _up_matrix(n: int) -> np.ndarray:
    """1-D upsampling by 2 with taps [1, 3, 3, 1] (gain 2): the rows (x[i-1] + 3 x[i]) / 4 and
    (3 x[i] + x[i+1]) / 4, zero outside."""
    m = np.zeros((2 * n, n))
    for i in range(n):
        m[2 * i, i] = m[2 * i + 1, i] = 0.75
        if i > 0:
            m[2 * i, i - 1] = 0.25
        if i + 1 < n:
            m[2 * i + 1, i + 1] = 0.25
    return m


def _down_matrix(n: int) -> np.ndarray:
    """1-D downsampling by 2 with taps [1, 3, 3, 1] / 8: output i reads x[2i-1 .. 2i+2]."""
    m = np.zeros((n // 2, n))
    for i in range(n // 2):
        for t, tap in zip(range(2 * i - 1, 2 * i + 3), (1, 3, 3, 1), strict=True):
            if 0 <= t < n:
                m[i, t] = tap / 8
    return m


def test_upsample2d_by_hand() -> None:
    x = _x(2, 3, 5, 4)
    got = upsample2d(x, setup_filter().double())
    want = np.einsum("ai,ncij,bj->ncab", _up_matrix(5), x.numpy(), _up_matrix(4))
    assert got.shape == (2, 3, 10, 8)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_downsample2d_by_hand() -> None:
    x = _x(2, 3, 6, 8)
    got = downsample2d(x, setup_filter().double())
    want = np.einsum("ai,ncij,bj->ncab", _down_matrix(6), x.numpy(), _down_matrix(8))
    assert got.shape == (2, 3, 3, 4)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


@pytest.mark.parametrize("factor", [2, 3])
def test_box_filter_resampling_is_nearest_and_average_pooling(factor: int) -> None:
    x = _x(1, 2, 4, 5)
    box = setup_filter([1] * factor).double()
    up = upsample2d(x, box, up=factor)
    nearest = x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
    # the filter is float32 (1/9 is rounded), hence the tolerance
    torch.testing.assert_close(up, nearest, atol=1e-6, rtol=1e-6)
    y = _x(1, 2, 3 * factor, 2 * factor, seed=1)
    torch.testing.assert_close(downsample2d(y, box, down=factor), F.avg_pool2d(y, factor),
                               atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("taps", [1, 2, 3, 4])
@pytest.mark.parametrize("factor", [2, 3])
def test_resampling_output_sizes(taps: int, factor: int) -> None:
    f = setup_filter([1] * taps)
    x = torch.ones(1, 1, 3 * factor, 2 * factor)
    assert upsample2d(x, f, up=factor).shape == (1, 1, 3 * factor * factor, 2 * factor * factor)
    assert downsample2d(x, f, down=factor).shape == (1, 1, 3, 2)
    # sizes that are no multiple of the factor: floor(n / factor), as a strided conv
    for n in range(factor + 1, 3 * factor):
        assert downsample2d(torch.ones(1, 1, n, n), f, down=factor).shape[2:] == (n // factor,) * 2


def test_upfirdn2d_padding_forms_and_defaults() -> None:
    x = _x(1, 2, 6, 7)
    f = _x(3, 2, seed=1)
    # (p0, p1) is (p0, p1, p0, p1); p0 != p1 so a swapped or repeated entry shows
    torch.testing.assert_close(upfirdn2d(x, f, pad=(2, 1)), upfirdn2d(x, f, pad=(2, 1, 2, 1)))
    # default: no padding, "valid" convolution
    assert upfirdn2d(x, f).shape == (1, 2, 6 - 3 + 1, 7 - 2 + 1)
    torch.testing.assert_close(upfirdn2d(x, f), upfirdn2d(x, f, pad=0))
    with pytest.raises(ValueError, match="padding must be an int"):
        upfirdn2d(x, f, pad=(1, 2, 3))
    with pytest.raises(ValueError, match="expects NCHW input, got shape"):
        upfirdn2d(x[0], f)


def test_upfirdn2d_casts_the_filter_to_the_input_dtype() -> None:
    # the float32 filter buffer on float64 activations: the result stays float64 and exact
    x = _x(1, 1, 4, 6)
    got = upfirdn2d(x, setup_filter(), pad=1)
    assert got.dtype == torch.float64
    want = upfirdn2d(x, setup_filter().double(), pad=1)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- bias_act


@pytest.mark.parametrize("gain", [0.5, 1.0, 2.0, 3.0])
def test_bias_act_gains(gain: float) -> None:
    x = _x(2, 3, 4)
    b = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    pre = x + b[None, :, None]
    torch.testing.assert_close(bias_act(x, b, "linear", gain=gain), pre * gain)
    lrelu = torch.where(pre > 0, pre, 0.2 * pre) * math.sqrt(2) * gain
    torch.testing.assert_close(bias_act(x, b, "lrelu", gain=gain), lrelu)
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        bias_act(x, b, "relu")


# ----------------------------------------------------------------------------- layers


def test_fully_connected_layer_known_answer() -> None:
    torch.manual_seed(0)
    fc = FullyConnectedLayer(4, 3)
    assert torch.equal(fc.bias, torch.zeros(3))  # default bias_init 0
    assert "in=4, out=3, act=linear" in repr(fc)
    x = _x(5, 4, dtype=torch.float32)
    torch.testing.assert_close(fc(x), x @ fc.weight.t() / 2)  # gain 1/sqrt(4)
    nobias = FullyConnectedLayer(4, 3, bias=False, lr_mul=0.5, activation="lrelu")
    assert nobias.bias is None and set(nobias.state_dict()) == {"weight"}
    pre = x @ (nobias.weight * 0.25).t()  # gain lr_mul / sqrt(in)
    torch.testing.assert_close(nobias(x), F.leaky_relu(pre, 0.2) * math.sqrt(2))


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("down", [1, 2, 3])
def test_conv2d_layer_output_size(kernel_size: int, down: int) -> None:
    torch.manual_seed(0)
    conv = Conv2dLayer(2, 3, kernel_size, down=down)
    assert conv(torch.ones(1, 2, 6 * down, 3 * down)).shape == (1, 3, 6, 3)


def test_conv2d_layer_down_is_fir_downsampling_then_conv() -> None:
    torch.manual_seed(0)
    conv = Conv2dLayer(2, 3, 1, bias=False, down=2).double()
    x = _x(1, 2, 8, 6)
    want = F.conv2d(downsample2d(x, setup_filter().double()), conv.weight / math.sqrt(2))
    torch.testing.assert_close(conv(x), want)


# ----------------------------------------------------------------------------- modulated conv


def _modconv_loop(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Per-sample modulate, demodulate, 'same' conv (any odd kernel)."""
    outs = []
    for i in range(x.shape[0]):
        w = weight * styles[i].reshape(1, -1, 1, 1)
        w = w / torch.sqrt(w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        outs.append(F.conv2d(x[i:i + 1], w, padding=weight.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("kernel", [1, 5])
@pytest.mark.parametrize("fused", [False, True])
def test_modulated_conv_other_kernels_and_non_square(kernel: int, fused: bool) -> None:
    x = _x(2, 3, 5, 7)
    weight = _x(4, 3, kernel, kernel, seed=1)
    styles = _x(2, 3, seed=2) + 1
    got = modulated_conv2d(x, weight, styles, fused=fused)
    assert got.shape == (2, 4, 5, 7)
    torch.testing.assert_close(got, _modconv_loop(x, weight, styles))


def test_modulated_conv_up2_non_square() -> None:
    x = _x(2, 3, 4, 6)
    weight = _x(4, 3, 3, 3, seed=1)
    styles = _x(2, 3, seed=2) + 1
    f = setup_filter().double()
    outs = [modulated_conv2d(x, weight, styles, up=2, resample_filter=f, fused=fused)
            for fused in (False, True)]
    assert outs[0].shape == outs[1].shape == (2, 4, 8, 12)
    torch.testing.assert_close(outs[0], outs[1])


def test_modulated_conv_default_demodulates() -> None:
    # demodulation makes the output invariant to a positive per-sample scale of the styles
    x = _x(2, 3, 5, 5)
    weight = _x(4, 3, 3, 3, seed=1)
    styles = _x(2, 3, seed=2) + 1
    scaled = styles * torch.tensor([[3.0], [0.25]], dtype=torch.float64)
    torch.testing.assert_close(modulated_conv2d(x, weight, scaled),
                               modulated_conv2d(x, weight, styles))


def test_demodulation_epsilon_keeps_zero_styles_finite() -> None:
    weight = _x(4, 3, 3, 3, seed=1, dtype=torch.float32)
    styles = torch.zeros(2, 3)
    styles[1] = 1.0
    d = demod_coefficients(weight, styles)
    torch.testing.assert_close(d[0], torch.full((4,), 1e4))  # 1 / sqrt(0 + 1e-8)
    out = modulated_conv2d(_x(2, 3, 4, 4, dtype=torch.float32), weight, styles)
    assert torch.isfinite(out).all() and torch.equal(out[0], torch.zeros_like(out[0]))


def test_modulated_conv_output_dtype_follows_activations() -> None:
    # styles in float64 (e.g. from a double-precision mapping) modulate float32 activations
    x = _x(2, 3, 4, 4, dtype=torch.float32)
    weight = _x(4, 3, 3, 3, seed=1, dtype=torch.float32)
    styles = _x(2, 3, seed=2) + 1
    got = modulated_conv2d(x, weight, styles, demodulate=False)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, modulated_conv2d(x, weight, styles.float(), demodulate=False))


def test_modulated_conv_rejects_bad_arguments() -> None:
    x = _x(2, 3, 4, 4)
    weight = _x(4, 3, 3, 3)
    styles = _x(2, 3)
    with pytest.raises(ValueError, match=r"styles \(2, 2\) do not fit"):
        modulated_conv2d(x, weight, styles[:, :2])
    with pytest.raises(ValueError, match=r"weight \(4, 2, 3, 3\)"):
        modulated_conv2d(x, weight[:, :2], styles)
    with pytest.raises(ValueError, match="supports up=1 or 2, got 4"):
        modulated_conv2d(x, weight, styles, up=4, resample_filter=setup_filter())
    with pytest.raises(ValueError, match="^modulated_conv2d with up=2 needs a resample_filter$"):
        modulated_conv2d(x, weight, styles, up=2)
