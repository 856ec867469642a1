"""``bench edit``: finding a finished directions cell and its calibrated directions, the parts
of the command (direction lists, amounts, change counts), the command end to end on cheap
cells (a real run's "calibrate" stage only, ``tests/edit_cells.py``), its edits section in the
report, and images of a 3dshapes.h5 given by --data-dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from edit_cells import make_cell, oracle_directions
from PIL import Image

import bench.edit
from bench.cli import main
from bench.edit import (
    any_other_fraction,
    change_fractions,
    edit_amounts,
    load_distance,
    projection_config,
    select_directions,
    summarise,
)
from bench.planning.bundles import load_bundle
from bench.results.store import ResultStore
from bench.running.finished import cell_directions, check_generator, load_cell
from core.errors import BenchError, DataError, SettingError
from models.directions import Directions

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def oracle():
    bundle = load_bundle("shapes3d-oracle")
    return bundle, oracle_directions(bundle.generator)


def _photos(folder: Path, bundle, count: int, seed: int = 5) -> np.ndarray:
    factors, observations = bundle.ground_truth.sample(count, np.random.default_rng(seed))
    folder.mkdir(parents=True, exist_ok=True)
    for i, pixels in enumerate(observations):
        Image.fromarray(pixels).save(folder / f"r{i}.png")
    return factors


def test_select_directions() -> None:
    assert select_directions(None, 4) == [0, 1, 2, 3]
    assert select_directions("2,0", 4) == [2, 0]
    assert select_directions("1-3,1", 5) == [1, 2, 3]
    with pytest.raises(BenchError, match="4 is out of range: the cell has 4 scored direction"):
        select_directions("0,4", 4)
    with pytest.raises(BenchError, match="'x' is not an index or a range"):
        select_directions("x", 4)
    with pytest.raises(BenchError, match="3-1 is out of range"):
        select_directions("3-1", 4)


def test_edit_amounts() -> None:
    assert edit_amounts(2.0, 5) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    with pytest.raises(BenchError, match="--columns >= 2 and --span > 0"):
        edit_amounts(0.0, 5)


def test_refused_loss_and_projection_settings_name_the_flag(tmp_path: Path,
                                                             monkeypatch) -> None:
    """An unknown sensor or a bad setting is a SettingError, unusable weights a DataError, each
    naming what the user gave; a plain ValueError from the sensor's loader is a bug."""
    with pytest.raises(SettingError, match="^--loss alexnt: unknown sensor 'alexnt'; did you "
                                           "mean alexnet"):
        load_distance("alexnt", None)
    bad = tmp_path / "alexnet.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=f"^--loss alexnet: {bad}: not a readable torch state "
                                        r"dict \("):
        load_distance("alexnet", str(bad))
    with pytest.raises(SettingError, match="^projection settings: num_steps must be >= 1, got 0$"):
        projection_config("quick", num_steps=0)

    def broken(name: str, weights: str | None) -> None:
        raise ValueError("internal: shapes disagree")

    monkeypatch.setattr(bench.edit, "perceptual_distance", broken)
    with pytest.raises(ValueError, match="^internal: shapes disagree$") as bug:
        load_distance("pixels", None)
    assert not isinstance(bug.value, BenchError)


def test_change_counts_known_answer() -> None:
    """Two images, two directions, three amounts, two attributes: direction 0 changes
    attribute 0 in both images (at one end or the other), attribute 1 in image 1 only; direction
    1 changes attribute 1 in image 0 only, and its middle amount (not an end) never counts."""
    base = np.array([[0, 0], [1, 1]])
    edited = np.array([
        [[[1, 0], [0, 0], [0, 0]], [[0, 0], [0, 5], [0, 2]]],
        [[[1, 1], [1, 1], [2, 3]], [[1, 1], [9, 9], [1, 1]]],
    ])
    fractions = change_fractions(base, edited)
    assert fractions.tolist() == [[1.0, 0.5], [0.0, 0.5]]
    assert any_other_fraction(base, edited, [0, 1]) == [0.5, 0.0]


