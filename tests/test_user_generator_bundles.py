"""The mpi3d and cars3d bundles: real ground truth (tiny files written here), the generator the
user names (the golden DisCo-layout file) and a predictor trained with the suite's command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_cars3d import SMALL as CARS_SMALL
from test_cars3d import write_cars
from test_mpi3d import ROWS, SMALL, write_npz

import bench.planning.bundles as bundles
import datasets.cars3d as cars3d_module
import datasets.mpi3d as mpi3d_module
from bench.planning.bundles import load_bundle
from core.inputs import InputError
from models.predictor import SHAPES3D_PREDICTOR
from training import train_predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DISCO_PT = Path(__file__).resolve().parent / "golden" / "disco_g64.pt"
VARIABLES = (bundles.MPI3D_GENERATOR_ENV, bundles.MPI3D_PREDICTOR_ENV,
             bundles.CARS3D_GENERATOR_ENV, bundles.CARS3D_PREDICTOR_ENV, "BENCH_DATA")


@pytest.fixture
def tiny_data(tmp_path: Path, monkeypatch) -> Path:
    """A data folder with a tiny mpi3d_toy.npz and a tiny cars/ folder, registered loaders
    taking their grids; no named input variable set; the cache in the test folder."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(mpi3d_module, "KNOWN_GRIDS", {ROWS: SMALL})
    monkeypatch.setattr(cars3d_module, "FACTOR_SIZES", CARS_SMALL)
    write_npz(tmp_path / "data" / "mpi3d_toy.npz")
    write_cars(tmp_path / "data" / "cars")
    return tmp_path / "data"


def test_without_a_generator_the_bundle_says_which_variable(tiny_data: Path) -> None:
    for name, variable in (("mpi3d", "BENCH_MPI3D_GENERATOR"),
                           ("cars3d", "BENCH_CARS3D_GENERATOR")):
        with pytest.raises(FileNotFoundError, match=rf"^{name}: no generator: set \${variable} "
                                                    rf"to a StyleGAN2 checkpoint trained on "
                                                    rf"{name} .*e\.g\. one of DisCo's"):
            load_bundle(name, str(tiny_data))


@pytest.mark.parametrize("name", ["mpi3d", "cars3d"])
def test_bundle_of_real_data_and_a_user_generator(tiny_data: Path, monkeypatch,
                                                  name: str) -> None:
    variable = bundles.USER_GENERATOR_BUNDLES[name].generator_env
    monkeypatch.setenv(variable, str(DISCO_PT))
    bundle = load_bundle(name, str(tiny_data))
    assert bundle.provides() == {"ground_truth", "generator"}  # no predictor named
    sha = bundle.identity["generator"]["sha256"]
    assert bundle.identity["generator_source"] == f"disco_g64.pt sha256 {sha[:12]}"
    assert bundle.identity["predictor"] is None
    assert bundle.identity["ground_truth"]["name"] == name
    sources = bundle.sources()
    assert sources["generator"].endswith(
        f"(${variable}): rosinality StyleGAN2, 64 px, z 32, w 32, 10 W+ rows, 3 mapping layers, "
        "64 channels, layout Generator(size=64, channel_multiplier=1, small=True)")
    assert sources["predictor"].startswith(
        f"none: no discovery scores (train one with `python -m bench train-predictor "
        f"--ground-truth {name} --data-dir DIR --out P.safetensors`")
    assert f"({bundle.ground_truth.size:,} images, factors " in sources["ground truth"]
    assert bundle.generator.resolution == 64
    monkeypatch.setenv(variable, str(tiny_data / "missing.pt"))
    with pytest.raises(InputError, match=rf"\${variable} .*missing\.pt not found"):
        load_bundle(name, str(tiny_data))


def test_predictor_trained_by_the_suite_on_mpi3d(tiny_data: Path, monkeypatch,
                                                 tmp_path: Path) -> None:
    """``bench train-predictor --ground-truth mpi3d`` trains on the real files; the bundle
    takes the result from $BENCH_MPI3D_PREDICTOR and refuses a predictor of other factors."""
    out = tmp_path / "mpi3d_predictor.safetensors"
    argv = ["--ground-truth", "mpi3d", "--data-dir", str(tiny_data), "--out", str(out),
            "--max-steps", "2", "--min-steps", "1", "--eval-every", "1", "--val-n", "16",
            "--test-n", "16", "--batch", "8"]
    with pytest.raises(SystemExit, match=r"^--out is required for --ground-truth mpi3d "):
        train_predictor.main(argv[:4])  # the default would overwrite the shipped predictor
    assert train_predictor.main(argv) == 0
    monkeypatch.setenv(bundles.MPI3D_GENERATOR_ENV, str(DISCO_PT))
    monkeypatch.setenv(bundles.MPI3D_PREDICTOR_ENV, str(out))
    bundle = load_bundle("mpi3d", str(tiny_data))
    assert "predictor" in bundle.provides()
    assert bundle.identity["predictor"]["file"] == out.name
    line = bundle.sources()["predictor"]
    assert line.startswith(f"{out} ($BENCH_MPI3D_PREDICTOR): attribute predictor of 7 attribute")
    assert tuple(bundle.predictor.factor_sizes) == SMALL
    monkeypatch.setenv(bundles.MPI3D_PREDICTOR_ENV, str(SHAPES3D_PREDICTOR))
    with pytest.raises(InputError, match=r"^\$BENCH_MPI3D_PREDICTOR: attribute predictor .* "
                                         r"classifies \(10, 10, 10, 8, 4, 15\) classes .*: "
                                         r"expected one trained on mpi3d \(2, 3, 2, 2, 2, 2, 2\)"):
        load_bundle("mpi3d", str(tiny_data)).sources()


def test_checkpoint_variables_are_checked_even_for_other_datasets(monkeypatch,
                                                                  tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(bundles.CARS3D_PREDICTOR_ENV, str(tmp_path / "p.safetensors"))
    with pytest.raises(InputError, match=r"\$BENCH_CARS3D_PREDICTOR .*p\.safetensors not found"):
        bundles.resolve_named_inputs()
    assert set(np.asarray(list(bundles.CHECKPOINT_VARIABLES))) >= set(VARIABLES[:4])
