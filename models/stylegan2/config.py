"""StyleGAN2 architecture configuration (a frozen dataclass) and named presets.

Channels per resolution follow NVIDIA's rule ``min(channel_base // res, channel_max)`` unless an
explicit per-resolution table is given (the tiny CPU presets are not expressible by the rule). The
discriminator shares the generator's table unless it is given its own (``disc_channels``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StyleGAN2Config:
    """Everything needed to rebuild a StyleGAN2 generator / discriminator pair."""

    resolution: int
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    # explicit table: given as a mapping or (res, channels) pairs, stored as sorted pairs
    channels: tuple[tuple[int, int], ...] | Mapping[int, int] | None = None
    use_noise: bool = True
    conv_clamp: float | None = None
    mapping_lr_mul: float = 0.01
    w_avg_beta: float = 0.995
    architecture: str = "skip"
    mbstd_group: int = 4
    # the discriminator's own table (same forms as ``channels``); None: the generator's
    disc_channels: tuple[tuple[int, int], ...] | Mapping[int, int] | None = None

    def __post_init__(self) -> None:
        res = self.resolution
        if res < 4 or res & (res - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {res}")
        if self.architecture != "skip":
            raise ValueError(f"only the 'skip' generator architecture is supported, "
                             f"got {self.architecture!r}")
        for name in ("z_dim", "w_dim", "mapping_layers", "img_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("channels", "disc_channels"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, self._sorted_table(name))

    def _sorted_table(self, name: str) -> tuple[tuple[int, int], ...]:
        """The table ``name`` (a mapping or (res, channels) pairs, e.g. from JSON) as sorted
        pairs over the block resolutions, so equal tables compare equal whatever their form."""
        given = getattr(self, name)
        pairs = given.items() if isinstance(given, Mapping) else given
        table = {int(r): int(c) for r, c in pairs}
        missing = [r for r in self.block_resolutions if r not in table]
        if missing:
            raise ValueError(f"explicit {name} lack resolutions {missing}")
        return tuple(sorted((r, table[r]) for r in self.block_resolutions))

    @property
    def log2_resolution(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, self.log2_resolution + 1)]

    @property
    def num_ws(self) -> int:
        return 2 * self.log2_resolution - 2

    def channels_at(self, res: int) -> int:
        """Feature channels of the block at resolution ``res``."""
        if self.channels is not None:
            return dict(self.channels)[res]
        return min(self.channel_base // res, self.channel_max)

    def channel_table(self) -> dict[int, int]:
        return {r: self.channels_at(r) for r in self.block_resolutions}

    def disc_channels_at(self, res: int) -> int:
        """Feature channels of the discriminator at resolution ``res``."""
        if self.disc_channels is not None:
            return dict(self.disc_channels)[res]
        return self.channels_at(res)

    def replace(self, **changes: Any) -> StyleGAN2Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; the channel table is always written out explicitly, the
        discriminator's only when it has its own (so earlier configs keep their exact form)."""
        out = dataclasses.asdict(self)
        out["channels"] = {str(r): c for r, c in self.channel_table().items()}
        if self.disc_channels is None:
            del out["disc_channels"]
        else:
            out["disc_channels"] = {str(r): c for r, c in self.disc_channels}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StyleGAN2Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown StyleGAN2 config keys {unknown}")
        return cls(**data)


_TINY32M4 = StyleGAN2Config(
    resolution=32, z_dim=128, w_dim=128, mapping_layers=4, use_noise=False,
    channels={4: 128, 8: 128, 16: 64, 32: 32},
)

PRESETS: dict[str, StyleGAN2Config] = {
    # unit tests and CI smoke training
    "micro32": StyleGAN2Config(
        resolution=32, z_dim=32, w_dim=32, mapping_layers=2, use_noise=False,
        channels={4: 32, 8: 32, 16: 16, 32: 16},
    ),
    # the main CPU-sized model of spec section 2.4
    "tiny32": StyleGAN2Config(
        resolution=32, z_dim=128, w_dim=128, mapping_layers=2, use_noise=False,
        channels={4: 128, 8: 128, 16: 64, 32: 32},
    ),
    # tiny32 with tiny64's 4-layer mapping network: tiny32's 2 layers let the discrete hue modes
    # collapse within 30 kimg on shapes3d-synth (docs/generator.md)
    "tiny32m4": _TINY32M4,
    # tiny32m4 with its mapping network trained at the full learning rate. At NVIDIA's 0.01 (for
    # 25M-image runs) tiny32m4's mapping weights moved 0.25-0.67 % in 895 kimg against 18-67 % for
    # the synthesis weights: the mapping stayed a random MLP (docs/generator.md, run Z)
    "tiny32m4f": _TINY32M4.replace(mapping_lr_mul=1.0),
    # tiny32m4 whose discriminator's minibatch standard deviation spans the whole batch of 32
    # (NVIDIA's choice for 32-px CIFAR-10) instead of groups of 4, so a batch whose objects are
    # too alike in scale or shape stands out (docs/generator.md, run W)
    "tiny32m4s": _TINY32M4.replace(mbstd_group=32),
    # tiny32m4 with a discriminator 1.5x as wide at 16 and 32 px (96 and 48 channels for the
    # generator's 64 and 32), 1.45x the cost of a training step (docs/generator.md, run V)
    "tiny32m4w": _TINY32M4.replace(disc_channels={4: 128, 8: 128, 16: 96, 32: 48}),
    # tiny32m4 with both networks 1.5x as wide at 8 and 16 px (192 and 96 channels), where the
    # object's size and outline are laid down (docs/generator.md, run A8)
    "tiny32m4x8": _TINY32M4.replace(channels={4: 128, 8: 192, 16: 96, 32: 32}),
    # tiny32m4 with both networks 2x as wide at 4 and 8 px (256 channels), where the first two
    # W+ entries, which set the object's size and shape, are read (docs/generator.md, run A4)
    "tiny32m4x4": _TINY32M4.replace(channels={4: 256, 8: 256, 16: 64, 32: 32}),
    # tiny32m4 with both networks 1.5x as wide at 16 and 32 px (96 and 48 channels): run V's
    # discriminator with a generator to match (docs/generator.md, run A16)
    "tiny32m4x16": _TINY32M4.replace(channels={4: 128, 8: 128, 16: 96, 32: 48}),
    # 64x64 sized for a contended 2-core CPU: narrower than spec 2.4's TINY-64 (256, 128, 64,
    # 32, 32; z = w = 256) at 4 and 64, which cost about 2.5x more per training image
    "tiny64": StyleGAN2Config(
        resolution=64, z_dim=128, w_dim=128, mapping_layers=4, use_noise=False,
        channels={4: 128, 8: 128, 16: 64, 32: 32, 64: 16},
    ),
    # NVIDIA config-f geometry (FFHQ 1024); used for shape/parameter-count checks
    "ffhq1024": StyleGAN2Config(resolution=1024),
}


def get_preset(name: str) -> StyleGAN2Config:
    """A named preset; unknown names raise a ValueError listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ValueError(f"unknown StyleGAN2 config {name!r} (known: {known})") from None