def test_summary_names_directions_after_attributes() -> None:
    images = [{"psnr": 30.0, "lpips": None, "distance": 0.1, "true_factors": [0, 1],
               "predicted": {"photo": [0, 1], "projection": [0, 1],
                             "edited": [[[1, 1], [0, 1], [2, 1]], [[0, 0], [0, 1], [0, 1]]]}},
              {"psnr": None, "lpips": None, "distance": 0.3, "true_factors": [1, 1],
               "predicted": {"photo": [1, 1], "projection": [0, 1],
                             "edited": [[[0, 1], [0, 1], [0, 1]], [[0, 1], [0, 1], [0, 0]]]}}]
    summary = summarise(images, ["b", "d1"], ["a", "b"], with_lpips=False)
    assert summary["mean_psnr"] == 30.0 and summary["identical_projections"] == 1
    assert summary["projection_true_factors_fraction"] == 0.5
    assert summary["projection_as_photo_fraction"] == 0.5
    first, second = summary["changes"]
    assert (first["attribute"], first["named"], first["changed_fraction"]) == ("b", True, 0.0)
    assert first["any_other_changed_fraction"] == 0.5  # a changes in image 0
    assert (second["attribute"], second["named"], second["changed_fraction"]) == ("b", False, 1.0)


def test_cell_directions_are_the_calibrated_ones(tmp_path: Path, oracle) -> None:
    bundle, directions = oracle
    result = make_cell(tmp_path, "shapes3d-oracle", directions, bundle=bundle)
    store = ResultStore(tmp_path)
    loaded = cell_directions(store, load_cell(store, result["id"]))
    assert torch.equal(loaded.vectors, directions.vectors)
    assert torch.equal(loaded.scale, directions.scale)
    check_generator(bundle, result)  # the same oracle: no error
    (key,) = [s["key"] for s in result["stages"] if s["name"] == "calibrate"]
    tensors = tmp_path / "cache" / "calibrate" / key / "directions.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(BenchError, match="damaged .*sha256 differs.*--verify"):
        cell_directions(store, result)


def test_another_generator_is_refused(tmp_path: Path, oracle) -> None:
    bundle, directions = oracle
    identity = {**bundle.identity, "generator": {"oracle": {"seed": 1}}}
    result = make_cell(tmp_path, "shapes3d-oracle", directions, bundle=bundle, identity=identity)
    with pytest.raises(BenchError, match="made with another generator .*seed=1 then"):
        check_generator(bundle, result)


