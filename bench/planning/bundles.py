"""The grid's dataset axis: the ``BUNDLES`` registry, ``load_bundle`` and the built-in bundles.

Factories ``(data_dir: str | None) -> Bundle``; importing this module registers the built-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.digest_record import DigestRecord
from core.errors import DataError
from core.hashing import file_sha256, stable_hash
from core.inputs import (
    DEVICE_ENV,
    InputError,
    cache_root,
    data_root,
    env_origin,
    env_path,
    env_value,
)
from core.registry import Registry
from datasets import load_ground_truth
from datasets.base import GroundTruthData
from datasets.ffhq_assets import (
    CLASSIFIERS,
    FFHQAssets,
    MissingAssetsError,
    ffhq_assets,
    ffhq_folder,
)
from datasets.ffhq_assets import DEFAULT_GENERATOR as DEFAULT_FFHQ_GENERATOR
from models.bundle import Bundle
from models.celebahq import inspect_celebahq_classifier, load_celebahq40
from models.generator import seen_at
from models.oracle import OracleConfig, OracleGenerator
from models.predictor import RESOLUTION as SHAPES3D_IMAGE_SIZE
from models.predictor import SHAPES3D_PREDICTOR, load_any_predictor
from models.predictor import load_predictor as load_attribute_predictor
from models.sensors import ALEXNET_ENV, alexnet_weights_path, load_sensor, sensor_identity
from models.stylegan2 import load_generator as load_native
from models.stylegan2.foreign import CheckpointFormatError
from models.stylegan2.loader import GeneratorSummary, inspect_generator, load_any_generator
from models.user_predictor import UserPredictor

BUNDLES: Registry[Callable[..., Bundle]] = Registry("dataset")


def load_bundle(name: str, data_dir: str | None = None) -> Bundle:
    """Build a registered dataset bundle by name."""
    return BUNDLES.get(name)(data_dir=data_dir)


@BUNDLES.register(
    "shapes3d-synth",
    description="procedural 3DShapes look-alike (embedded, no download)",
)
def shapes3d_synth(data_dir: str | None = None) -> Bundle:
    gt = load_ground_truth("shapes3d-synth")
    return Bundle("shapes3d-synth", ground_truth=gt, identity={"ground_truth": gt.identity()})


@BUNDLES.register(
    "dsprites-synth",
    description="procedural dSprites look-alike (embedded, no download)",
)
def dsprites_synth(data_dir: str | None = None) -> Bundle:
    gt = load_ground_truth("dsprites-synth")
    return Bundle("dsprites-synth", ground_truth=gt, identity={"ground_truth": gt.identity()})


def real_data_dir(data_dir: str | None) -> str | None:
    """The user's data folder: ``--data-dir`` first, then $BENCH_DATA (either checked to
    exist; None when neither names one)."""
    named = data_root(data_dir)
    return None if named is None else str(named[0])


# -- bundles with a generator (direction discovery) ---------------------------------------------

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "models" / "weights"
SHAPES3D_GENERATOR = WEIGHTS_DIR / "shapes3d_generator.safetensors"
SHAPES3D_GENERATOR_ENV = "BENCH_SHAPES3D_GENERATOR"
FFHQ_GENERATOR_ENV = "BENCH_FFHQ_GENERATOR"
FFHQ_PREDICTOR_ENV = "BENCH_FFHQ_PREDICTOR"
SHAPES3D_PREDICTOR_ENV = "BENCH_SHAPES3D_PREDICTOR"
SHAPES3D_SENSOR = "shapes3d-disc"  # the discriminator trained with the shipped generator
MPI3D_GENERATOR_ENV = "BENCH_MPI3D_GENERATOR"
MPI3D_PREDICTOR_ENV = "BENCH_MPI3D_PREDICTOR"
CARS3D_GENERATOR_ENV = "BENCH_CARS3D_GENERATOR"
CARS3D_PREDICTOR_ENV = "BENCH_CARS3D_PREDICTOR"
FFHQ_DATA_FILES = ("ffhq.pkl", "ffhq.pt", "ffhq.safetensors")
GENERATOR_EXPECTED = ("a StyleGAN2 generator checkpoint (NVIDIA .pkl, rosinality or genforce "
                      ".pt/.pth, or native .safetensors)")
# ContraFeat's FFHQ protocol (Zhu et al. 2023) as the ffhq bundle's values of the directions
# flow's settings: `evaluate_model` and `summarize` in the authors' eval_nav_nb_table1.ipynb
# (zhuxinqimac/stylegan2-ada-pytorch, branch group, commit 897e73e); docs/ffhq.md says where
# each value comes from. The quick profile keeps the edit rule and the profile's 10 directions,
# with 32 latents per direction: a check that runs, not numbers to report.
FFHQ_PROTOCOL: dict[str, dict[str, object]] = {
    "paper": {
        "discovery": {
            "num_samples": 500,  # evaluate_model(..., n_samples_per=500)
            "truncation_psi": 0.5,  # evaluate_model(..., truncation_psi=0.5)
            "num_directions": 30,  # used_dims = list(range(30)); summarize scores R[:30]
        },
        "edit_scale": 2.0,  # evaluate_model(var_scale_ls=[2]*30); sefa_var_scale_ls = [2] * 30
    },
    "quick": {"discovery": {"num_samples": 32}, "edit_scale": 2.0},
}
PREDICTOR_EXPECTED = ("an attribute predictor with its .json beside it: a TorchScript file "
                      "(models/user_predictor.py) or the suite's .safetensors (written by "
                      "`bench train-predictor`)")


def file_identity(path: Path, digest: bool = True) -> dict[str, object]:
    """What identifies an asset file: its name and sha256 (or size + mtime for huge files)."""
    if not path.is_file():
        raise FileNotFoundError(f"asset file not found: {path}")
    if digest:
        return {"file": path.name, "sha256": file_sha256(path)}
    stat = path.stat()
    return {"file": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def bench_device() -> str:
    """Where generators run: $BENCH_DEVICE (e.g. ``cuda``), CPU by default; a name torch does
    not know, or a device this machine does not have, is one error line."""
    return check_device(env_value(DEVICE_ENV) or "cpu", env_origin(DEVICE_ENV))


def resolve_named_inputs(data_dir: str | None = None) -> None:
    """Check every input a flag or environment variable names that is not tied to one dataset:
    the data folder (``--data-dir`` / $BENCH_DATA), the cache folder ($BENCH_CACHE) and the
    device ($BENCH_DEVICE), and that every checkpoint variable that is set names a file. Each
    bad one is one error line; the checkpoints of the grid's datasets are then opened by their
    bundle's ``sources``."""
    data_root(data_dir)
    cache_root()
    bench_device()
    for variable, expected in CHECKPOINT_VARIABLES.items():
        env_path(variable, kind="file", expected=expected)


