"""The grid's dataset axis: the ``BUNDLES`` registry, ``load_bundle`` and the built-in bundles.

Factories ``(data_dir: str | None) -> Bundle``; importing this module registers the built-ins.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bench.bundle import Bundle
from core.hashing import file_sha256
from core.registry import Registry
from datasets import load_ground_truth
from datasets.shapes3d_real import resolve_shapes3d_path
from models.generator import seen_at
from models.oracle import OracleConfig, OracleGenerator
from models.predictor import RESOLUTION as SHAPES3D_IMAGE_SIZE
from models.predictor import SHAPES3D_PREDICTOR
from models.predictor import load_predictor as load_attribute_predictor
from models.sensors import ALEXNET_ENV, sensor_identity
from models.stylegan2 import load_generator as load_native
from models.stylegan2.loader import load_any_generator

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
    """The user's data folder: ``--data-dir`` first, then $BENCH_DATA."""
    return data_dir or os.environ.get("BENCH_DATA") or None


# -- bundles with a generator (direction discovery) ---------------------------------------------

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "models" / "weights"
SHAPES3D_GENERATOR = WEIGHTS_DIR / "shapes3d_generator.safetensors"
SHAPES3D_GENERATOR_ENV = "BENCH_SHAPES3D_GENERATOR"
FFHQ_GENERATOR_ENV = "BENCH_FFHQ_GENERATOR"
FFHQ_PREDICTOR_ENV = "BENCH_FFHQ_PREDICTOR"
SHAPES3D_SENSOR = "shapes3d-disc"  # the discriminator trained with the shipped generator


def file_identity(path: Path, digest: bool = True) -> dict[str, object]:
    """What identifies an asset file: its name and sha256 (or size + mtime for huge files)."""
    if not path.is_file():
        raise FileNotFoundError(f"asset file not found: {path}")
    if digest:
        return {"file": path.name, "sha256": file_sha256(path)}
    stat = path.stat()
    return {"file": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def bench_device() -> str:
    """Where generators run: $BENCH_DEVICE (e.g. ``cuda``), CPU by default."""
    return os.environ.get("BENCH_DEVICE") or "cpu"


def _shapes3d_ground_truth(data_dir: str | None) -> tuple[object, str]:
    """The real 3dshapes.h5 when ``--data-dir``/$BENCH_DATA provides it, else the look-alike.

    An explicit ``--data-dir`` without the file is an error (never a silent look-alike); a
    $BENCH_DATA folder without it falls back to the look-alike, which the bundle identity's
    ``ground_truth_source`` records. A damaged file is always an error.
    """
    folder = real_data_dir(data_dir)
    if folder is not None:
        try:
            resolve_shapes3d_path(folder)
        except FileNotFoundError:
            if data_dir is not None:
                raise
        else:
            return load_ground_truth("shapes3d", folder), "shapes3d"
    return load_ground_truth("shapes3d-synth"), "shapes3d-synth"


def _shipped_predictor() -> tuple[object | None, dict[str, object] | None]:
    if not SHAPES3D_PREDICTOR.is_file():
        return None, None
    return (lambda: load_attribute_predictor(SHAPES3D_PREDICTOR)), file_identity(SHAPES3D_PREDICTOR)


def _shapes3d_generator() -> tuple[Path, bool]:
    """The shapes3d generator checkpoint and whether the user chose it: $BENCH_SHAPES3D_GENERATOR
    (any format ``load_any_generator`` reads), else the shipped one."""
    chosen = os.environ.get(SHAPES3D_GENERATOR_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"shapes3d: generator checkpoint {path} (from "
                                    f"${SHAPES3D_GENERATOR_ENV}) not found")
        return path, True
    if not SHAPES3D_GENERATOR.is_file():
        raise FileNotFoundError(
            f"shapes3d: shipped generator {SHAPES3D_GENERATOR} not found; train it with "
            f"`python -m bench train-generator`, set ${SHAPES3D_GENERATOR_ENV}, or use "
            "'shapes3d-oracle'")
    return SHAPES3D_GENERATOR, False


@BUNDLES.register(
    "shapes3d",
    description="shipped StyleGAN2 (32 px, seen at 64 px; or the checkpoint in "
    f"${SHAPES3D_GENERATOR_ENV}) + shipped factor predictor + 3DShapes ground truth (real "
    "3dshapes.h5 from --data-dir/$BENCH_DATA, else the look-alike; the leaderboard shows which)",
)
def shapes3d(data_dir: str | None = None) -> Bundle:
    generator_path, user_given = _shapes3d_generator()
    gt, source = _shapes3d_ground_truth(data_dir)
    load_predictor, predictor_id = _shipped_predictor()

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
    return Bundle("shapes3d", ground_truth=gt, load_generator=load_generator,
                  load_predictor=load_predictor, identity=identity, sensor=SHAPES3D_SENSOR)


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
    return Bundle(name, ground_truth=gt, load_generator=load_generator,
                  load_predictor=load_predictor, identity=identity,
                  capabilities=frozenset({"true_directions"}), sensor=SHAPES3D_SENSOR)


@BUNDLES.register(
    "ffhq",
    description=f"user-given FFHQ StyleGAN2 checkpoint (${FFHQ_GENERATOR_ENV}; NVIDIA .pkl, "
    f"rosinality .pt or native) + optional attribute predictor (${FFHQ_PREDICTOR_ENV}); "
    f"sensor alexnet (${ALEXNET_ENV}); no ground truth",
)
def ffhq(data_dir: str | None = None) -> Bundle:
    gen_path = os.environ.get(FFHQ_GENERATOR_ENV)
    folder = real_data_dir(data_dir)
    if not gen_path and folder is not None:
        for name in ("ffhq.pkl", "ffhq.pt", "ffhq.safetensors"):
            if (Path(folder) / name).is_file():
                gen_path = str(Path(folder) / name)
                break
    if not gen_path:
        raise FileNotFoundError(
            f"ffhq: no generator checkpoint given; set ${FFHQ_GENERATOR_ENV} to a StyleGAN2 "
            "FFHQ checkpoint (NVIDIA .pkl, rosinality .pt or native .safetensors) or put "
            "ffhq.pkl / ffhq.pt / ffhq.safetensors into --data-dir (or $BENCH_DATA)")
    generator_path = Path(gen_path).expanduser()
    if not generator_path.is_file():
        raise FileNotFoundError(f"ffhq: generator checkpoint {generator_path} not found "
                                f"(from ${FFHQ_GENERATOR_ENV} or the data folder)")
    predictor_env = os.environ.get(FFHQ_PREDICTOR_ENV)
    predictor_path = Path(predictor_env).expanduser() if predictor_env else None
    if predictor_path is not None and not predictor_path.is_file():
        raise FileNotFoundError(f"ffhq: attribute predictor {predictor_path} not found "
                                f"(from ${FFHQ_PREDICTOR_ENV})")

    def load_generator() -> object:
        return load_any_generator(generator_path, device=bench_device())

    def load_predictor() -> object:
        return load_attribute_predictor(predictor_path)

    identity = {"generator": file_identity(generator_path, digest=False),
                "predictor": file_identity(predictor_path, digest=False)
                if predictor_path else None,
                "sensor": sensor_identity("alexnet")}
    return Bundle("ffhq", load_generator=load_generator,
                  load_predictor=load_predictor if predictor_path else None, identity=identity,
                  sensor="alexnet")
