"""Synthesis in pieces and in place (models.stylegan2.generator): the images must be bit for bit
those of one whole-batch pass with fresh tensors, or pair files and scores would move with the
memory-saving code (docs/performance.md, "Real-size generators")."""

from __future__ import annotations

import pytest
import torch

from models.stylegan2 import StyleGAN2Generator
from models.stylegan2.config import StyleGAN2Config, get_preset
from models.stylegan2.generator import SYNTHESIS_PIECE, synthesis_pieces
from models.stylegan2.ops import bias_act

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _disco_like() -> StyleGAN2Generator:
    """DisCo's layout (64 px, equal widths, noise, 3 mapping layers) at 8 channels: the same
    ops and paths as the real-size generator, cheap enough for a test."""
    torch.manual_seed(0)
    config = StyleGAN2Config(resolution=64, z_dim=32, w_dim=32, mapping_layers=3,
                             channels=tuple((r, 8) for r in (4, 8, 16, 32, 64)),
                             use_noise=True, conv_clamp=None, mapping_lr_mul=0.01)
    G = StyleGAN2Generator(config).eval().requires_grad_(False)
    with torch.no_grad():  # non-zero noise strengths and biases, so those steps count
        for name, p in G.named_parameters():
            if name.endswith("noise_strength") or (name.endswith(".bias") and "affine" not in name):
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    return G


def _micro_clamped() -> StyleGAN2Generator:
    torch.manual_seed(1)
    config = get_preset("micro32").replace(conv_clamp=0.5)
    return StyleGAN2Generator(config).eval().requires_grad_(False)


def _whole(G: StyleGAN2Generator, ws: torch.Tensor, **kwargs: object) -> torch.Tensor:
    """The plain form: with ``ws`` requiring grad, synthesis keeps the batch whole and every
    intermediate a fresh tensor."""
    with torch.enable_grad():
        return G.synthesize(ws.detach().clone().requires_grad_(), **kwargs).detach()


def test_pieces_are_few_at_most_the_cap_and_at_least_sixteen() -> None:
    assert synthesis_pieces(1) == [1]
    assert synthesis_pieces(SYNTHESIS_PIECE) == [SYNTHESIS_PIECE]
    assert synthesis_pieces(250) == [32, 32, 31, 31, 31, 31, 31, 31]
    for n in range(SYNTHESIS_PIECE + 1, 2000):
        pieces = synthesis_pieces(n)
        assert sum(pieces) == n and len(pieces) == -(-n // SYNTHESIS_PIECE)
        assert 16 <= min(pieces) and max(pieces) <= SYNTHESIS_PIECE


@pytest.mark.parametrize("make", [_disco_like, _micro_clamped], ids=["disco-like", "clamped"])
@pytest.mark.parametrize("n", [7, 40, 70])
def test_pieces_and_in_place_steps_give_the_whole_batch_images(make, n) -> None:
    G = make()
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        w = G.mapping(z, 0.7)
        ws = G.mapping_ws(z, 0.7) + 0.2 * torch.randn(n, G.num_ws, G.w_dim,
                                                      generator=torch.Generator().manual_seed(2))
        for codes in (w, ws):  # a broadcast W view and a full W+ tensor
            for noise_mode in ("const", "none"):
                fast = G.synthesize(codes, noise_mode)
                assert torch.equal(fast, _whole(G, codes, noise_mode=noise_mode))
        assert torch.equal(G.synthesize(ws, fused=True), _whole(G, ws, fused=True))
    # grad mode on with nothing requiring grad takes the fast path too
    assert torch.equal(G.synthesize(ws), _whole(G, ws))


def test_random_noise_keeps_the_batch_whole() -> None:
    """Per-image noise is drawn layer by layer for the whole batch; pieces would draw it in
    another order, so a seeded random-noise batch gives the images it always gave."""
    G = _disco_like()
    ws = G.mapping_ws(torch.randn(40, G.z_dim, generator=torch.Generator().manual_seed(3)))
    with torch.no_grad():
        fast = G.synthesize(ws, "random", torch.Generator().manual_seed(4))
    assert torch.equal(fast, _whole(G, ws, noise_mode="random",
                                    generator=torch.Generator().manual_seed(4)))


def test_a_graph_still_reaches_every_parameter() -> None:
    G = _disco_like().requires_grad_(True)
    ws = G.mapping_ws(torch.randn(40, G.z_dim, generator=torch.Generator().manual_seed(5)))
    G.synthesize(ws).square().mean().backward()
    assert all(p.grad is not None for p in G.synthesis.parameters())


@pytest.mark.parametrize(("act", "gain", "clamp"),
                         [("lrelu", 1.0, None), ("lrelu", 0.7, 0.3), ("linear", 2.0, 0.5),
                          ("linear", 1.0, None)])
def test_bias_act_in_place_is_the_same_arithmetic(act, gain, clamp) -> None:
    x = torch.randn(3, 5, 4, 4, generator=torch.Generator().manual_seed(6))
    bias = torch.randn(5, generator=torch.Generator().manual_seed(7))
    want = bias_act(x, bias, act=act, gain=gain, clamp=clamp)
    mine = x.clone()
    got = bias_act(mine, bias, act=act, gain=gain, clamp=clamp, inplace=True)
    assert got.data_ptr() == mine.data_ptr()
    assert torch.equal(got, want)