def check_device(name: str, origin: str) -> str:
    """``name`` if torch knows it and this machine has it; else an InputError naming
    ``origin``."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"{origin} {name!r} is not a torch device: expected e.g. cpu, cuda, "
                         "cuda:1 or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise InputError(f"{origin} {name!r}: this machine has {count} CUDA device(s) "
                             "usable by torch: expected cpu or an existing cuda:N")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{origin} {name!r}: MPS is not available here: expected cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"{origin} {name!r}: generators run on cpu, cuda or mps")
    return name


def _shapes3d_ground_truth(data_dir: str | None) -> tuple[object, str]:
    """The real 3dshapes.h5 when ``--data-dir`` or $BENCH_DATA names a folder (or the file),
    else the look-alike (only when neither names one, which the bundle identity's
    ``ground_truth_source`` records). A named folder without the file, or a damaged file, is an
    error whichever of the two named it: never a silent look-alike."""
    if data_root(data_dir) is not None:
        return load_ground_truth("shapes3d", data_dir), "shapes3d"
    return load_ground_truth("shapes3d-synth"), "shapes3d-synth"


def _shipped_predictor() -> tuple[object | None, dict[str, object] | None]:
    if not SHAPES3D_PREDICTOR.is_file():
        return None, None
    return (lambda: load_attribute_predictor(SHAPES3D_PREDICTOR)), file_identity(SHAPES3D_PREDICTOR)


def _user_predictor(variable: str, digest: bool = True
                    ) -> tuple[Path, Callable[[], object], dict[str, object]] | None:
    """The predictor file ``$variable`` names (either format, ``load_any_predictor``): its
    path, loader and identity (the file and the JSON beside it); None when unset."""
    path = env_path(variable, kind="file", expected=PREDICTOR_EXPECTED)
    if path is None:
        return None
    identity = file_identity(path, digest=digest)
    description = path.with_suffix(".json")
    if description.is_file():
        identity["description_sha256"] = file_sha256(description)
    return path, (lambda: load_any_predictor(path)), identity


def _shapes3d_generator() -> tuple[Path, bool]:
    """The shapes3d generator checkpoint and whether the user chose it: $BENCH_SHAPES3D_GENERATOR
    (any format ``load_any_generator`` reads), else the shipped one."""
    chosen = env_path(SHAPES3D_GENERATOR_ENV, kind="file", expected=GENERATOR_EXPECTED)
    if chosen is not None:
        return chosen, True
    if not SHAPES3D_GENERATOR.is_file():
        raise FileNotFoundError(
            f"shapes3d: shipped generator {SHAPES3D_GENERATOR} not found; train it with "
            f"`python -m bench train-generator`, set ${SHAPES3D_GENERATOR_ENV}, or use "
            "'shapes3d-oracle'")
    return SHAPES3D_GENERATOR, False


@BUNDLES.register(
    "shapes3d",
    description="shipped StyleGAN2 (32 px, seen at 64 px; or the checkpoint in "
    f"${SHAPES3D_GENERATOR_ENV}) + shipped factor predictor (or ${SHAPES3D_PREDICTOR_ENV}) + "
    "3DShapes ground truth (real "
    "3dshapes.h5 from --data-dir/$BENCH_DATA, else the look-alike; the leaderboard shows which)",
)
def shapes3d(data_dir: str | None = None) -> Bundle:
    generator_path, user_given = _shapes3d_generator()
    gt, source = _shapes3d_ground_truth(data_dir)
    load_predictor, predictor_id = _shipped_predictor()
    predictor_path, predictor_origin = SHAPES3D_PREDICTOR, "shipped"
    chosen = _user_predictor(SHAPES3D_PREDICTOR_ENV)
    if chosen is not None:  # the shipped predictor's cells keep their ids; a chosen one its own
        predictor_path, load_predictor, predictor_id = chosen
        predictor_origin = f"${SHAPES3D_PREDICTOR_ENV}"

    def load_generator() -> object:
        # a smaller generator (32 px) is seen at the predictor's and the group VAE's 64 px
        load = load_any_generator if user_given else load_native
        generator = load(generator_path, device=bench_device()).requires_grad_(False)
        return seen_at(generator, SHAPES3D_IMAGE_SIZE)

    generator_id = file_identity(generator_path)
    identity = {"ground_truth": gt.identity(), "ground_truth_source": source,
                "generator": generator_id, "predictor": predictor_id,
                "sensor": sensor_identity(SHAPES3D_SENSOR)}
    if user_given:  # the shipped generator's cells keep their ids; a chosen one gets its tables
        identity["generator_source"] = f"{generator_path.name} sha256 {generator_id['sha256']:.12}"
    origin = f"${SHAPES3D_GENERATOR_ENV}" if user_given else "shipped"

    def describe() -> dict[str, str]:
        return {"ground truth": _ground_truth_source(gt, source),
                "generator": f"{generator_path} ({origin}): "
                             f"{_inspect_generator(generator_path, origin)}",
                "predictor": _predictor_source(predictor_path, predictor_origin),
                "device": bench_device()}

    return Bundle("shapes3d", ground_truth=gt, load_generator=load_generator,
                  load_predictor=load_predictor, identity=identity, sensor=SHAPES3D_SENSOR,
                  describe=describe)


@BUNDLES.register(
    "shapes3d-oracle",
    description="renderer-backed generator with known factor directions in W (exact tests) + "
    "shipped factor predictor + the 3DShapes look-alike",
)
def shapes3d_oracle(data_dir: str | None = None) -> Bundle:
    return _oracle_bundle("shapes3d-oracle", OracleConfig())


@BUNDLES.register(
    "shapes3d-oracle-layered",
    description="the oracle with 12 W+ rows: each factor pure on its home row, aliased on the "
    "others (a broadcast W direction is entangled; known answer for W+ attention)",
)
def shapes3d_oracle_layered(data_dir: str | None = None) -> Bundle:
    return _oracle_bundle("shapes3d-oracle-layered", OracleConfig(num_ws=12))


def _oracle_bundle(name: str, config: OracleConfig) -> Bundle:
    """An oracle generator of ``config`` over the 3DShapes look-alike, with the shipped
    predictor and sensor."""
    gt = load_ground_truth("shapes3d-synth")
    load_predictor, predictor_id = _shipped_predictor()

    def load_generator() -> object:
        return OracleGenerator(config, gt).eval().requires_grad_(False)

    identity = {"ground_truth": gt.identity(), "generator": {"oracle": config.to_dict()},
                "predictor": predictor_id, "sensor": sensor_identity(SHAPES3D_SENSOR)}

    def describe() -> dict[str, str]:
        return {"ground truth": _ground_truth_source(gt, "shapes3d-synth"),
                "generator": f"the renderer-backed oracle ({config.num_ws} W+ row(s), known "
                             "factor directions)",
                "predictor": _predictor_source(SHAPES3D_PREDICTOR, "shipped"),
                "device": bench_device()}

    return Bundle(name, ground_truth=gt, load_generator=load_generator,
                  load_predictor=load_predictor, identity=identity,
                  capabilities=frozenset({"true_directions"}), sensor=SHAPES3D_SENSOR,
                  describe=describe)


@BUNDLES.register(
    "ffhq",
    description=f"FFHQ StyleGAN2 (`bench prepare ffhq`, or ${FFHQ_GENERATOR_ENV}: NVIDIA .pkl, "
    f"rosinality .pt or native) + NVIDIA's 40 CelebA-HQ classifiers (or ${FFHQ_PREDICTOR_ENV}: "
    "a predictor with its JSON); "
    f"sensor alexnet (${ALEXNET_ENV}); no ground truth; paper profile: ContraFeat's FFHQ protocol",
)
def ffhq(data_dir: str | None = None) -> Bundle:
    generator_path, origin, generator_id = _ffhq_generator(data_dir)
    chosen = _user_predictor(FFHQ_PREDICTOR_ENV, digest=False)
    classifiers = _cached_classifiers() if chosen is None else None
    if chosen is not None:
        predictor_path, load_predictor, predictor_id = chosen
    elif classifiers is not None:
        predictor_id = {"celebahq40": stable_hash([_recorded(p) for p in classifiers.classifiers])}

        def load_predictor() -> object:  # on the generators' device: 18 G MACs per image each
            device = bench_device()  # chunks of 8 images keep a CPU's memory low, 32 a GPU busy
            chunk = 8 if device == "cpu" else 32
            return load_celebahq40(classifiers.classifiers, chunk=chunk).to(device)
    else:
        load_predictor, predictor_id = None, None

    def load_generator() -> object:
        return load_any_generator(generator_path, device=bench_device())

    def describe() -> dict[str, str]:
        summary = _inspect_generator(generator_path, origin)
        described = {"generator": f"{generator_path} ({origin}): {summary}"}
        if chosen is not None:
            described["predictor"] = _predictor_source(chosen[0], f"${FFHQ_PREDICTOR_ENV}")
        elif classifiers is not None:
            size = _check_classifiers(classifiers.classifiers)
            if summary.resolution < size or summary.resolution % size:
                raise InputError(f"ffhq: the generator {generator_path} makes {summary.resolution}"
                                 f"-px images; the CelebA-HQ classifiers take {size} px or a "
                                 "multiple: expected such a generator, or a predictor of your "
                                 f"own in ${FFHQ_PREDICTOR_ENV}")
            described["predictor"] = (f"celebahq40: NVIDIA's 40 CelebA-HQ attribute classifiers "
                                      f"({size} px) in {classifiers.folder}")
        else:
            described["predictor"] = (f"none: no discovery scores (`bench prepare ffhq` gets the "
                                      f"40 classifiers, or set ${FFHQ_PREDICTOR_ENV})")
        described["sensor"] = _alexnet_source()
        described["device"] = bench_device()
        return described

    identity = {"generator": generator_id, "predictor": predictor_id,
                "sensor": sensor_identity("alexnet")}
    return Bundle("ffhq", load_generator=load_generator, load_predictor=load_predictor,
                  identity=identity, sensor="alexnet", describe=describe,
                  protocol=FFHQ_PROTOCOL)


def _ffhq_generator(data_dir: str | None) -> tuple[Path, str, dict[str, object]]:
    """The FFHQ generator: $BENCH_FFHQ_GENERATOR, else ffhq.pkl / .pt / .safetensors in the
    data folder, else the default generator `bench prepare ffhq` put in the cache; its path,
    where it came from and its identity."""
    path = env_path(FFHQ_GENERATOR_ENV, kind="file", expected=GENERATOR_EXPECTED)
    if path is not None:
        return path, f"${FFHQ_GENERATOR_ENV}", file_identity(path, digest=False)
    named = data_root(data_dir)
    if named is not None and named[0].is_dir():
        for name in FFHQ_DATA_FILES:
            if (named[0] / name).is_file():
                path = named[0] / name
                return path, f"{named[1]} {named[0]}", file_identity(path, digest=False)
    try:
        cached = ffhq_assets(DEFAULT_FFHQ_GENERATOR, classifiers=False).generator
    except MissingAssetsError as err:
        raise FileNotFoundError(
            f"ffhq: no generator checkpoint: run `python -m bench prepare ffhq` (it downloads "
            f"NVIDIA's generator and classifiers), set ${FFHQ_GENERATOR_ENV} to a StyleGAN2 "
            f"FFHQ checkpoint ({GENERATOR_EXPECTED}), or put {' / '.join(FFHQ_DATA_FILES)} into "
            f"--data-dir ({str(err).split('; run')[0]})") from None
    assert cached is not None  # asked for
    return cached, "the cache of `bench prepare ffhq`", {"file": cached.name,
                                                         "sha256": _recorded(cached)}


def _cached_classifiers() -> FFHQAssets | None:
    """The 40 classifiers `bench prepare ffhq` put in the cache, or None when none of them is
    there (the bundle then has no predictor and says how to get one). Some but not all of
    them, or one whose size differs from the manifest, is an error line: never a silent run
    without scores."""
    try:
        return ffhq_assets(None)
    except MissingAssetsError as err:
        folder = ffhq_folder()
        if any((folder / asset.file).exists() for asset in CLASSIFIERS):
            raise InputError(str(err)) from None
        return None


def _check_classifiers(paths: tuple[Path, ...]) -> int:
    """Open each classifier pickle with every check a cell's load makes, without building the
    networks (``inspect_celebahq_classifier``: about 0.1 s per real 92-MB file, 4-5 s for the
    40 on one busy core here, plus reading 3.7 GB when they are not in the page cache); their
    common input size. A damaged file is one error line before any cell starts."""
    sizes: dict[int, Path] = {}
    for path in paths:
        try:
            sizes.setdefault(inspect_celebahq_classifier(path).resolution, path)
        # a damaged file is a CheckpointFormatError (a DataError), one gone since the cache was
        # checked a FileNotFoundError: either is the cache's file, never a bug
        except (DataError, FileNotFoundError) as err:
            raise InputError(f"ffhq: CelebA-HQ classifier in the cache: {err} (expected "
                             "NVIDIA's pickle: remove the file and its manifest.json entry, then "
                             "rerun `python -m bench prepare ffhq --only classifiers`)") from None
    if len(sizes) > 1:
        found = ", ".join(f"{size} px ({path.name})" for size, path in sorted(sizes.items()))
        raise InputError(f"ffhq: the CelebA-HQ classifiers in the cache take different image "
                         f"sizes: {found}; expected one size for all 40")
    return next(iter(sizes))


def _recorded(path: Path) -> str | None:
    """The sha256 recorded when ``path`` entered the cache (cheap: no hashing here)."""
    entry = DigestRecord(path.parent).get(path.name)
    return entry.sha256 if entry is not None else None


CHECKPOINT_VARIABLES = {
    SHAPES3D_GENERATOR_ENV: GENERATOR_EXPECTED, FFHQ_GENERATOR_ENV: GENERATOR_EXPECTED,
    MPI3D_GENERATOR_ENV: GENERATOR_EXPECTED, CARS3D_GENERATOR_ENV: GENERATOR_EXPECTED,
    SHAPES3D_PREDICTOR_ENV: PREDICTOR_EXPECTED, FFHQ_PREDICTOR_ENV: PREDICTOR_EXPECTED,
    MPI3D_PREDICTOR_ENV: PREDICTOR_EXPECTED, CARS3D_PREDICTOR_ENV: PREDICTOR_EXPECTED,
    ALEXNET_ENV: "torchvision AlexNet weights (.pth or .safetensors)"}


# -- bundles of real ground truth and a user's generator (DisCo's MPI3D and Cars3D) -------------

@dataclass(frozen=True)
class UserGeneratorBundle:
    """A bundle over real ground truth whose generator and predictor the user names."""

    name: str
    ground_truth: str  # the registered ground-truth data
    generator_env: str
    predictor_env: str
    disco_files: str  # DisCo's generators for this dataset (docs/disco.md)


USER_GENERATOR_BUNDLES = {
    "mpi3d": UserGeneratorBundle("mpi3d", "mpi3d", MPI3D_GENERATOR_ENV, MPI3D_PREDICTOR_ENV,
                                 "DisCo's MPI3D generators 0.pt ... 4.pt"),
    "cars3d": UserGeneratorBundle("cars3d", "cars3d", CARS3D_GENERATOR_ENV, CARS3D_PREDICTOR_ENV,
                                  "DisCo's Cars3D generators 0.pt ... 4.pt"),
}


def user_generator_bundle(spec: UserGeneratorBundle, data_dir: str | None) -> Bundle:
    """Ground truth from ``--data-dir`` / $BENCH_DATA (required), the generator in
    ``$<generator_env>`` (required), the predictor in ``$<predictor_env>`` (optional: without
    it the discovery metrics are skipped). Each missing input is one line saying what to get."""
    generator_path = env_path(spec.generator_env, kind="file", expected=GENERATOR_EXPECTED)
    if generator_path is None:
        raise FileNotFoundError(
            f"{spec.name}: no generator: set ${spec.generator_env} to a StyleGAN2 checkpoint "
            f"trained on {spec.ground_truth} ({GENERATOR_EXPECTED}), e.g. one of "
            f"{spec.disco_files} (docs/disco.md)")
    gt = load_ground_truth(spec.ground_truth, data_dir)
    size = gt.observation_shape[0]
    chosen = _user_predictor(spec.predictor_env)
    load_predictor, predictor_id = (chosen[1], chosen[2]) if chosen is not None else (None, None)
    origin = f"${spec.generator_env}"

    def load_generator() -> object:
        generator = load_any_generator(generator_path, device=bench_device()).requires_grad_(False)
        return seen_at(generator, size)

    generator_id = file_identity(generator_path)
    identity = {"ground_truth": gt.identity(), "generator": generator_id,
                "generator_source": f"{generator_path.name} sha256 {generator_id['sha256']:.12}",
                "predictor": predictor_id}

    def describe() -> dict[str, str]:
        described = {"ground truth": _ground_truth_source(gt, spec.ground_truth),
                     "generator": f"{generator_path} ({origin}): "
                                  f"{_inspect_generator(generator_path, origin)}"}
        if chosen is not None:
            described["predictor"] = _predictor_source(chosen[0], f"${spec.predictor_env}", gt)
        else:
            described["predictor"] = (
                f"none: no discovery scores (train one with `python -m bench train-predictor "
                f"--ground-truth {spec.ground_truth} --data-dir DIR --out P.safetensors`, then "
                f"set ${spec.predictor_env}=P.safetensors)")
        described["device"] = bench_device()
        return described

    return Bundle(spec.name, ground_truth=gt, load_generator=load_generator,
                  load_predictor=load_predictor, identity=identity, describe=describe)


@BUNDLES.register(
    "mpi3d",
    description=f"the StyleGAN2 in ${MPI3D_GENERATOR_ENV} (e.g. DisCo's) + MPI3D toy ground "
    f"truth (mpi3d_toy.npz from --data-dir/$BENCH_DATA) + the predictor in "
    f"${MPI3D_PREDICTOR_ENV} (trained with `bench train-predictor`; without it no discovery "
    "scores)",
)
def mpi3d(data_dir: str | None = None) -> Bundle:
    return user_generator_bundle(USER_GENERATOR_BUNDLES["mpi3d"], data_dir)


@BUNDLES.register(
    "cars3d",
    description=f"the StyleGAN2 in ${CARS3D_GENERATOR_ENV} (e.g. DisCo's) + Cars3D ground truth "
    f"(the .mat files from --data-dir/$BENCH_DATA) + the predictor in ${CARS3D_PREDICTOR_ENV} "
    "(trained with `bench train-predictor`; without it no discovery scores)",
)
def cars3d(data_dir: str | None = None) -> Bundle:
    return user_generator_bundle(USER_GENERATOR_BUNDLES["cars3d"], data_dir)


# -- what a bundle will load, opened before any cell starts --------------------------------------

def _ground_truth_source(gt: GroundTruthData, source: str) -> str:
    path = getattr(gt, "path", None)
    if source == "shapes3d-synth":
        return "the procedural 3DShapes look-alike (embedded)"
    return f"{path or source} ({gt.size:,} images, factors {gt.factor_sizes})"


def _inspect_generator(path: Path, origin: str) -> GeneratorSummary:
    """What the generator checkpoint at ``path`` is; a file the cells could not load is one
    error line naming ``origin`` (the variable or folder that named it)."""
    try:
        return inspect_generator(path)
    except CheckpointFormatError as err:
        raise InputError(f"{origin}: {err}") from None


def _predictor_source(path: Path, origin: str, ground_truth: GroundTruthData | None = None
                      ) -> str:
    """What the attribute predictor at ``path`` is, after loading it as a cell would; with
    ``ground_truth``, a suite predictor must classify exactly its factors."""
    try:
        predictor = load_any_predictor(path)
    # a file that is not a predictor is a DataError; the loader keeps FileNotFoundError for a
    # missing one (its other callers rely on it): either is the user's file, never a bug
    except (DataError, FileNotFoundError) as err:
        text = str(err)
        raise InputError(f"{origin}: {text}" if str(path) in text else
                         f"{origin}: attribute predictor {path}: {text}") from None
    user = isinstance(predictor, UserPredictor)
    if ground_truth is not None and not user and (
            tuple(predictor.factor_names), tuple(predictor.factor_sizes)) != (
            tuple(ground_truth.factor_names), tuple(ground_truth.factor_sizes)):
        raise InputError(f"{origin}: attribute predictor {path} classifies "
                         f"{tuple(predictor.factor_sizes)} classes of {predictor.factor_names}: "
                         f"expected one trained on {ground_truth.name} "
                         f"{tuple(ground_truth.factor_sizes)} (`bench train-predictor "
                         f"--ground-truth {ground_truth.name}`)")
    kind = "TorchScript predictor" if user else "attribute predictor"
    names = ", ".join(predictor.factor_names)
    return (f"{path} ({origin}): {kind} of {len(predictor.factor_names)} attribute(s) "
            f"({names[:80]}{'...' if len(names) > 80 else ''}), group widths "
            f"{predictor.factor_sizes}")


def _alexnet_source() -> str:
    path = alexnet_weights_path(None)
    if path is None:
        return f"alexnet without weights (set ${ALEXNET_ENV} for methods that compare features)"
    try:
        load_sensor("alexnet")
    # unusable weights are a DataError; the sensor keeps FileNotFoundError for missing ones
    except (DataError, FileNotFoundError) as err:
        raise InputError(f"${ALEXNET_ENV}: {err}") from None
    return f"alexnet {path} (${ALEXNET_ENV})"
