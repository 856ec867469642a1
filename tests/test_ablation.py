"""The L2-mask ablation: a small run through the CLI writes every output; pair losses behave."""

from __future__ import annotations

import json

import pytest
import torch

import bench.experiments.ablation as ablation
from bench.experiments.ablation import draw_originals, main, pair_losses
from models.oracle import load_oracle_generator
from models.sensors import load_sensor


def test_pure_pairs_favour_the_mask_over_pooling() -> None:
    generator = load_oracle_generator(seed=0)
    sensor = load_sensor("shapes3d-disc")
    rng = torch.Generator().manual_seed(0)
    # object hue (a) against scale (b): the changed regions differ, so focusing on them matters
    originals = draw_originals(generator, sensor, 64, rng)
    losses = pair_losses(generator, sensor, 2, 3, "pure", originals, 1.0, rng)
    assert set(losses) == {"pooled", "nofoc", "l2mask"}
    assert all(-5.0 <= v <= 5.0 for v in losses.values())
    assert losses["l2mask"] < 0  # the positive (same factor) is closer than the negative


def test_cli_writes_tables_and_plot(tmp_path, capsys) -> None:
    code = main(["l2mask", "--samples", "4", "--seeds", "0,1", "--results", str(tmp_path),
                 "--quiet"])
    assert code == 0
    out = tmp_path / "ablations"
    for ext in ("md", "csv", "tex", "json", "png"):
        assert (out / f"l2mask.{ext}").is_file()
    result = json.loads((out / "l2mask.json").read_text())
    assert result["seeds"] == [0, 1] and len(result["pairs"]) == 15
    assert len(result["per_seed"]["pure"]["l2mask"]) == 2
    assert "Finding:" in (out / "l2mask.md").read_text()
    assert main(["l2mask", "--samples", "0", "--results", str(tmp_path)]) == 2
    assert "--samples" in capsys.readouterr().out


def test_cli_bad_sensor_file_is_one_line_and_a_bug_is_not(tmp_path, capsys, monkeypatch) -> None:
    """Weights the sensor cannot use are the user's file (one line, exit 2); a plain ValueError
    from the sensor's loader is a bug and keeps its traceback."""
    bad = tmp_path / "alexnet.pth"
    bad.write_bytes(b"not a torch file")
    args = ["l2mask", "--samples", "1", "--seeds", "0", "--results", str(tmp_path), "--quiet"]
    assert main([*args, "--sensor", "alexnet", "--sensor-weights", str(bad)]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"error: {bad}: not a readable torch state dict (")
    assert out.count("\n") == 1

    def broken(name: str, weights: str | None) -> None:
        raise ValueError("internal: shapes disagree")

    monkeypatch.setattr(ablation, "load_sensor", broken)
    with pytest.raises(ValueError, match="^internal: shapes disagree$"):
        main(args)
