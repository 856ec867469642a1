"""A catalogue of user mistakes walked through the real CLI: each ends in exit code 2 with one
``error:`` line on stderr, no traceback, and nothing changed on disk (none of them trains)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ffhq_standin import write_classifiers
from loopback_server import reserved_closed_port

REPO = Path(__file__).resolve().parent.parent
RESULTS = "results"


def _result(cell_id: str = "abc", **changes: object) -> dict[str, object]:
    data: dict[str, object] = {"id": cell_id, "method": "beta-vae", "dataset": "shapes3d-synth",
                               "profile": "quick", "seed": 0, "config": {"steps": 3},
                               "metrics": {"mig": 0.5}}
    data.update(changes)
    return data


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def _stored_result(content: str | bytes) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        _write(root / RESULTS / "runs" / "abc" / "result.json", content)
    return setup


def _baseline(content: str | bytes) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / RESULTS / "runs").mkdir(parents=True)
        _write(root / RESULTS / "baselines" / "shapes3d-synth--quick.json", content)
    return setup


def _damaged_cache(root: Path) -> None:
    """A whole result whose "train" stage cache holds a file of the recorded size but not the
    recorded sha256."""
    _stored_result(json.dumps(_result(stages=[{"name": "train", "key": "k1"}],
                                      stage_versions={"train": 1})))(root)
    entry = root / RESULTS / "cache" / "train" / "k1"
    _write(entry / "a.bin", "abc")
    _write(entry / ".stage.json", json.dumps(
        {"schema": 1, "stage": "train", "version": 1,
         "files": {"a.bin": {"size": 3, "sha256": "0" * 64}}}))


def _h5(kind: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / "data" / "3dshapes.h5"
        if kind == "garbage":
            _write(path, b"\x00not an hdf5 file" * 64)
            return
        import h5py
        import numpy as np

        path.parent.mkdir(parents=True)
        with h5py.File(path, "w") as handle:
            handle["images"] = np.zeros((2, 64, 64, 3), np.uint8)
            if kind == "short":
                handle["labels"] = np.zeros((2, 6))
    return setup


def _grid(text: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        _write(root / "grid.toml", text)
    return setup


def _nothing(root: Path) -> None:
    (root / RESULTS).mkdir()
    _write(root / RESULTS / "README", "kept as it is")


SYNTH = ["run", "--methods", "beta-vae", "--datasets", "shapes3d-synth", "--results", RESULTS]
PEERS = ["run", "--methods", "recog,latentclr", "--datasets", "shapes3d-oracle", "--results",
         RESULTS]
BOARD = ["leaderboard", "--results", RESULTS]
CHECK = ["check", "--results", RESULTS]
REPORT = ["report", "--results", RESULTS]
BASELINE_OK = {"id": "abc", "method": "beta-vae", "dataset": "shapes3d-synth", "seed": 0,
               "profile": "quick", "config": {}, "metrics": {"mig": 0.5}}

# (case id, setup of the temporary folder, CLI arguments, a fragment of the error line)
CATALOGUE: list[tuple[str, Callable[[Path], None], list[str], str]] = [
    # data files
    ("h5-garbage-prepare", _h5("garbage"), ["prepare", "shapes3d", "--data-dir", "data"],
     "not an HDF5 file"),
    ("h5-garbage-run", _h5("garbage"),
     ["run", "--datasets", "shapes3d", "--methods", "sefa", "--data-dir", "data",
      "--results", RESULTS], "not an HDF5 file"),
    ("h5-no-labels-prepare", _h5("no-labels"), ["prepare", "shapes3d", "--data-dir", "data"],
     "missing dataset 'labels'"),
    ("h5-truncated-run", _h5("short"),
     ["run", "--datasets", "shapes3d", "--data-dir", "data", "--dry-run", "--results",
      RESULTS], "'images' has shape (2, 64, 64, 3)"),
    ("npz-garbage-prepare",
     lambda root: _write(root / "data" / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
                         b"garbage"), ["prepare", "dsprites", "--data-dir", "data"],
     "not an npz"),
    # silent wrong data: an explicit --data-dir that cannot be used
    ("data-dir-without-file", lambda root: (root / "data").mkdir(),
     ["run", "--datasets", "shapes3d", "--dry-run", "--data-dir", "data", "--results",
      RESULTS], "3dshapes.h5 not found"),
    ("data-dir-missing", _nothing,
     ["run", "--datasets", "shapes3d", "--dry-run", "--data-dir", "nowhere", "--results",
      RESULTS], "--data-dir nowhere not found"),
    ("prepare-data-dir-without-file", lambda root: (root / "data").mkdir(),
     ["prepare", "shapes3d", "--data-dir", "data"], "3dshapes.h5 not found"),
    # results folders
    ("results-is-file", lambda root: _write(root / RESULTS, "x"), SYNTH,
     "is a file: expected a folder"),
    ("results-is-file-dry-run", lambda root: _write(root / RESULTS, "x"), [*SYNTH, "--dry-run"],
     "is a file: expected a folder"),
    ("results-inside-file", lambda root: _write(root / "plain", "x"),
     [*SYNTH[:-1], "plain/results"], "is inside the file"),
    ("report-results-missing", lambda root: None, REPORT, "not found"),
    ("report-out-not-a-report", _nothing, [*REPORT, "--out", RESULTS],
     "is not a report"),
    ("report-out-is-file", lambda root: (_nothing(root), _write(root / "out", "x")),
     [*REPORT, "--out", "out/site"], "cannot write the report"),
    ("leaderboard-results-missing", lambda root: None, BOARD, "not found"),
    ("leaderboard-results-file", lambda root: _write(root / RESULTS, "x"), BOARD, "is a file"),
    ("leaderboard-out-is-file",
     lambda root: (_stored_result(json.dumps(_result()))(root), _write(root / "out", "x")),
     [*BOARD, "--out", "out/site"], "cannot write the leaderboard"),
    ("check-baselines-is-file",
     lambda root: (_nothing(root), _write(root / RESULTS / "baselines", "x")), CHECK,
     "baseline folder"),
    # stored files: result.json (leaderboard and report skip a damaged one; check stops)
    ("result-empty-object", _stored_result("{}"), CHECK, "missing id"),
    ("result-list", _stored_result("[]"), CHECK, "a list instead of an object"),
    ("result-not-json", _stored_result('{"id": "abc", '), CHECK, "not valid JSON"),
    ("result-not-utf8", _stored_result(b'{"id": "\xff\xfe"}'), CHECK, "not UTF-8"),
    ("result-seed-text", _stored_result(json.dumps(_result(seed="zero"))), CHECK,
     "'seed' is a string"),
    ("result-metric-text", _stored_result(json.dumps(_result(metrics={"mig": "high"}))), CHECK,
     "metric 'mig' is not a number"),
    ("result-wrong-id", _stored_result(json.dumps(_result("xyz"))), CHECK,
     "not its folder's name"),
    ("result-folder", lambda root: (root / RESULTS / "runs" / "abc" / "result.json").mkdir(
        parents=True), CHECK, "cannot be read"),
    # another release's result: named with the versions read here, never skipped or moved
    ("result-unknown-schema", _stored_result(json.dumps(_result(schema=2))), BOARD,
     "result.json has schema 2: this release reads schema 1"),
    ("result-unknown-schema-check", _stored_result(json.dumps(_result(schema=2))), CHECK,
     "result.json has schema 2: this release reads schema 1"),
    ("result-unknown-schema-report", _stored_result(json.dumps(_result(schema=2))), REPORT,
     "result.json has schema 2: this release reads schema 1"),
    # a stage cache whose file no longer matches the sha256 recorded when it was written
    ("check-damaged-cache", _damaged_cache, CHECK,
     "stage cache cache/train/k1 of cell(s) abc (a.bin changed (sha256 differs))"),
    # stored files: baselines
    ("baseline-empty-object", _baseline("{}"), CHECK, "not a baseline file"),
    ("baseline-cell-number", _baseline('{"cells": [5]}'), CHECK, "cell 0 is not an object"),
    ("baseline-seed-text", _baseline(json.dumps({"cells": [{**BASELINE_OK, "seed": "x"}]})),
     CHECK, "'seed' is 'x': expected int"),
    ("baseline-metric-null", _baseline(json.dumps({"cells": [{**BASELINE_OK,
                                                               "metrics": {"mig": None}}]})),
     CHECK, "expected a finite number"),
    ("baseline-not-utf8", _baseline(b"\xff{}"), CHECK, "not UTF-8"),
    ("baseline-unknown-schema", _baseline(json.dumps({"schema": 2, "cells": [BASELINE_OK]})),
     CHECK, "shapes3d-synth--quick.json has schema 2: this release reads schema 1"),
    ("baseline-unknown-schema-update",
     lambda root: (_baseline(json.dumps({"schema": 2, "cells": [BASELINE_OK]}))(root),
                   _stored_result(json.dumps(_result()))(root)), [*CHECK, "--update"],
     "shapes3d-synth--quick.json has schema 2: this release reads schema 1"),
    ("baseline-update-keeps-damaged",
     lambda root: (_baseline("{}")(root),
                   _stored_result(json.dumps(_result()))(root)), [*CHECK, "--update"],
     "not a baseline file"),
    # a score without metadata (direction, tolerance) cannot be checked
    ("check-unchecked-score",
     lambda root: (_baseline(json.dumps({"cells": [_result(metrics={"mig": 0.5, "odd": 0.9})]}))(
         root), _stored_result(json.dumps(_result(metrics={"mig": 0.5, "odd": 0.5})))(root)),
     CHECK, "score key(s) odd have no metadata (direction, tolerance)"),
    ("check-update-unchecked-score",
     _stored_result(json.dumps(_result(metrics={"mig": 0.5, "odd": 0.9}))), [*CHECK, "--update"],
     "or pass --allow-unchecked to check the other scores"),
    # config values
    ("set-int-float", _nothing, [*SYNTH, "--set", "beta-vae.steps=1.5"],
     "bad value for beta-vae.steps in --set beta-vae.steps=1.5: expected an integer, got 1.5"),
    ("set-int-bool", _nothing, [*SYNTH, "--set", "steps=true"], "expected an integer, got True"),
    ("set-float-nan", _nothing, [*SYNTH, "--set", "beta=nan"], "expected a finite number"),
    ("set-float-inf", _nothing, [*SYNTH, "--set", "beta-vae.beta=-inf"],
     "expected a finite number"),
    ("set-int-text", _nothing, [*SYNTH, "--set", "steps=abc"],
     "steps (beta-vae) in --set steps=abc: expected an integer, got 'abc'"),
    ("set-unknown-field", _nothing, [*SYNTH, "--set", "stpes=3"], "did you mean steps?"),
    ("set-unknown-method-field", _nothing, [*SYNTH, "--set", "beta-vae.bta=3"],
     "did you mean beta?"),
    ("set-tuple-length", _nothing, [*SYNTH, "--set", "beta-vae.adam_betas=[0.9]"],
     "expected a list of 2 finite numbers"),
    ("set-optional-tuple", _nothing, [*SYNTH, "--set", "sefa.layers=[1.5]"],
     "expected a list of integers or none"),
    ("set-recog-deformator", _nothing, [*PEERS, "--set", "recog.deformator=foo"],
     "method 'recog': deformator must be one of ortho, linear, got 'foo'"),
    ("set-latentclr-milestones", _nothing, [*PEERS, "--set", "latentclr.milestones=[5,2]"],
     "milestones must be increasing positive steps"),
    ("set-unknown-method", _nothing, [*SYNTH, "--set", "beta-vea.beta=3"],
     "did you mean beta-vae"),
    ("set-no-equals", _nothing, [*SYNTH, "--set", "steps"], "bad --set 'steps'"),
    ("grid-int-float", _grid("[set.beta-vae]\nsteps = 1.5\n"),
     [*SYNTH, "--grid", "grid.toml"], "grid file grid.toml [set.beta-vae] steps"),
    ("grid-float-inf", _grid("[set]\nbeta = inf\n"), [*SYNTH, "--grid", "grid.toml"],
     "grid file grid.toml [set] beta: expected a finite number"),
    ("grid-int-text", _grid('[set.beta-vae]\nsteps = "abc"\n'),
     [*SYNTH, "--grid", "grid.toml"], "expected an integer, got 'abc'"),
    ("grid-table-value", _grid("[set.beta-vae.steps]\nx = 1\n"),
     [*SYNTH, "--grid", "grid.toml"], "expected an integer"),
    ("grid-not-utf8", lambda root: _write(root / "grid.toml", b"\xff\xfe"),
     [*SYNTH, "--grid", "grid.toml"], "not UTF-8"),
    ("grid-is-folder", lambda root: (root / "grid.toml").mkdir(),
     [*SYNTH, "--grid", "grid.toml"], "is a folder"),
    ("grid-slurm-unknown-key", _grid('[slurm]\npartitio = "gpu"\n'),
     [*SYNTH, "--grid", "grid.toml"], "grid file grid.toml: [slurm] unknown key 'partitio'"),
    # arguments
    ("jobs-not-int", _nothing, [*SYNTH, "--jobs", "abc"],
     "bad --jobs 'abc': expected a positive integer"),
    ("jobs-zero", _nothing, [*SYNTH, "--jobs", "0"], "bad --jobs '0': expected a positive integer"),
    ("threads-zero", _nothing, [*SYNTH, "--threads", "0"],
     "bad --threads '0': expected a positive integer"),
    ("seeds-reversed", _nothing, [*SYNTH, "--seeds", "3-1"], "below the start"),
    ("profile-unknown", _nothing, [*SYNTH, "--profile", "fast"], "unknown profile 'fast'"),
    ("unknown-command-choice", _nothing, ["list", "method"], "invalid choice"),
]


def _checkpoint(kind: str, name: str) -> Callable[[Path], None]:
    """A bad checkpoint file (or folder) ``name`` of ``kind``, made in the test folder."""
    def setup(root: Path) -> None:
        _nothing(root)
        path = root / name
        if kind == "folder":
            path.mkdir()
        elif kind == "empty":
            _write(path, b"")
        elif kind == "random":
            _write(path, bytes(range(256)) * 16)
        elif kind == "forbidden-global":  # a protocol-0 pickle that would call os.system
            _write(path, b"cos\nsystem\n(S'echo unsafe'\ntR.")
        elif kind == "zip-not-torch":
            import zipfile

            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("notes.txt", "a zip file, not a torch checkpoint")
        elif kind == "no-sidecar":  # safetensors weights without the .json beside them
            _write(path, b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return setup


def _ffhq_classifiers(resolution: int = 16, damaged: dict[int, bytes] | None = None,
                      leave_out: int | None = None, cut_after_record: int | None = None
                      ) -> Callable[[Path], None]:
    """The 40 stand-in classifier pickles in ``cache/ffhq`` (``$BENCH_CACHE`` = cache): at
    ``resolution`` px, file i's bytes replaced by ``damaged[i]``, file ``leave_out`` absent,
    file ``cut_after_record`` cut short after all were recorded in the manifest."""
    def setup(root: Path) -> None:
        from core.digest_record import DigestRecord, Recorded
        from core.hashing import file_sha256

        _nothing(root)
        folder = write_classifiers(root / "cache" / "ffhq", resolution, damaged)
        if leave_out is not None:
            next(folder.glob(f"celebahq-classifier-{leave_out:02d}-*.pkl")).unlink()
        if cut_after_record is not None:
            record = DigestRecord(folder)
            for path in sorted(folder.glob("celebahq-classifier-*.pkl")):
                record.add(path.name, Recorded(file_sha256(path), path.stat().st_size, "test"))
            path = next(folder.glob(f"celebahq-classifier-{cut_after_record:02d}-*.pkl"))
            path.write_bytes(path.read_bytes()[:100])
    return setup


def _mismatched_predictor(root: Path) -> None:
    """A TorchScript predictor of 3 output columns whose JSON declares 2 binary attributes."""
    import torch

    from models.user_predictor import export_predictor

    _nothing(root)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                  torch.nn.Linear(3, 3))
    export_predictor(net, root / "p.pt", resolution=16,
                     outputs=[{"name": "smiling", "kind": "binary"},
                              {"name": "male", "kind": "binary"}])


def _edit_setup(kind: str = "directions", generator: dict | None = None,
                photo: str = "rgb") -> Callable[[Path], None]:
    """A results folder with one done oracle cell (``tests/edit_cells.py``: its calibrate stage
    only) of ``kind``, made with ``generator`` when given, and a photos folder holding one image
    (``rgb``, ``gray`` or ``broken``)."""
    def setup(root: Path) -> None:
        import numpy as np
        import torch
        from edit_cells import make_cell
        from PIL import Image

        from bench.planning.bundles import load_bundle
        from models.directions import Directions

        bundle = load_bundle("shapes3d-oracle")
        identity = dict(bundle.identity)
        if generator is not None:
            identity["generator"] = generator
        directions = Directions.from_w(torch.eye(32)[:6], 1)
        make_cell(root / RESULTS, "shapes3d-oracle", directions, bundle=bundle, kind=kind,
                  identity=identity)
        (root / "photos").mkdir()
        if photo == "broken":
            _write(root / "photos" / "a.png", b"\x89PNG\r\n\x1a\nbroken")
        else:
            shape = (64, 64) if photo == "gray" else (64, 64, 3)
            Image.fromarray(np.full(shape, 90, np.uint8)).save(root / "photos" / "a.png")
    return setup


def _edit_cell_id(root: Path) -> str:
    (path,) = (root / RESULTS / "runs").glob("*/result.json")
    return path.parent.name


EDIT = ["edit", "--method", "oracle", "--dataset", "shapes3d-oracle", "--images", "photos",
        "--results", RESULTS]

SHAPES3D_DRY = ["run", "--datasets", "shapes3d", "--methods", "sefa", "--dry-run", "--results",
                RESULTS]
FFHQ_DRY = ["run", "--datasets", "ffhq", "--methods", "sefa", "--dry-run", "--results", RESULTS]
GEN_VAR, FFHQ_VAR = "BENCH_SHAPES3D_GENERATOR", "BENCH_FFHQ_GENERATOR"
MPI3D_DRY = ["run", "--datasets", "mpi3d", "--methods", "sefa", "--dry-run", "--results", RESULTS]
CARS3D_DRY = ["run", "--datasets", "cars3d", "--methods", "sefa", "--dry-run", "--results",
              RESULTS]
MPI3D_GEN = {"BENCH_MPI3D_GENERATOR": str(REPO / "tests" / "golden" / "disco_g64.pt")}
CARS3D_GEN = {"BENCH_CARS3D_GENERATOR": str(REPO / "tests" / "golden" / "disco_g64.pt")}
NOTHING_LISTENS = f"http://127.0.0.1:{reserved_closed_port()}/"
FFHQ_CACHE = {"BENCH_CACHE": "cache", "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
# a 32-px generator (the shipped shapes3d one) and the classifiers `bench prepare ffhq` left
STANDIN_32PX = {FFHQ_VAR: str(REPO / "models" / "weights" / "shapes3d_generator.safetensors"),
                "BENCH_CACHE": "cache"}

# Inputs checked when the grid is planned, many named by environment variables (each checked
# like its flag): (case id, setup, environment, arguments, fragment). One line, exit 2,
# nothing written.
PLANNING_CATALOGUE: list[tuple[str, Callable[[Path], None], dict[str, str], list[str], str]] = [
    ("data-var-missing", _nothing, {"BENCH_DATA": "nowhere"}, SHAPES3D_DRY,
     "$BENCH_DATA nowhere not found"),
    ("data-var-empty-folder", lambda root: (_nothing(root), (root / "data").mkdir()),
     {"BENCH_DATA": "data"}, SHAPES3D_DRY, "3dshapes.h5 not found in $BENCH_DATA data"),
    ("data-var-file", lambda root: (_nothing(root), _write(root / "notes.txt", "x")),
     {"BENCH_DATA": "notes.txt"}, SHAPES3D_DRY, "$BENCH_DATA notes.txt is a file"),
    ("data-var-default-grid", _nothing, {"BENCH_DATA": "nowhere"},
     ["run", "--dry-run", "--results", RESULTS], "$BENCH_DATA nowhere not found"),
    ("data-var-synthetic-dataset", _nothing, {"BENCH_DATA": "nowhere"},
     [*SYNTH, "--dry-run"], "$BENCH_DATA nowhere not found"),
    ("data-var-prepare", _nothing, {"BENCH_DATA": "nowhere"}, ["prepare", "shapes3d"],
     "$BENCH_DATA nowhere not found"),
    ("data-var-report", _nothing, {"BENCH_DATA": "nowhere"}, REPORT,
     "$BENCH_DATA nowhere not found"),
    ("cache-var-file", lambda root: (_nothing(root), _write(root / "cache", "x")),
     {"BENCH_CACHE": "cache"}, SHAPES3D_DRY, "$BENCH_CACHE cache is a file"),
    ("device-var-unknown", _nothing, {"BENCH_DEVICE": "gpu0"}, SHAPES3D_DRY,
     "'gpu0' is not a torch device"),
    ("device-var-absent", _nothing, {"BENCH_DEVICE": "cuda:3"}, SHAPES3D_DRY,
     "CUDA device(s)"),
    *[(f"generator-var-{kind}", _checkpoint(kind, "g.pkl"), {GEN_VAR: "g.pkl"}, SHAPES3D_DRY,
       fragment) for kind, fragment in [
        ("folder", "$BENCH_SHAPES3D_GENERATOR g.pkl is a folder"),
        ("empty", "$BENCH_SHAPES3D_GENERATOR g.pkl is an empty file"),
        ("random", "g.pkl: cannot be read as an NVIDIA"),
        ("forbidden-global", "refusing to load global 'os.system'")]],
    ("generator-var-missing", _nothing, {GEN_VAR: "g.pkl"}, SHAPES3D_DRY,
     "$BENCH_SHAPES3D_GENERATOR g.pkl not found"),
    ("unused-dataset-var-missing", _nothing, {FFHQ_VAR: "f.pkl"}, SHAPES3D_DRY,
     "$BENCH_FFHQ_GENERATOR f.pkl not found"),
    ("generator-var-zip-not-torch", _checkpoint("zip-not-torch", "g.pt"), {GEN_VAR: "g.pt"},
     SHAPES3D_DRY, "g.pt: cannot be read as a StyleGAN2 generator torch.save"),
    ("ffhq-generator-var-random", _checkpoint("random", "f.pt"), {FFHQ_VAR: "f.pt"}, FFHQ_DRY,
     "$BENCH_FFHQ_GENERATOR: f.pt: cannot be read"),
    ("ffhq-generator-var-folder", _checkpoint("folder", "f.pkl"), {FFHQ_VAR: "f.pkl"},
     FFHQ_DRY, "$BENCH_FFHQ_GENERATOR f.pkl is a folder"),
    ("ffhq-predictor-var-folder", _checkpoint("folder", "p.safetensors"),
     {FFHQ_VAR: str(REPO / "models" / "weights" / "shapes3d_generator.safetensors"),
      "BENCH_FFHQ_PREDICTOR": "p.safetensors"}, FFHQ_DRY,
     "$BENCH_FFHQ_PREDICTOR p.safetensors is a folder"),
    ("ffhq-predictor-var-no-sidecar", _checkpoint("no-sidecar", "p.safetensors"),
     {FFHQ_VAR: str(REPO / "models" / "weights" / "shapes3d_generator.safetensors"),
      "BENCH_FFHQ_PREDICTOR": "p.safetensors"}, FFHQ_DRY,
     "attribute predictor p.safetensors: its architecture file p.json is missing"),
    ("alexnet-var-random", _checkpoint("random", "a.pth"),
     {FFHQ_VAR: str(REPO / "models" / "weights" / "shapes3d_generator.safetensors"),
      "BENCH_ALEXNET": "a.pth"}, FFHQ_DRY, "a.pth: not a readable torch state dict"),
    # the CelebA-HQ classifiers in the cache: every one is opened before any cell starts
    ("ffhq-classifier-corrupt", _ffhq_classifiers(damaged={7: bytes(range(256)) * 4}),
     STANDIN_32PX, FFHQ_DRY, "celebahq-classifier-07-bags-under-eyes.pkl: cannot be read as a "
     "CelebA-HQ attribute classifier pickle"),
    ("ffhq-classifier-truncated", _ffhq_classifiers(damaged={39: b"\x80\x04\x95"}),
     STANDIN_32PX, FFHQ_DRY, "celebahq-classifier-39-wearing-necktie.pkl: cannot be read"),
    ("ffhq-classifier-missing", _ffhq_classifiers(leave_out=7), STANDIN_32PX, FFHQ_DRY,
     "missing celebahq-classifier-07-bags-under-eyes.pkl; run `python -m bench prepare ffhq "
     "--only classifiers`"),
    ("ffhq-classifier-cut-after-download", _ffhq_classifiers(cut_after_record=3),
     STANDIN_32PX, FFHQ_DRY, "ffhq/manifest.json celebahq-classifier-03-wavy-hair.pkl; run "
     "`python -m bench prepare ffhq --only classifiers`"),
    ("ffhq-generator-too-small", _ffhq_classifiers(resolution=64), STANDIN_32PX, FFHQ_DRY,
     "makes 32-px images; the CelebA-HQ classifiers take 64 px or a multiple"),
    ("ffhq-predictor-json-mismatch", _mismatched_predictor,
     {**STANDIN_32PX, "BENCH_FFHQ_PREDICTOR": "p.pt"}, FFHQ_DRY,
     "returned shape (1, 3), its JSON declares 2 output column(s)"),
    # mpi3d and cars3d: a user generator and the real data, each missing one says what to get
    ("mpi3d-no-generator", _nothing, {}, MPI3D_DRY,
     "mpi3d: no generator: set $BENCH_MPI3D_GENERATOR to a StyleGAN2 checkpoint trained on "
     "mpi3d"),
    ("mpi3d-no-data", _nothing, MPI3D_GEN, MPI3D_DRY,
     "mpi3d: no data folder given; pass --data-dir DIR (or set BENCH_DATA) to a folder holding "
     "mpi3d_toy.npz (download https://huggingface.co/datasets/waleedgondal/mpi3d/"),
    ("mpi3d-data-folder-without-file", lambda root: (_nothing(root), (root / "data").mkdir()),
     {**MPI3D_GEN, "BENCH_DATA": "data"}, MPI3D_DRY,
     "mpi3d: mpi3d_toy.npz not found in $BENCH_DATA data"),
    ("mpi3d-predictor-var-missing", _nothing,
     {**MPI3D_GEN, "BENCH_MPI3D_PREDICTOR": "p.safetensors"}, MPI3D_DRY,
     "$BENCH_MPI3D_PREDICTOR p.safetensors not found"),
    ("mpi3d-prepare-no-data", _nothing, {}, ["prepare", "mpi3d"],
     "mpi3d: no data folder given"),
    ("cars3d-no-generator", _nothing, {}, CARS3D_DRY,
     "cars3d: no generator: set $BENCH_CARS3D_GENERATOR to a StyleGAN2 checkpoint trained on "
     "cars3d"),
    ("cars3d-no-data", _nothing, CARS3D_GEN, CARS3D_DRY,
     "cars3d: no data folder given; pass --data-dir DIR (or set BENCH_DATA) to a folder holding "
     "Cars3D .mat files (download http://www.scottreed.info/files/nips2015-analogy-data.tar.gz"),
    ("cars3d-prepare-no-files", lambda root: (_nothing(root), (root / "data").mkdir()),
     {"BENCH_DATA": "data"}, ["prepare", "cars3d"],
     "cars3d: no Cars3D .mat files (*.mat) in $BENCH_DATA data"),
    ("metrics-profile-unknown", _nothing, {}, [*SYNTH, "--metrics-profile", "dlib"],
     "unknown metrics profile 'dlib' in profile 'quick+dlib' (expected one of disco)"),
    ("metrics-profile-twice", _nothing, {},
     [*SYNTH, "--profile", "quick+disco", "--metrics-profile", "disco"],
     "profile 'quick+disco' already names a metrics profile"),
    # bench prepare ffhq: nothing is written, not even the cache folder
    ("ffhq-prepare-refused", _nothing, FFHQ_CACHE,
     ["prepare", "ffhq", "--only", "generator", "--base-url", NOTHING_LISTENS],
     f"connection refused: {NOTHING_LISTENS}ffhq-res512-mirror-stylegan2-noaug.pkl -> "),
    ("ffhq-prepare-base-url-not-http", _nothing, FFHQ_CACHE,
     ["prepare", "ffhq", "--base-url", "ftp://mirror/ffhq/"],
     "--base-url 'ftp://mirror/ffhq/': expected an http:// or https:// URL"),
    ("ffhq-prepare-unknown-generator", _nothing, FFHQ_CACHE,
     ["prepare", "ffhq", "--generator", "config-e"],
     "generator 'config-e' (--generator) is not known: expected one of ffhq512, config-f"),
    ("ffhq-prepare-flag-elsewhere", _nothing, FFHQ_CACHE,
     ["prepare", "shapes3d-synth", "--base-url", NOTHING_LISTENS],
     "prepare shapes3d-synth: --base-url applies to 'ffhq' only"),
    # seeds and grid size
    ("seed-too-large", _nothing, {}, [*SYNTH, "--seeds", "4294967296"],
     "seed 4294967296 is too large"),
    ("seed-range-absurd", _nothing, {}, [*SYNTH, "--seeds", "0-99999999999999999999"],
     "is too large"),
    ("grid-too-many-cells", _nothing, {}, [*SYNTH, "--seeds", "0-100000", "--dry-run"],
     "the grid has 100,001 cells, more than --max-cells 100,000"),
    ("max-cells-zero", _nothing, {}, [*SYNTH, "--max-cells", "0"], "--max-cells must be >= 1"),
    # --set on a method that is not in the grid, and values outside a setting's range
    ("set-method-not-in-grid", _nothing, {}, [*SYNTH, "--set", "sefa.num_directions=3"],
     "method 'sefa' is not in the grid"),
    ("set-below-range", _nothing, {}, [*SYNTH, "--set", "beta-vae.steps=0"],
     "steps: expected a value in [1, inf), got 0"),
    ("set-tuple-outside-range", _nothing, {}, [*SYNTH, "--set", "beta-vae.adam_betas=[0.9,1]"],
     "adam_betas: expected a value in [0, 1), got (0.9, 1.0)"),
    ("set-fraction-above-range", _nothing, {},
     ["run", "--methods", "corr-intervention", "--datasets", "shapes3d-oracle", "--set",
      "flip_fraction=1.5", "--results", RESULTS], "flip_fraction: expected a value in (0, 1]"),
    # bench edit: photos, cells and directions that cannot be used (nothing is written)
    ("edit-image-unreadable", _edit_setup(photo="broken"), {}, EDIT,
     "image photos/a.png: cannot be read (UnidentifiedImageError): expected a PNG or JPEG"),
    ("edit-image-grayscale", _edit_setup(photo="gray"), {}, EDIT,
     "image photos/a.png is grayscale (mode L): the generator makes RGB images"),
    ("edit-images-missing", _edit_setup(), {}, [*EDIT[:-3], "nowhere", *EDIT[-2:]],
     "--images nowhere not found"),
    ("edit-cell-missing", _edit_setup(), {},
     ["edit", "--cell", "0123456789abcdef", "--images", "photos", "--results", RESULTS],
     "--cell 0123456789abcdef: no finished cell of that id"),
    ("edit-cell-by-names-missing", _edit_setup(), {},
     ["edit", "--method", "sefa", "--dataset", "shapes3d-oracle", "--images", "photos",
      "--results", RESULTS], "no finished cell sefa / shapes3d-oracle / seed 0 / quick"),
    ("edit-cell-not-directions", _edit_setup(kind="representation"), {}, EDIT,
     "is a representation cell: expected a directions cell"),
    ("edit-cell-other-generator", _edit_setup(generator={"oracle": {"seed": 7}}), {}, EDIT,
     "was made with another generator than dataset 'shapes3d-oracle' has now"),
    ("edit-directions-out-of-range", _edit_setup(), {}, [*EDIT, "--directions", "0,6"],
     "--directions '0,6': 6 is out of range: the cell has 6 scored direction(s), 0-5"),
    ("edit-loss-unknown", _edit_setup(), {}, [*EDIT, "--loss", "vgg"], "--loss vgg: unknown"),
    ("edit-no-images", _edit_setup(), {}, EDIT[:5] + EDIT[-2:],
     "give either --images (files or folders) or --dataset-images N"),
    ("edit-steps-zero", _edit_setup(), {}, [*EDIT, "--steps", "0"], "num_steps must be >= 1"),
    ("edit-edits-is-file", lambda root: (_edit_setup()(root), _write(root / RESULTS / "edits",
                                                                     "x")), {}, EDIT,
     "it is a file, expected a folder"),
    ("grid-below-range", _grid("[set]\nnum_directions = 0\n"), {},
     ["run", "--methods", "sefa", "--datasets", "shapes3d-oracle", "--grid", "grid.toml",
      "--results", RESULTS], "num_directions: expected a value in [1, inf), got 0"),
]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its modification time and size."""
    found = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        found[str(path.relative_to(root))] = (stat.st_mtime_ns, stat.st_size)
    return found


