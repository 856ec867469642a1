"""Known answers of ``bench edit`` on images of the procedural 3DShapes world (``--dataset-images
N``: the images ``bench prepare --write-images`` writes; no generator saw them), through the
command, with the summary it writes. The thresholds come from measurements of this very setup
(one thread, deterministic) and of benchmarks/edit_known_answers.py's curve over projection
steps; docs/editing.md has the numbers. The default tests use 8 images and 100 steps; the
32-image, 300-step (the quick profile's) versions are marked ``long``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from edit_cells import make_cell, oracle_directions

from bench.cli import main
from bench.planning.bundles import load_bundle
from models.directions import Directions

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HUES = ("floor_hue", "wall_hue", "object_hue")


def _edit(root: Path, cell: dict, images: int, steps: int, monkeypatch) -> dict:
    monkeypatch.chdir(root)
    code = main(["edit", "--cell", cell["id"], "--dataset-images", str(images), "--steps",
                 str(steps), "--threads", "1", "--quiet", "--name", "known"])
    assert code == 0
    return json.loads((root / "results" / "edits" / "known" / "edits.json").read_text())


def _oracle_summary(root: Path, images: int, steps: int, monkeypatch) -> dict:
    bundle = load_bundle("shapes3d-oracle")
    cell = make_cell(root / "results", "shapes3d-oracle", oracle_directions(bundle.generator),
                     bundle=bundle)
    return _edit(root, cell, images, steps, monkeypatch)["summary"]


def _shapes3d_summary(root: Path, images: int, steps: int, monkeypatch) -> dict:
    """A cell on the shipped shapes3d generator with one arbitrary direction: only the
    projection is under test here."""
    bundle = load_bundle("shapes3d")
    generator = bundle.generator
    vectors = torch.randn(1, generator.w_dim, generator=torch.Generator().manual_seed(0))
    directions = Directions.from_w(vectors, generator.num_ws, scale=torch.full((1,), 0.5))
    cell = make_cell(root / "results", "shapes3d", directions, method="ganspace", bundle=bundle)
    return _edit(root, cell, images, steps, monkeypatch)["summary"]


@pytest.mark.slow
def test_oracle_projection_and_true_direction_edits(tmp_path: Path, monkeypatch) -> None:
    """8 images, 100 steps into shapes3d-oracle. Measured: mean PSNR 30.4 dB, median 21.6
    (mean 21.9 at 50 steps, about 9 at the start: a few projections land almost exactly and
    lift the mean); every factor classified right in 3 of 8 projections (the photos
    themselves: 8 of 8); along the oracle's true direction of each factor (+-2 calibrated
    steps) that factor's predicted class changes in 5-8 of 8 images, and some other factor's in
    1-3 of 8. The bars: mean PSNR >= 28 dB, median >= 20 dB, >= 2 of 8 projections right in
    every factor, each direction changes its own factor in >= 4 of 8 images and more often
    than any other factor changes, and its own factor on average in >= 0.75 of the images."""
    summary = _oracle_summary(tmp_path, 8, 100, monkeypatch)
    assert summary["mean_psnr"] >= 28.0 and summary["median_psnr"] >= 20.0
    assert summary["photo_true_factors_fraction"] == 1.0
    assert summary["projection_true_factors_fraction"] >= 0.25
    changes = {c["direction"]: c for c in summary["changes"]}
    assert sorted(changes) == sorted(["floor_hue", "wall_hue", "object_hue", "scale", "shape",
                                      "orientation"])
    for name, change in changes.items():
        assert change["named"] and change["attribute"] == name
        assert change["changed_fraction"] >= 0.5, (name, change)
        assert change["changed_fraction"] > change["any_other_changed_fraction"], (name, change)
    mean = sum(c["changed_fraction"] for c in changes.values()) / len(changes)
    assert mean >= 0.75


@pytest.mark.slow
def test_shapes3d_projection_keeps_the_colours(tmp_path: Path, monkeypatch) -> None:
    """8 images, 100 steps into the shipped shapes3d generator. Measured: mean PSNR 19.6 dB
    (17.8 at 50 steps);
    the three hues of 7-8 of 8 projections classified right, the object's scale, shape and
    orientation hardly ever (0-2 of 8), so no projection has every factor right (9 of 32 at
    300 steps): the generator's geometry is hard to reach (docs/editing.md). The bars: PSNR >= 18
    dB and every hue right in >= 6 of 8 projections."""
    summary = _shapes3d_summary(tmp_path, 8, 100, monkeypatch)
    assert summary["mean_psnr"] >= 18.0
    assert summary["photo_true_factors_fraction"] == 1.0
    for hue in HUES:
        assert summary["projection_true_per_factor"][hue] >= 0.75, summary


@pytest.mark.long
def test_oracle_known_answer_32_images(tmp_path: Path, monkeypatch) -> None:
    """32 images, 300 steps (the quick profile's). Measured with
    benchmarks/edit_known_answers.py: mean PSNR 37.6 dB, 13 of 32 projections right in every
    factor; the true directions change their own factor in 0.59 (wall hue) to 1.00 of the
    images, on average 0.86, and another factor in 0.00 to 0.19. The bars: PSNR >= 35 dB,
    >= 0.3 right in every factor, own factor >= 0.5 and above any other, on average >= 0.8."""
    summary = _oracle_summary(tmp_path, 32, 300, monkeypatch)
    assert summary["mean_psnr"] >= 35.0
    assert summary["projection_true_factors_fraction"] >= 0.3
    for change in summary["changes"]:
        assert change["changed_fraction"] >= 0.5, change
        assert change["changed_fraction"] > change["any_other_changed_fraction"], change
    mean = sum(c["changed_fraction"] for c in summary["changes"]) / len(summary["changes"])
    assert mean >= 0.8


@pytest.mark.long
def test_shapes3d_known_answer_32_images(tmp_path: Path, monkeypatch) -> None:
    """32 images, 300 steps. Measured with benchmarks/edit_known_answers.py: mean PSNR 22.1 dB,
    9 of 32 projections right in every factor, each hue in 31-32 of 32, scale in 15, shape in
    26, orientation in 28. The bars: PSNR >= 21 dB, >= 0.2 right in every factor, each hue
    >= 0.9."""
    summary = _shapes3d_summary(tmp_path, 32, 300, monkeypatch)
    assert summary["mean_psnr"] >= 21.0
    assert summary["projection_true_factors_fraction"] >= 0.2
    for hue in HUES:
        assert summary["projection_true_per_factor"][hue] >= 0.9, summary
