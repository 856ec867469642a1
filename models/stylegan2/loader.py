"""One entry point for StyleGAN2 generator checkpoints in any supported format.

The format is chosen from the file extension and then confirmed from the content:

* native ``name.safetensors`` + ``name.json`` (also given as ``name`` or ``name.json``);
* rosinality ``.pt`` / ``.pth`` / ``.ckpt``: a ``torch.save`` dict with ``g_ema`` (converted or
  training checkpoint), or a bare ``g_ema`` state dict, in the default channel table or the
  ``small=True`` one (one width at every resolution). DisCo's public 3DShapes, MPI3D and
  Cars3D generators (``0.pt`` ... ``4.pt``) are bare state dicts of
  ``Generator(size=64, style_dim=512, n_mlp=3, channel_multiplier=4, small=True)``: 64 px,
  256 channels at every resolution, 10 W+ rows, read unchanged (``mapping.w_avg`` estimated,
  as for every file without ``latent_avg``);
* genforce / SeFa ``.pth`` (same extensions): a dict with ``generator_smooth`` / ``generator``,
  or a bare genforce generator state dict;
* NVIDIA stylegan2-ada-pytorch / StyleGAN3-release StyleGAN2 ``.pkl`` and NVIDIA TensorFlow
  StyleGAN2 ``.pkl`` (both through the restricted unpickler, told apart by content);
* a ``.pkl`` that is really a ``torch.save`` file is read as one.

Nothing here executes code from a checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.stylegan2.foreign import CheckpointFormatError, read_torch_checkpoint
from models.stylegan2.generator import StyleGAN2Generator
from models.stylegan2.genforce import genforce_generator, is_genforce_state_dict
from models.stylegan2.native import load_generator, save_generator
from models.stylegan2.nvidia_pickle import nvidia_generator, read_nvidia_pickle
from models.stylegan2.rosinality import (
    is_rosinality_state_dict,
    rosinality_generator,
    rosinality_layout,
)
from models.stylegan2.tf_pickle import is_tf_network_tuple, tf_generator

FORMATS = ("native", "torch", "rosinality", "genforce", "nvidia")
NATIVE_SUFFIXES = (".safetensors", ".json")
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")
PICKLE_SUFFIXES = (".pkl", ".pickle")

_EXPECTED = ("expected .safetensors/.json (native), .pt/.pth/.ckpt (rosinality, also a bare "
             "state dict such as DisCo's 64-px small=True files; genforce) or .pkl (NVIDIA "
             "stylegan2-ada-pytorch or TensorFlow StyleGAN2)")
_ZIP_MAGIC = b"PK\x03\x04"
# torch's legacy (pre-1.6) serialisation starts with a protocol-2 pickle of this magic number.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def detect_format(path: str | os.PathLike[str]) -> str:
    """``native``, ``torch`` (a ``torch.save`` file: rosinality or genforce, told apart by
    content) or ``nvidia`` for ``path``.

    Raises FileNotFoundError for a missing file and ValueError for an unknown extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in NATIVE_SUFFIXES or (
        suffix not in TORCH_SUFFIXES + PICKLE_SUFFIXES
        and path.with_name(path.name + ".safetensors").is_file()
    ):
        return "native"
    if suffix not in TORCH_SUFFIXES + PICKLE_SUFFIXES and not path.exists():
        raise FileNotFoundError(f"{path}: no such generator checkpoint (nor "
                                f"{path.name}.safetensors beside it)")
    if suffix not in TORCH_SUFFIXES + PICKLE_SUFFIXES:
        raise ValueError(f"{path}: unsupported generator checkpoint extension "
                         f"'{path.suffix}'; {_EXPECTED}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such generator checkpoint file")
    if suffix in TORCH_SUFFIXES:
        return "torch"
    with open(path, "rb") as fh:
        head = fh.read(len(_LEGACY_TORCH_MAGIC))
    if head.startswith(_ZIP_MAGIC) or head == _LEGACY_TORCH_MAGIC:
        return "torch"
    return "nvidia"