NAMED_INPUT_VARS = ("BENCH_DATA", "BENCH_PLUGINS", "BENCH_CACHE", "BENCH_DEVICE", GEN_VAR,
                    FFHQ_VAR, "BENCH_FFHQ_PREDICTOR", "BENCH_ALEXNET", "BENCH_SHAPES3D_PREDICTOR",
                    "BENCH_MPI3D_GENERATOR", "BENCH_MPI3D_PREDICTOR", "BENCH_CARS3D_GENERATOR",
                    "BENCH_CARS3D_PREDICTOR")


def run_bench(root: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` in ``root`` with this checkout (and the test toys) importable
    and none of the user's named-input variables."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name in NAMED_INPUT_VARS:
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(("setup", "args", "fragment"),
                         [pytest.param(s, a, f, id=i) for i, s, a, f in CATALOGUE])
def test_bad_input_is_one_line_and_exit_2(tmp_path, setup, args, fragment):
    _assert_one_line_error(tmp_path, setup, args, fragment)


@pytest.mark.parametrize(("setup", "env", "args", "fragment"),
                         [pytest.param(s, e, a, f, id=i) for i, s, e, a, f in PLANNING_CATALOGUE])
def test_bad_named_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, setup, env, args,
                                               fragment):
    """In this process (``bench.cli.main``), to keep the catalogue fast: an exception that is
    not a one-line error fails the test as a traceback would."""
    from bench.cli import main

    setup(tmp_path)
    before = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in NAMED_INPUT_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0]
    assert _tree(tmp_path) == before


def _assert_one_line_error(tmp_path: Path, setup: Callable[[Path], None], args: list[str],
                           fragment: str) -> None:
    setup(tmp_path)
    before = _tree(tmp_path)
    done = run_bench(tmp_path, args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].strip(), done.stderr
    assert fragment in lines[0]
    assert _tree(tmp_path) == before


def test_complete_grid_writes_nothing(tmp_path):
    """A grid whose cells are all complete takes no lock and writes nothing (so a read-only
    results folder works for it)."""
    args = ["run", "--plugins", "bench_toy_plugin", "--methods", "toy-identity", "--datasets",
            "toy-data", "--results", RESULTS, "--quiet"]
    first = run_bench(tmp_path, args)
    assert first.returncode == 0, first.stderr
    before = _tree(tmp_path)
    again = run_bench(tmp_path, args)
    assert again.returncode == 0 and "1 already done" in again.stderr, again.stderr
    assert _tree(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not stop root")
def test_read_only_results_folder(tmp_path):
    _nothing(tmp_path)
    (tmp_path / RESULTS).chmod(0o555)
    try:
        before = _tree(tmp_path)
        done = run_bench(tmp_path, [*SYNTH, "--set", "beta-vae.steps=1"])
        assert done.returncode == 2 and done.stderr.startswith("error: results folder")
        assert len(done.stderr.splitlines()) == 1 and "not writable" in done.stderr
        assert _tree(tmp_path) == before
    finally:
        (tmp_path / RESULTS).chmod(0o755)


def test_damaged_result_is_moved_aside_and_recomputed(tmp_path):
    args = ["run", "--plugins", "bench_toy_plugin", "--methods", "toy-identity", "--datasets",
            "toy-data", "--results", RESULTS, "--quiet", "--no-leaderboard"]
    assert run_bench(tmp_path, args).returncode == 0
    (result,) = (tmp_path / RESULTS / "runs").glob("*/result.json")
    result.write_text('{"id": "truncated', encoding="utf-8")
    dry = run_bench(tmp_path, [*args, "--dry-run"])
    assert dry.returncode == 0 and "damaged" in dry.stdout and "0 done, 1 to run" in dry.stdout
    board = run_bench(tmp_path, ["leaderboard", "--results", RESULTS])  # skips it, one line
    assert board.returncode == 0 and board.stderr.startswith(
        f"warning: skipped damaged result {result} (not valid JSON")
    check = run_bench(tmp_path, ["check", "--results", RESULTS])
    assert check.returncode == 2 and f"result runs/{result.parent.name}/result.json" in check.stderr
    again = run_bench(tmp_path, args)
    assert again.returncode == 0, again.stderr
    notices = [line for line in again.stderr.splitlines() if line.startswith("moved aside")]
    assert len(notices) == 1 and notices[0].startswith(
        f"moved aside damaged result {result} (not valid JSON")
    assert "expected a result.json" not in notices[0]  # the reason, without the advice
    assert json.loads(result.read_text(encoding="utf-8"))["id"] == result.parent.name
    (aside,) = (tmp_path / RESULTS / "invalid").iterdir()
    assert aside.name.startswith(result.parent.name)
    assert (aside / "result.json").read_text(encoding="utf-8") == '{"id": "truncated'