def test_edit_command_end_to_end(tmp_path: Path, oracle, monkeypatch, capsys) -> None:
    bundle, directions = oracle
    result = make_cell(tmp_path / "results", "shapes3d-oracle", directions, bundle=bundle)
    _photos(tmp_path / "photos", bundle, 2)
    monkeypatch.chdir(tmp_path)
    args = ["edit", "--method", "oracle", "--dataset", "shapes3d-oracle", "--images", "photos",
            "--directions", "0,4", "--steps", "20", "--batch", "2", "--threads", "1",
            "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    out = tmp_path / "results" / "edits" / "oracle-shapes3d-oracle-seed0-photos"
    assert sorted(p.name for p in out.iterdir()) == ["edits", "edits.json", "projection.npz",
                                                    "reconstruction.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
    assert sorted(p.name for p in (out / "edits").iterdir()) == ["r0.png", "r1.png"]
    doc = json.loads((out / "edits.json").read_text())
    assert doc["cell"]["id"] == result["id"]
    assert [d["name"] for d in doc["directions"]] == ["floor_hue", "shape"]
    assert doc["amounts"] == [-2.0, -1.0, 0.0, 1.0, 2.0]  # the quick profile's traversal
    assert doc["projection"]["loss"] == "shapes3d-disc"
    assert doc["projection"]["config"]["num_steps"] == 20
    assert doc["projection"]["config"]["mse_weight"] == 10.0
    assert doc["attributes"] == list(bundle.predictor.factor_names)
    first = doc["images"][0]
    assert first["name"] == "r0" and first["psnr"] > 10
    assert len(first["predicted"]["edited"]) == 2 and len(first["predicted"]["edited"][0]) == 5
    assert first["predicted"]["edited"][0][2] == first["predicted"]["projection"]  # amount 0
    with np.load(out / "projection.npz") as latents:
        assert latents["ws"].shape == (2, 1, 32)
        assert json.loads(str(latents["generator_identity"])) == {
            "generator": bundle.identity["generator"]}
        assert list(latents["names"]) == ["r0", "r1"]
    assert "floor_hue: changes floor_hue in" in capsys.readouterr().out
    # a second run replaces the folder whole; the report shows it
    assert main([*args, "--directions", "1"]) == 0
    assert len(json.loads((out / "edits.json").read_text())["directions"]) == 1
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    assert main(["report", "--results", "results", "--quiet"]) == 0
    index = (tmp_path / "results" / "report" / "index.html").read_text()
    assert 'id="edits"' in index and "oracle-shapes3d-oracle-seed0-photos" in index
    assert (tmp_path / "results" / "report" / "edits" / out.name / "edits" / "r1.png").is_file()


def test_no_edits_no_section(tmp_path: Path, oracle, monkeypatch) -> None:
    bundle, directions = oracle
    make_cell(tmp_path / "results", "shapes3d-oracle", directions, bundle=bundle)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--results", "results", "--quiet"]) == 0
    assert 'id="edits"' not in (tmp_path / "results" / "report" / "index.html").read_text()


def test_dataset_images_of_a_3dshapes_h5_by_data_dir(tmp_path: Path, monkeypatch) -> None:
    """--data-dir with a file in the 3dshapes.h5 layout (a small grid written by `prepare`):
    the images edited are the file's, with their true factors, in the shipped generator."""
    import bench.planning.bundles
    from datasets.prepare import write_shapes3d_h5
    from datasets.shapes3d_real import Shapes3D
    from datasets.shapes3d_synth import Shapes3DSynth

    small = (2, 2, 2, 2, 1, 2)
    write_shapes3d_h5(Shapes3DSynth(), tmp_path / "data" / "3dshapes.h5", factor_sizes=small)
    real = bench.planning.bundles._shapes3d_ground_truth
    monkeypatch.setattr(bench.planning.bundles, "_shapes3d_ground_truth", lambda data_dir: (
        (Shapes3D(data_dir, factor_sizes=small), "shapes3d") if data_dir else real(None)))
    synth = load_bundle("shapes3d")
    generator = synth.generator
    vectors = torch.randn(2, generator.w_dim, generator=torch.Generator().manual_seed(0))
    directions = Directions.from_w(vectors, generator.num_ws, scale=torch.full((2,), 0.5))
    result = make_cell(tmp_path / "results", "shapes3d", directions, method="ganspace",
                       bundle=synth)
    monkeypatch.chdir(tmp_path)
    code = main(["edit", "--cell", result["id"], "--data-dir", "data", "--dataset-images", "3",
                 "--steps", "5", "--threads", "1", "--quiet", "--name", "real"])
    assert code == 0
    doc = json.loads((tmp_path / "results" / "edits" / "real" / "edits.json").read_text())
    assert len(doc["images"]) == 3
    assert all("3dshapes.h5 factors" in image["source"] for image in doc["images"])
    truth = np.array([image["true_factors"] for image in doc["images"]])
    assert (truth < np.array(small)).all()
    assert "projection_true_factors_fraction" in doc["summary"]
    assert "3dshapes.h5" in doc["inputs"][0]


def test_a_run_that_fails_midway_leaves_nothing(tmp_path: Path, oracle, monkeypatch) -> None:
    """The edit grids are written as each photo is done, under a temporary folder: a failure at
    the second photo leaves no edits folder (not even results/edits/) behind."""
    import bench.edit

    bundle, directions = oracle
    make_cell(tmp_path / "results", "shapes3d-oracle", directions, bundle=bundle)
    _photos(tmp_path / "photos", bundle, 2)
    monkeypatch.chdir(tmp_path)
    written = []
    real = bench.edit.save_edit_grid

    def fail_second(*args, **kwargs):
        if written:
            raise OSError("disk full")
        written.append(real(*args, **kwargs))
        return written[-1]

    monkeypatch.setattr(bench.edit, "save_edit_grid", fail_second)
    with pytest.raises(OSError, match="disk full"):
        main(["edit", "--method", "oracle", "--dataset", "shapes3d-oracle", "--images",
              "photos", "--directions", "0", "--steps", "2", "--batch", "1", "--threads", "1",
              "--quiet"])
    assert len(written) == 1 and not written[0].exists()  # the first grid went with the rest
    assert not (tmp_path / "results" / "edits").exists()