def load_any_generator(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    network: str = "G_ema",
    w_avg_samples: int = 10_000,
    seed: int = 0,
    mapping_lr_mul: float = 0.01,
    device: str | torch.device = "cpu",
) -> StyleGAN2Generator:
    """Load a StyleGAN2 generator from any supported checkpoint format (eval mode, no grads).

    Args:
        path: the checkpoint file (for native checkpoints the ``.safetensors``, the ``.json``
            or the common stem).
        format: force ``native``, ``rosinality``, ``genforce`` or ``nvidia`` instead of
            detecting it (``torch`` = rosinality or genforce, by content).
        network: which network of an NVIDIA pickle (``G_ema``, or ``G``; for TF pickles
            ``G_ema`` means ``Gs``).
        w_avg_samples, seed: for rosinality files without ``latent_avg``, ``w_avg`` is the
            mean mapping output over this many z drawn with this seed.
        mapping_lr_mul: the mapping lr multiplier for rosinality / genforce files, which do not
            store it (default 0.01, both repositories' default).
        device: where the returned module lives.

    Malformed or foreign files raise a one-line ``ValueError`` (``CheckpointFormatError``)
    naming the file and what was expected; refused pickle globals raise ``UnsafePickleError``.
    """
    path = Path(path)
    if format is None:
        format = detect_format(path)
    elif format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if format == "native":
        G = load_generator(path)
    elif format == "nvidia":
        data = read_nvidia_pickle(path)
        if is_tf_network_tuple(data):
            G = tf_generator(data, str(path), network=network)
        else:
            G = nvidia_generator(data, str(path), network=network)
    else:
        ckpt = read_torch_checkpoint(path, "StyleGAN2 generator")
        if format == "torch":
            format = _torch_flavour(ckpt, path)
        if format == "genforce":
            G = genforce_generator(ckpt, str(path), mapping_lr_mul=mapping_lr_mul)
        else:
            G = rosinality_generator(ckpt, str(path), w_avg_samples=w_avg_samples, seed=seed,
                                     mapping_lr_mul=mapping_lr_mul)
    return G.to(device)


def _torch_flavour(ckpt: Any, path: Path) -> str:
    """``rosinality`` or ``genforce`` from a loaded ``torch.save`` object's keys."""
    if isinstance(ckpt, dict):
        if "g_ema" in ckpt or is_rosinality_state_dict(ckpt):
            return "rosinality"
        if "generator" in ckpt or "generator_smooth" in ckpt or is_genforce_state_dict(ckpt):
            return "genforce"
    found = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
    raise CheckpointFormatError(
        f"{path}: not a StyleGAN2 generator checkpoint; expected a rosinality dict with 'g_ema', "
        f"a genforce dict with 'generator'/'generator_smooth', or a bare generator state dict "
        f"of either (DisCo's 3DShapes/MPI3D/Cars3D files are bare rosinality state dicts of "
        f"Generator(size=64, style_dim=512, n_mlp=3, channel_multiplier=4, small=True)); "
        f"found {found}"
    )


def convert_to_native(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], **hints: Any
) -> tuple[Path, Path]:
    """Import ``src`` (any supported format) and write it as native ``dst.safetensors`` +
    ``dst.json``; the JSON meta records the source file name and format."""
    fmt = hints.get("format") or detect_format(src)
    G = load_any_generator(src, **hints)
    return save_generator(G, dst, extra_meta={"converted_from": Path(src).name,
                                              "source_format": fmt})


def describe_generator(G: StyleGAN2Generator, fmt: str) -> str:
    """A short line saying what a loaded generator is (format and architecture; for rosinality
    files the ``Generator`` call whose layout the tensors have, e.g. DisCo's ``small=True``)."""
    config = G.config
    channels = sorted({int(c) for _, c in config.channels}) if config.channels else None
    width = (f"{channels[0]} channels" if channels and len(channels) == 1
             else f"{channels[0]}-{channels[-1]} channels" if channels else "default channels")
    if fmt == "rosinality":
        width += f", layout {rosinality_layout(config.resolution, config.channel_table())}"
    return (f"{fmt} StyleGAN2, {config.resolution} px, z {config.z_dim}, w {config.w_dim}, "
            f"{config.num_ws} W+ rows, {config.mapping_layers} mapping layers, {width}")


@dataclass(frozen=True)
class GeneratorSummary:
    """What ``inspect_generator`` found: a one-line description and the image size."""

    text: str
    resolution: int

    def __str__(self) -> str:
        return self.text


def inspect_generator(path: str | os.PathLike[str]) -> GeneratorSummary:
    """Open ``path`` as the cells will (every check of ``load_any_generator``: format by
    header, the restricted unpickler's allowlist, the architecture inferred from the tensors)
    and say what it is; any failure is a one-line ``CheckpointFormatError``.

    Used before a grid starts, so that a bad file is one error line, not a failed cell."""
    path = Path(path)
    try:
        fmt = detect_format(path)
        if fmt == "torch":
            fmt = _torch_flavour(read_torch_checkpoint(path, "StyleGAN2 generator"), path)
        G = load_any_generator(path, format=fmt)
    except CheckpointFormatError:
        raise
    except (ValueError, FileNotFoundError, IsADirectoryError) as err:
        raise CheckpointFormatError(str(err).splitlines()[0] if str(err) else
                                    f"{path}: not a StyleGAN2 generator checkpoint") from None
    except Exception as err:  # noqa: BLE001 - whatever a damaged file raises, one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise CheckpointFormatError(f"{path}: not a readable StyleGAN2 generator checkpoint "
                                    f"({type(err).__name__}: {first}); {_EXPECTED}") from None
    return GeneratorSummary(describe_generator(G, fmt), int(G.config.resolution))
