"""The FFHQ assets: a StyleGAN2 FFHQ generator and StyleGAN's 40 CelebA-HQ attribute
classifiers, where NVIDIA publishes each, and where they live in the cache.

``bench prepare ffhq`` (``datasets.prepare_ffhq``) downloads them into
``$BENCH_CACHE/ffhq/`` (default ``~/.cache/disentangle-bench/ffhq/``); ``ffhq_assets`` finds
them there without touching the network. Every URL below is copied from NVIDIA's public code:

- ``ffhq512`` (the default, the generator ContraFeat's evaluation notebooks use):
  NVlabs/stylegan2-ada-pytorch ``train.py``, ``resume_specs['ffhq512']`` (commit d72cc7d), a
  PyTorch pickle, 512 px, from the transfer-learning source nets.
- ``config-f``: the original StyleGAN2 config-f network, 1024 px, a TensorFlow pickle;
  NVlabs/stylegan2 ``pretrained_networks.py``, ``gdrive:networks/stylegan2-ffhq-config-f.pkl``
  (commit bf0fe0b).
- ``ada-ffhq``: stylegan2-ada-pytorch's ``pretrained/ffhq.pkl``, "FFHQ at 1024x1024, trained
  using original StyleGAN2", a PyTorch pickle; its README and ``calc_metrics.py`` (d72cc7d).
- the classifiers: NVlabs/stylegan2 ``metrics/linear_separability.py``, ``classifier_urls``
  (bf0fe0b); the same 40 file names, in the same order, as NVlabs/stylegan's file of that name
  (1e0d5c7, which lists Google Drive links).

NVIDIA publishes no digest for any of these files, so none is written here (``sha256=None``):
the first copy seen is recorded in the cache's ``manifest.json`` (``core.digest_record``) and a
later copy that differs is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.digest_record import DigestRecord
from core.errors import BenchError
from core.hashing import file_sha256
from core.inputs import cache_root

CDN = "https://nvlabs-fi-cdn.nvidia.com"
CACHE_FOLDER = "ffhq"  # under $BENCH_CACHE
AssetKind = Literal["generator", "classifier"]

_ADA_PYTORCH = "NVlabs/stylegan2-ada-pytorch@d72cc7d"
_STYLEGAN2 = "NVlabs/stylegan2@bf0fe0b"


@dataclass(frozen=True)
class Asset:
    """One downloadable file: its name (in the cache folder and at the end of its URL), URL,
    kind, where the URL is given in public code, and its published sha256 (None: none is)."""

    file: str
    url: str
    kind: AssetKind
    source: str
    sha256: str | None = None


GENERATORS: dict[str, Asset] = {
    "ffhq512": Asset(
        "ffhq-res512-mirror-stylegan2-noaug.pkl",
        f"{CDN}/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/"
        "ffhq-res512-mirror-stylegan2-noaug.pkl",
        "generator", f"{_ADA_PYTORCH} train.py resume_specs['ffhq512']"),
    "config-f": Asset(
        "stylegan2-ffhq-config-f.pkl",
        f"{CDN}/stylegan2/networks/stylegan2-ffhq-config-f.pkl",
        "generator", f"{_STYLEGAN2} pretrained_networks.py"),
    "ada-ffhq": Asset(
        "ffhq.pkl",
        f"{CDN}/stylegan2-ada-pytorch/pretrained/ffhq.pkl",
        "generator", f"{_ADA_PYTORCH} README.md, calc_metrics.py"),
}
DEFAULT_GENERATOR = "ffhq512"

# The CelebA attributes in the order of StyleGAN's classifier files (00 .. 39).
CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "male", "smiling", "attractive", "wavy-hair", "young", "5-o-clock-shadow",
    "arched-eyebrows", "bags-under-eyes", "bald", "bangs", "big-lips", "big-nose", "black-hair",
    "blond-hair", "blurry", "brown-hair", "bushy-eyebrows", "chubby", "double-chin",
    "eyeglasses", "goatee", "gray-hair", "heavy-makeup", "high-cheekbones",
    "mouth-slightly-open", "mustache", "narrow-eyes", "no-beard", "oval-face", "pale-skin",
    "pointy-nose", "receding-hairline", "rosy-cheeks", "sideburns", "straight-hair",
    "wearing-earrings", "wearing-hat", "wearing-lipstick", "wearing-necklace",
    "wearing-necktie",
)

CLASSIFIERS: tuple[Asset, ...] = tuple(
    Asset(f"celebahq-classifier-{index:02d}-{name}.pkl",
          f"{CDN}/stylegan/networks/metrics/celebahq-classifier-{index:02d}-{name}.pkl",
          "classifier", f"{_STYLEGAN2} metrics/linear_separability.py classifier_urls")
    for index, name in enumerate(CELEBA_ATTRIBUTES))


class MissingAssetsError(BenchError):
    """FFHQ assets not (or not whole) in the cache; says what and the command that gets them."""


@dataclass(frozen=True)
class FFHQAssets:
    """Local paths of the FFHQ assets: the generator (None when not asked for) and the 40
    classifiers in CELEBA_ATTRIBUTES order."""

    folder: Path
    generator: Path | None
    classifiers: tuple[Path, ...]
    attributes: tuple[str, ...] = CELEBA_ATTRIBUTES


def generator_asset(name: str) -> Asset:
    """The generator entry ``name``; an unknown name is a BenchError listing the known ones."""
    try:
        return GENERATORS[name]
    except KeyError:
        raise BenchError(f"ffhq: generator {name!r} (--generator) is not known: expected one of "
                         f"{', '.join(GENERATORS)}") from None


def ffhq_folder(cache: str | Path | None = None) -> Path:
    """The absolute cache folder of the FFHQ assets: ``<cache>/ffhq`` (``cache`` defaults to
    ``$BENCH_CACHE`` or ``~/.cache/disentangle-bench``)."""
    root = Path(cache).expanduser() if cache is not None else cache_root()
    return (root / CACHE_FOLDER).absolute()


def prepare_command(generator: str | None) -> str:
    """The command that downloads what ``ffhq_assets(generator)`` needs."""
    if generator is None:
        return "python -m bench prepare ffhq --only classifiers"
    if generator == DEFAULT_GENERATOR:
        return "python -m bench prepare ffhq"
    return f"python -m bench prepare ffhq --generator {generator}"


def ffhq_assets(generator: str | None = DEFAULT_GENERATOR, cache: str | Path | None = None,
                *, verify: bool = False, classifiers: bool = True) -> FFHQAssets:
    """The local paths of the generator ``generator`` (a GENERATORS name; None: classifiers
    only) and the 40 classifiers (``classifiers=False``: the generator only, an empty tuple),
    from the cache only (no network).

    A file missing, or of another size than the manifest records, is one MissingAssetsError
    naming the files and the ``bench prepare ffhq`` command that gets them. ``verify`` also
    compares each file's sha256 with the manifest (about a second per GB).
    """
    folder = ffhq_folder(cache)
    wanted = (([generator_asset(generator)] if generator is not None else [])
              + (list(CLASSIFIERS) if classifiers else []))
    record = DigestRecord(folder)
    missing, differing = [], []
    for asset in wanted:
        path = folder / asset.file
        if not path.is_file():
            missing.append(asset.file)
            continue
        known = record.get(asset.file)
        want_sha = asset.sha256 or (known.sha256 if known else None)
        if ((known is not None and path.stat().st_size != known.size)
                or (verify and want_sha is not None and file_sha256(path) != want_sha)):
            differing.append(asset.file)
    if missing or differing:
        parts = []
        if missing:
            parts.append(f"missing {_names(missing)}")
        if differing:
            parts.append(f"differing from {record.path} {_names(differing)}")
        raise MissingAssetsError(f"ffhq: assets in {folder}: {'; '.join(parts)}; run "
                                 f"`{prepare_command(generator)}` to download them (or put "
                                 "them there by hand and run it to record them)")
    paths = {asset.file: folder / asset.file for asset in wanted}
    return FFHQAssets(
        folder=folder,
        generator=paths[generator_asset(generator).file] if generator is not None else None,
        classifiers=tuple(paths[asset.file] for asset in CLASSIFIERS if asset.file in paths))


def _names(files: list[str]) -> str:
    """A short list of file names: every name up to 3, else the first 2 and a count."""
    if len(files) <= 3:
        return ", ".join(files)
    return f"{files[0]}, {files[1]} and {len(files) - 2} more"
