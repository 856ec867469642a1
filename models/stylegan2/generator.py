"""Pure-PyTorch StyleGAN2 generator (mapping + skip-architecture synthesis).

Parameter and buffer names are exactly those of NVIDIA stylegan2-ada-pytorch (``mapping.fc{i}``,
``mapping.w_avg``, ``synthesis.b{res}.{const,conv0,conv1,torgb}``), holding the raw stored values
(equalized-lr gains are applied at run time; affine biases include the +1 init), so checkpoints
convert by renaming only. FIR filters are non-persistent buffers and never appear in state dicts.

W+ index rule: the 4x4 conv reads index 0 and the 4x4 ToRGB index 1; for the block at 2^k,
``conv0`` reads 2k-5, ``conv1`` 2k-4 and ``torgb`` 2k-3.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.generator import broadcast_ws
from models.stylegan2.config import StyleGAN2Config
from models.stylegan2.ops import (
    FullyConnectedLayer,
    bias_act,
    modulated_conv2d,
    setup_filter,
    upsample2d,
)

NOISE_MODES = ("const", "random", "none")

# Synthesis holds about 20 MiB per image in flight on a 64-px generator with 256 channels at
# every resolution (DisCo's layout; docs/performance.md), so a batch of more than
# SYNTHESIS_PIECE images runs in pieces of 16 to 32 images. The images are bit for bit those
# of the whole batch: no image's arithmetic reads another's, and oneDNN runs the same kernels
# for any batch of 16 or more (ONEDNN_VERBOSE lists the same ones for 16 and 250 images;
# tests/test_synthesis_memory.py compares the images). Below 16 it need not: on one thread
# PyTorch runs a 1x1 convolution (ToRGB) of fewer than 16 images outside oneDNN, which moves
# the last bits (docs/performance.md).
SYNTHESIS_PIECE = 32


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def synthesis_pieces(n: int, most: int = SYNTHESIS_PIECE) -> list[int]:
    """Sizes of the pieces a batch of ``n`` images is synthesised in: ``[n]`` up to ``most``,
    else the fewest pieces of at most ``most`` images, as equal as possible, so each holds at
    least ``most / 2`` (250 -> 32, 32 and six of 31)."""
    if n <= most:
        return [n]
    count = -(-n // most)
    base, extra = divmod(n, count)
    return [base + 1] * extra + [base] * (count - extra)


def builds_graph(module: nn.Module, *inputs: torch.Tensor) -> bool:
    """Whether running ``module`` on ``inputs`` records an autograd graph (some input or
    parameter requires grad, grad mode on). Without one, synthesis may overwrite its own
    intermediates and split a batch into pieces; with one it keeps the plain form."""
    return torch.is_grad_enabled() and (any(t.requires_grad for t in inputs)
                                        or any(p.requires_grad for p in module.parameters()))


class MappingNetwork(nn.Module):
    """z -> w: 2nd-moment normalisation, then ``num_layers`` lrelu dense layers (learning-rate
    multiplier ``lr_mul``, 0.01 in NVIDIA's configs)."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float,
                 w_avg_beta: float) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        for i in range(num_layers):
            fc = FullyConnectedLayer(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul,
                                     activation="lrelu")
            setattr(self, f"fc{i}", fc)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                update_w_avg: bool = True) -> torch.Tensor:
        """W codes [n, w_dim]; ``w_avg`` is updated (EMA of batch means) only in training mode."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"mapping expects z of shape [n, {self.z_dim}], got {tuple(z.shape)}")
        x = normalize_2nd_moment(z.to(torch.float32))
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.training and update_w_avg and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling x2), noise, bias, lrelu, optional clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: int, use_noise: bool, conv_clamp: float | None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(), persistent=False)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str,
                generator: torch.Generator | None, fused: bool) -> torch.Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, demodulate=True, up=self.up,
                             resample_filter=self.resample_filter, fused=fused)
        own = not builds_graph(self, x)  # x is the conv's fresh output: noise, bias in place
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution,
                                    generator=generator, dtype=x.dtype, device=x.device)
            else:
                noise = self.noise_const
            x = x.add_(noise * self.noise_strength) if own else x + noise * self.noise_strength
        return bias_act(x, self.bias, act="lrelu", clamp=self.conv_clamp, inplace=own)


class ToRGBLayer(nn.Module):
    """1x1 modulated conv without demodulation (style scaled by 1/sqrt(C_in)), bias, clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | conv0 up) + conv1 + ToRGB, with the skip RGB path."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, use_noise: bool, conv_clamp: float | None) -> None:
        super().__init__()
        self.resolution = resolution
        self.in_channels = in_channels
        self.register_buffer("resample_filter", setup_filter(), persistent=False)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.num_conv = 1
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        use_noise=use_noise, conv_clamp=conv_clamp)
            self.num_conv = 2
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, up=1,
                                    use_noise=use_noise, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str, generator: torch.Generator | None, fused: bool,
                with_rgb: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``ws``: the block's window [n, num_conv + 1, w_dim] (convs, then ToRGB)."""
        i = 0
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x, ws[:, i], noise_mode, generator, fused)
            i += 1
        x = self.conv1(x, ws[:, i], noise_mode, generator, fused)
        i += 1
        if not with_rgb:
            return x, img
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, ws[:, i], fused)
        img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """W+ [n, num_ws, w_dim] -> image, one block per resolution 4 .. R."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.w_dim = config.w_dim
        self.resolution = config.resolution
        self.img_channels = config.img_channels
        self.block_resolutions = config.block_resolutions
        self.num_ws = config.num_ws
        for res in self.block_resolutions:
            in_ch = 0 if res == 4 else config.channels_at(res // 2)
            block = SynthesisBlock(in_ch, config.channels_at(res), config.w_dim, res,
                                   config.img_channels, config.use_noise, config.conv_clamp)
            setattr(self, f"b{res}", block)

    def block_windows(self) -> list[tuple[int, int]]:
        """(first W+ index, window length) of each block: windows advance by num_conv."""
        out, start = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            out.append((start, block.num_conv + 1))
            start += block.num_conv
        return out

    def _check_inputs(self, ws: torch.Tensor, noise_mode: str) -> None:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"synthesis expects W+ of shape [n, {self.num_ws}, {self.w_dim}], "
                             f"got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")

    def forward(self, ws: torch.Tensor, noise_mode: str = "const",
                generator: torch.Generator | None = None, fused: bool = False) -> torch.Tensor:
        """Images of ``ws``; a large batch runs in pieces (``synthesis_pieces``) unless noise is
        drawn per image (the draws would come in another order) or autograd records a graph."""
        self._check_inputs(ws, noise_mode)
        ws = ws.to(torch.float32)
        whole = noise_mode == "random" or builds_graph(self, ws)
        pieces = [ws.shape[0]] if whole else synthesis_pieces(ws.shape[0])
        if len(pieces) == 1:
            return self._images(ws, noise_mode, generator, fused)
        out = None
        start = 0
        for size in pieces:
            img = self._images(ws[start:start + size], noise_mode, generator, fused)
            if out is None:
                out = img.new_empty((ws.shape[0], *img.shape[1:]))
            out[start:start + size] = img
            start += size
        return out

    def _images(self, ws: torch.Tensor, noise_mode: str, generator: torch.Generator | None,
                fused: bool) -> torch.Tensor:
        """All of ``ws`` in one pass through the blocks."""
        x = img = None
        for res, (start, length) in zip(self.block_resolutions, self.block_windows(), strict=True):
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, start:start + length], noise_mode, generator, fused)
        return img

    def features(self, ws: torch.Tensor, upto_block: int, noise_mode: str = "const",
                 generator: torch.Generator | None = None) -> list[torch.Tensor]:
        self._check_inputs(ws, noise_mode)
        if not 1 <= upto_block <= len(self.block_resolutions):
            raise ValueError(f"upto_block must be in [1, {len(self.block_resolutions)}], "
                             f"got {upto_block}")
        ws = ws.to(torch.float32)
        feats: list[torch.Tensor] = []
        x = None
        for res, (start, length) in zip(self.block_resolutions[:upto_block],
                                        self.block_windows()[:upto_block], strict=True):
            block = getattr(self, f"b{res}")
            x, _ = block(x, None, ws[:, start:start + length], noise_mode, generator,
                         fused=False, with_rgb=False)
            feats.append(x)
        return feats


class StyleGAN2Generator(nn.Module):
    """The full generator; implements the ``models.generator.Generator`` protocol.

    ``mapping`` is a sub-module, so ``G.mapping(z, psi)`` returns W [n, w_dim] as the protocol
    asks, while state-dict keys stay NVIDIA's (``mapping.fc0.weight``, ...).
    """

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.z_dim = config.z_dim
        self.w_dim = config.w_dim
        self.num_ws = config.num_ws
        self.resolution = config.resolution
        self.img_channels = config.img_channels
        self.noise_mode = "const" if config.use_noise else "none"
        self.mapping = MappingNetwork(config.z_dim, config.w_dim, config.mapping_layers,
                                      lr_mul=config.mapping_lr_mul, w_avg_beta=config.w_avg_beta)
        self.synthesis = SynthesisNetwork(config)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def mapping_ws(self, z: torch.Tensor, truncation_psi: float = 1.0,
                   truncation_cutoff: int | None = None, update_w_avg: bool = True
                   ) -> torch.Tensor:
        """W+ codes [n, num_ws, w_dim]; truncation restricted to the first ``truncation_cutoff``
        entries when given (NVIDIA's convention), otherwise applied to all."""
        w = self.mapping(z, update_w_avg=update_w_avg)
        ws = broadcast_ws(w, self.num_ws)
        if truncation_psi == 1:
            return ws
        cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
        ws = ws.clone()
        ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws

    def synthesize(self, ws: torch.Tensor, noise_mode: str | None = None,
                   generator: torch.Generator | None = None, fused: bool = False) -> torch.Tensor:
        """W+ [n, num_ws, w_dim] (or W [n, w_dim], broadcast) -> NCHW image roughly in [-1, 1]."""
        if ws.ndim == 2:
            ws = broadcast_ws(ws, self.num_ws)
        return self.synthesis(ws, noise_mode or self.noise_mode, generator, fused)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        ws = self.mapping_ws(z, truncation_psi, truncation_cutoff)
        return self.synthesize(ws, noise_mode, generator)

    def layer_for_index(self, index: int) -> tuple[str, nn.Module]:
        """(name, module) of the modulated layer reading W+ ``index``; the last index is the
        final ToRGB, every other index a conv (the SeFa / genforce convention)."""
        if not 0 <= index < self.num_ws:
            raise ValueError(f"W+ index must be in [0, {self.num_ws}), got {index}")
        if index == self.num_ws - 1:
            name = f"b{self.resolution}.torgb"
        elif index == 0:
            name = "b4.conv1"
        else:
            k = (index + 5) // 2 if index % 2 else (index + 4) // 2
            name = f"b{2**k}.conv{0 if index % 2 else 1}"
        return f"synthesis.{name}", self.synthesis.get_submodule(name)

    def style_affines(self) -> list[torch.Tensor]:
        """Per W+ index, the RAW stored affine weight [C_in, w_dim] of the layer reading it
        (see ``layer_for_index``). Raw = without the common 1/sqrt(w_dim) run-time gain and
        without the ToRGB's extra 1/sqrt(C_in) style scale; detached copies."""
        return [self.layer_for_index(i)[1].affine.weight.detach().clone()
                for i in range(self.num_ws)]

    def features(self, ws: torch.Tensor, upto_block: int) -> list[torch.Tensor]:
        """Feature maps (after conv1) of the first ``upto_block`` blocks (4x4 is block 1)."""
        if ws.ndim == 2:
            ws = broadcast_ws(ws, self.num_ws)
        return self.synthesis.features(ws, upto_block, self.noise_mode)

    @property
    def num_blocks(self) -> int:
        return len(self.synthesis.block_resolutions)
