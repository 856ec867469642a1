"""A tiny stand-in for the FFHQ assets, file for file: a 32-px StyleGAN2 generator pickle in
stylegan2-ada-pytorch's format under the name of the default FFHQ generator, and 40 CelebA-HQ
classifier pickles in NVIDIA's TF layout at 16 px (few feature maps, distinct seeded weights per
attribute) under NVIDIA's 40 file names. ``standin_mirror()`` gives them as the bytes a loopback
server serves for ``bench prepare ffhq --base-url``; ``write_classifiers`` puts classifiers into
a cache folder by hand."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from celebahq_fixtures import d_paper_layout, random_variables, write_classifier_pickle
from nvidia_generator_pickle import random_generator, write_nvidia_pickle

from datasets.ffhq_assets import CLASSIFIERS, DEFAULT_GENERATOR, GENERATORS
from models.stylegan2 import StyleGAN2Config

GENERATOR_FILE = GENERATORS[DEFAULT_GENERATOR].file
STANDIN_CONFIG = StyleGAN2Config(resolution=32, z_dim=16, w_dim=16, mapping_layers=2,
                                 channel_base=512, channel_max=32, conv_clamp=256.0)
CLASSIFIER_RESOLUTION = 16


@cache
def generator_bytes(resolution: int = 32) -> bytes:
    """The stand-in generator (seeded random weights) as an NVIDIA pickle."""
    with tempfile.TemporaryDirectory() as folder:
        config = STANDIN_CONFIG.replace(resolution=resolution)
        return write_nvidia_pickle(random_generator(config, seed=11), Path(folder) / "g.pkl")


@cache
def classifier_bytes(index: int, resolution: int = CLASSIFIER_RESOLUTION) -> bytes:
    """Classifier ``index`` (00-39) at ``resolution`` px with 8-16 feature maps."""
    layout = d_paper_layout(resolution, fmap_base=64, fmap_max=16)
    with tempfile.TemporaryDirectory() as folder:
        path = write_classifier_pickle(
            Path(folder) / "c.pkl", random_variables(layout, seed=100 + index),
            static_kwargs={"num_channels": 3, "resolution": resolution, "label_size": 0})
        return path.read_bytes()


def standin_mirror() -> dict[str, bytes]:
    """File name -> bytes of the default FFHQ generator and the 40 classifiers."""
    files = {GENERATOR_FILE: generator_bytes()}
    files.update({asset.file: classifier_bytes(i) for i, asset in enumerate(CLASSIFIERS)})
    return files


def write_classifiers(folder: Path, resolution: int = CLASSIFIER_RESOLUTION,
                      damaged: dict[int, bytes] | None = None) -> Path:
    """The 40 classifier files in ``folder`` (created); ``damaged[i]`` replaces file i's bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, asset in enumerate(CLASSIFIERS):
        data = (damaged or {}).get(i)
        (folder / asset.file).write_bytes(data if data is not None
                                          else classifier_bytes(i, resolution))
    return folder
