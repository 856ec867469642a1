"""FFHQ end to end on the CPU, through the command line as a user types it: a tiny stand-in for
NVIDIA's files (``ffhq_standin``: a 32-px generator pickle in stylegan2-ada-pytorch's format
and 40 CelebA-HQ classifier pickles at 16 px) served by a loopback mirror, then
``bench prepare ffhq --base-url``, ``bench run --datasets ffhq --methods ganspace,sefa,random``,
``bench leaderboard`` and ``bench report``. Nothing leaves the machine.

Checked: the 41 files come from the mirror; the three cells run the bundle's protocol (the fixed
edit) and stop after the discovery metrics (no ground truth, no distillation); R and its heatmap
carry the 40 attribute names; the leaderboard table and the report show the disentanglement
score and the attribute count of each method."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ffhq_standin import GENERATOR_FILE, standin_mirror
from loopback_server import loopback_server
from PIL import Image

from datasets.ffhq_assets import CELEBA_ATTRIBUTES

REPO = Path(__file__).resolve().parent.parent
METHODS = ("ganspace", "sefa", "random")
NAMED_INPUT_VARS = ("BENCH_DATA", "BENCH_PLUGINS", "BENCH_DEVICE", "BENCH_FFHQ_GENERATOR",
                    "BENCH_FFHQ_PREDICTOR", "BENCH_ALEXNET", "BENCH_THREADS")


def bench(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` in ``root``, this checkout first on the path, the cache in
    ``root/cache``, loopback traffic past any proxy, one thread."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_CACHE": str(root / "cache"),
           "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    for name in NAMED_INPUT_VARS:
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "bench", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow  # about a minute on one busy core, most of it five interpreter starts
def test_ffhq_from_a_mirror_to_the_report(tmp_path: Path) -> None:
    with loopback_server(standin_mirror()) as served:
        prepared = bench(tmp_path, "prepare", "ffhq", "--base-url", served.url("/nv/"), "-q")
    assert "41 files in" in prepared.stdout and "41 downloaded" in prepared.stdout
    assert sorted(set(served.names())) == sorted(standin_mirror())

    run = bench(tmp_path, "run", "--datasets", "ffhq", "--methods", ",".join(METHODS),
                "--results", "results", "--threads", "1", "-q")
    results = [json.loads(p.read_text()) for p in
               sorted((tmp_path / "results" / "runs").glob("*/result.json"))]
    assert sorted(r["method"] for r in results) == sorted(METHODS)
    for result in results:
        assert result["dataset"] == "ffhq" and result["profile"] == "quick"
        assert result["bundle_identity"]["generator"]["file"] == GENERATOR_FILE
        assert "celebahq40" in result["bundle_identity"]["predictor"]
        # the bundle's quick protocol: the notebooks' fixed edit, 32 latents per direction
        flow = result["metric_settings"]["directions_flow"]
        assert flow["edit_scale"] == 2.0 and flow["discovery"]["num_samples"] == 32
        # no ground truth: discovery scores only, no pairs / group VAE / distilled metrics
        assert [s["name"] for s in result["stages"]] == ["discover", "calibrate",
                                                         "discovery-metrics"]
        metrics = result["metrics"]
        assert 0.0 <= metrics["disentanglement_score"] <= 1.0
        assert 1 <= metrics["attribute_count"] <= 10 and "mig" not in metrics
        assert metrics["edit_capped_fraction"] == 0.0
        run_dir = tmp_path / "results" / "runs" / result["id"]
        r_info = json.loads((run_dir / "R.json").read_text())
        assert r_info["attribute_names"] == list(CELEBA_ATTRIBUTES)
        assert len(r_info["R_absdiff"]) == 10 and len(r_info["R_absdiff"][0]) == 40
        heatmap = Image.open(run_dir / "r_heatmap.png")
        assert heatmap.text["Attributes"].split("\n") == list(CELEBA_ATTRIBUTES)
    assert "disentanglement_score" in run.stdout  # the grid's leaderboard, printed

    board = bench(tmp_path, "leaderboard", "--results", "results")
    header = next(line for line in board.stdout.splitlines() if line.startswith("| method"))
    assert "disentanglement_score" in header and "attribute_count" in header
    rows = list(csv.DictReader((tmp_path / "results" / "LEADERBOARD.csv").open()))
    assert sorted(row["method"] for row in rows) == sorted(METHODS)
    for row in rows:
        assert row["dataset"] == "ffhq" and row["attribute_count_median"]
        assert float(row["disentanglement_score_median"]) == pytest.approx(next(
            r["metrics"]["disentanglement_score"] for r in results
            if r["method"] == row["method"]))

    report = bench(tmp_path, "report", "--results", "results")
    index = Path(report.stdout.strip().splitlines()[-1])
    page = index.read_text(encoding="utf-8")
    assert "disentanglement_score" in page and "attribute_count" in page
    assert page.count("r_heatmap.png") >= len(METHODS)
    assert "fixed 2 times its unit-RMS vector" in page  # the edit rule, as the cells ran it
