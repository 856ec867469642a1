"""Integrity before need: a stage cache damaged while its cell's result.json is intact shows as
``damaged-cache`` in the dry run, ``run --verify`` moves it aside, ``check`` names every damaged
cell at once, and ``leaderboard``/``report`` skip a damaged result with one line naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.results.context import STAGE_INFO_FILE
from bench.results.store import ResultStore
from bench.running.integrity import DAMAGED_CACHE, cell_statuses, verify_caches


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _grid(root: Path, seeds: str = "0-2") -> list[str]:
    return ["--methods", "toy-identity", "--datasets", "toy-data", "--seeds", seeds,
            "--results", str(root)]


def _train_entry(store: ResultStore, cell_id: str) -> Path:
    (key,) = [s["key"] for s in store.load(cell_id)["stages"] if s["name"] == "train"]
    return store.cache_dir / "train" / key


def _same_size_change(entry: Path) -> None:
    path = entry / "toy.json"
    path.write_text(path.read_text().replace('"scale": 1.0', '"scale": 7.0'))


@pytest.fixture
def grid_done(toys, capsys, tmp_path):
    """Three complete toy cells (ids in seed order) and their store."""
    root = tmp_path / "results"
    assert main(["run", *_grid(root), "--quiet", "--no-leaderboard"]) == 0
    capsys.readouterr()
    store = ResultStore(root)
    ids = sorted(store.runs_dir.iterdir(), key=lambda p: store.load(p.name)["seed"])
    return store, [p.name for p in ids]


def test_dry_run_shows_cache_damage_before_it_is_needed(grid_done, capsys):
    store, ids = grid_done
    entry = _train_entry(store, ids[1])
    _same_size_change(entry)  # same size: only the sha256 tells
    store.result_path(ids[2]).write_text("{}")
    code, out, err = run_cli(capsys, "run", *_grid(store.root, "0-3"), "--dry-run")
    assert code == 0 and err == ""
    rows = [line.split()[:2] for line in out.splitlines()[2:6]]
    assert rows == [["done", ids[0]], [DAMAGED_CACHE, ids[1]], ["damaged", ids[2]],
                    ["todo", rows[3][1]]]
    assert out.splitlines()[6:] == [
        f"damaged: result runs/{ids[2]}/result.json (missing id, method, dataset, profile, "
        "seed, config, metrics)",
        f"{DAMAGED_CACHE}: stage cache cache/train/{entry.name} of cell(s) {ids[1]} "
        "(toy.json changed (sha256 differs))",
        "4 cell(s): 2 done (1 with a damaged stage cache: `bench run --verify` moves it "
        "aside), 2 to run"]
    assert entry.is_dir() and not (store.root / "invalid").exists()  # a dry run writes nothing


def test_a_missing_cache_is_no_damage(grid_done, capsys):
    """A fresh clone holds committed results but no cache: every cell is done."""
    store, ids = grid_done
    shutil.rmtree(store.cache_dir)
    statuses, damaged, damages = cell_statuses(store, ids)
    assert statuses == dict.fromkeys(ids, "done") and damaged == damages == []
    code, out, _ = run_cli(capsys, "run", *_grid(store.root), "--dry-run")
    assert code == 0 and "3 cell(s): 3 done, 0 to run" in out


def test_verify_moves_damaged_caches_aside(grid_done, capsys, toys):
    store, ids = grid_done
    entries = [_train_entry(store, ids[0]), _train_entry(store, ids[2])]
    (entries[0] / "toy.json").unlink()
    (entries[1] / STAGE_INFO_FILE).write_text("{")
    code, _, err = run_cli(capsys, "run", *_grid(store.root), "--verify", "--quiet",
                           "--no-leaderboard")
    assert code == 0
    lines = err.splitlines()
    assert lines[0].startswith(f"moved aside damaged stage cache {entries[0]} of cell(s) "
                               f"{ids[0]} (toy.json is missing) to {store.root / 'invalid'}")
    assert lines[1].startswith(f"moved aside damaged stage cache {entries[1]} of cell(s) "
                               f"{ids[2]} (unreadable .stage.json) to ")
    assert lines[2] == ("verify: stage caches of 3 done cell(s) checked, 2 damaged one(s) "
                        "moved aside")
    assert lines[3].startswith("3 cell(s): 0 run, 3 already done")
    assert not entries[0].exists() and len(list((store.root / "invalid").iterdir())) == 2
    assert verify_caches(store, store.results()) == []
    code, out, _ = run_cli(capsys, "run", *_grid(store.root), "--dry-run")
    assert "3 cell(s): 3 done, 0 to run" in out  # the moved entries are missing: no damage
    assert toys.read_text().split() == ["0", "1", "2"]  # nothing retrained


def test_check_names_every_damaged_cell_at_once(grid_done, capsys):
    store, ids = grid_done
    assert main(["check", "--results", str(store.root), "--update"]) == 0
    _same_size_change(_train_entry(store, ids[0]))
    store.result_path(ids[1]).write_text('{"id": "trunc')
    metrics_key = [s["key"] for s in store.load(ids[2])["stages"]
                   if s["name"] == "representation-metrics"][0]
    (store.cache_dir / "representation-metrics" / metrics_key / "value.json").write_text("{}")
    capsys.readouterr()
    code, out, err = run_cli(capsys, "check", "--results", str(store.root))
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"error: 3 damaged cell(s) in {store.root}: result "
                          f"runs/{ids[1]}/result.json (not valid JSON")
    assert f"stage cache cache/train/{_train_entry(store, ids[0]).name} of cell(s) {ids[0]}" in err
    assert f"cache/representation-metrics/{metrics_key} of cell(s) {ids[2]}" in err
    assert "`bench run` recomputes a damaged result" in err
    assert "`bench run --verify` moves a damaged stage cache aside" in err


def test_leaderboard_and_report_skip_a_damaged_cell(grid_done, capsys):
    store, ids = grid_done
    store.result_path(ids[1]).write_text("[]")
    code, out, err = run_cli(capsys, "leaderboard", "--results", str(store.root))
    assert code == 0
    warning, wrote = err.splitlines()
    assert warning == (f"warning: skipped damaged result {store.result_path(ids[1])} (a list "
                       "instead of an object); rerunning its grid recomputes it")
    assert wrote.startswith("wrote ")
    csv = (store.root / "LEADERBOARD.csv").read_text()
    assert ",toy-identity," in csv and ",2," in csv  # the two whole seeds
    code, out, err = run_cli(capsys, "report", "--results", str(store.root))
    assert code == 0 and err.splitlines() == [warning]
    assert "1 damaged" in (store.root / "report" / "index.html").read_text()


def test_another_releases_cache_record_stops_the_dry_run(grid_done, capsys):
    store, ids = grid_done
    entry = _train_entry(store, ids[0])
    info = json.loads((entry / STAGE_INFO_FILE).read_text())
    (entry / STAGE_INFO_FILE).write_text(json.dumps({**info, "schema": 9}))
    code, out, err = run_cli(capsys, "run", *_grid(store.root), "--dry-run")
    assert code == 2 and len(err.splitlines()) == 1
    assert err == (f"error: stage cache record {entry / STAGE_INFO_FILE} has schema 9: this "
                   "release reads schema 1 (it was written by another release of "
                   "disentangle-bench; read it with that release)\n")


def test_another_releases_result_stops_the_run_untouched(grid_done, capsys):
    """A result of a schema this release does not read is not damage: `run` neither counts it
    done nor moves it aside and recomputes it; it stops with one line naming it."""
    store, ids = grid_done
    path = store.result_path(ids[0])
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema": 2}))
    before = path.read_text()
    for extra in ([], ["--dry-run"], ["--verify"]):
        code, _, err = run_cli(capsys, "run", *_grid(store.root), "--quiet", *extra)
        assert code == 2 and err == (f"error: result {path} has schema 2: this release reads "
                                     "schema 1 (it was written by another release of "
                                     "disentangle-bench; read it with that release)\n")
    assert path.read_text() == before and not (store.root / "invalid").exists()
