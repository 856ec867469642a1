"""Pure-PyTorch StyleGAN2 (generator, discriminator, native checkpoints) with NVIDIA names."""

from models.stylegan2.config import PRESETS, StyleGAN2Config, get_preset
from models.stylegan2.discriminator import StyleGAN2Discriminator
from models.stylegan2.generator import MappingNetwork, StyleGAN2Generator, SynthesisNetwork
from models.stylegan2.native import load_generator, read_checkpoint_json, save_generator

__all__ = [
    "PRESETS",
    "MappingNetwork",
    "StyleGAN2Config",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "SynthesisNetwork",
    "get_preset",
    "load_generator",
    "read_checkpoint_json",
    "save_generator",
]
