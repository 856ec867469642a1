"""A damaged stage-cache entry is never used: it is moved to <results>/invalid/ with a one-line
notice naming it and recomputed, and the rerun ends with the numbers of an undamaged run."""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.grid import GridSpec
from bench.planning.plan import plan_grid
from bench.results.context import STAGE_INFO_FILE, STAGE_SCHEMA, stage_problem
from bench.results.store import ResultStore, UnknownSchema
from bench.running.runner import run_grid


def _plans():
    return plan_grid(GridSpec(methods=["toy-identity"], datasets=["toy-data"], seeds=[0, 1]))


def _metrics(store: ResultStore) -> dict[str, dict[str, float]]:
    return {r["id"]: r["metrics"] for r in store.results()}


def _edit_info(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        info = json.loads((folder / STAGE_INFO_FILE).read_text())
        change(info)
        (folder / STAGE_INFO_FILE).write_text(json.dumps(info))
    return damage


def _truncate(name: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / name
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return damage


def _same_size_change(folder: Path) -> None:
    text = (folder / "toy.json").read_text()
    (folder / "toy.json").write_text(text.replace('"scale": 1.0', '"scale": 7.0'))


def _legacy_truncated(folder: Path) -> None:
    """An entry written before files were recorded: only ``load`` can tell it is damaged."""
    _edit_info(lambda info: info.pop("files"))(folder)
    _truncate("toy.json")(folder)


DAMAGES = {
    "no-stage-json": (lambda folder: (folder / STAGE_INFO_FILE).unlink(), "no .stage.json"),
    "stage-json-truncated": (_truncate(STAGE_INFO_FILE), "unreadable .stage.json"),
    "stage-json-other-stage": (_edit_info(lambda info: info.update(stage="other")),
                               "is not of stage 'train' version 1"),
    "file-missing": (lambda folder: (folder / "toy.json").unlink(), "toy.json is missing"),
    "file-truncated": (_truncate("toy.json"), "toy.json is"),
    "file-changed": (_same_size_change, "toy.json changed (sha256 differs)"),
    "legacy-load-fails": (_legacy_truncated, "loading it failed: JSONDecodeError"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_train_cache_is_moved_aside_and_recomputed(toys, tmp_path, damage):
    plans = _plans()
    store = ResultStore(tmp_path / "results")
    run_grid(plans, store)
    undamaged = _metrics(store)
    record = store.load(plans[0].id)
    (key,) = [s["key"] for s in record["stages"] if s["name"] == "train"]
    entry = store.cache_dir / "train" / key
    assert json.loads((entry / STAGE_INFO_FILE).read_text())["files"]["toy.json"]["size"] > 0
    for plan in plans:  # the results are gone; only the stage cache would be reused
        store.result_path(plan.id).unlink()
    spoil, problem = DAMAGES[damage]
    spoil(entry)

    notices: list[str] = []
    outcomes = run_grid(plans, store, notice=notices.append)
    assert [o.ok for o in outcomes] == [True, True]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert notices[0].startswith(f"moved aside damaged stage cache {entry} (")
    assert problem in notices[0] and notices[0].endswith("; it is recomputed")
    (aside,) = (store.root / "invalid").iterdir()
    assert aside.name.startswith(f"cache-train-{key}-") and str(aside) in notices[0]
    assert toys.read_text().split() == ["0", "1", "0"]  # only the damaged training reran
    assert _metrics(store) == undamaged
    stages = {s["name"]: s["cache_hit"] for s in store.load(plans[0].id)["stages"]}
    assert stages == {"train": False, "representation-metrics": True}

    for plan in plans:  # the recomputed entry is whole: served from the cache, no notice
        store.result_path(plan.id).unlink()
    run_grid(plans, store, notice=notices.append)
    assert len(notices) == 1 and toys.read_text().split() == ["0", "1", "0"]
    assert _metrics(store) == undamaged


def test_damaged_metrics_cache_in_a_process_pool(toys, tmp_path):
    """A worker's notices reach the parent with the cell's outcome."""
    plans = _plans()
    store = ResultStore(tmp_path / "results")
    run_grid(plans, store)
    undamaged = _metrics(store)
    for plan in plans:
        store.result_path(plan.id).unlink()
    entries = sorted((store.cache_dir / "representation-metrics").iterdir())
    assert len(entries) == 2
    for entry in entries:
        (entry / "value.json").write_text("{")
    notices: list[str] = []
    run_grid(plans, store, jobs=2, plugins=["bench_toy_plugin"], notice=notices.append)
    assert sorted(n.split(" (")[0] for n in notices) == \
        [f"moved aside damaged stage cache {entry}" for entry in entries]
    assert all("value.json is 1 bytes" in n for n in notices)
    assert _metrics(store) == undamaged
    assert toys.read_text().split() == ["0", "1"]  # training served from the cache


def test_stage_cache_schema_versions(toys, tmp_path):
    """A .stage.json records its schema; one without the field (written before it) is version
    1 and used; one of a version this release does not read is not damage: the cell fails
    with a line naming it, and the entry stays where it is."""
    plans = _plans()[:1]
    store = ResultStore(tmp_path / "results")
    run_grid(plans, store)
    (entry,) = (store.cache_dir / "train").iterdir()
    info = json.loads((entry / STAGE_INFO_FILE).read_text())
    assert info["schema"] == STAGE_SCHEMA == 1
    assert stage_problem(entry, "train", 1) is None
    _edit_info(lambda info: info.pop("schema"))(entry)
    assert stage_problem(entry, "train", 1) is None
    store.result_path(plans[0].id).unlink()
    assert [o.ok for o in run_grid(plans, store)] == [True]
    assert toys.read_text().split() == ["0"]  # served from the cache
    _edit_info(lambda info: info.update(schema=2))(entry)
    with pytest.raises(UnknownSchema, match=re.escape(
            f"stage cache record {entry / STAGE_INFO_FILE} has schema 2: this release reads "
            "schema 1")):
        stage_problem(entry, "train", 1)
    store.result_path(plans[0].id).unlink()
    (outcome,) = run_grid(plans, store)
    assert not outcome.ok and "has schema 2: this release reads schema 1" in outcome.error
    assert entry.is_dir() and not (store.root / "invalid").exists()


def test_a_full_disk_in_a_stage_names_the_cache_entry(toys, tmp_path, monkeypatch):
    """A write that fails for lack of space knows no path: the cell's error names the stage
    entry it was writing, and no partial entry is left."""
    from bench_toys import ToyEncoder

    def full(self, directory):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ToyEncoder, "save", full)
    plans = _plans()[:1]
    store = ResultStore(tmp_path / "results")
    (outcome,) = run_grid(plans, store)
    assert not outcome.ok and "No space left on device" in outcome.error
    (entry,) = [line for line in outcome.error.split("'") if "/cache/train/" in line]
    assert entry.startswith(str(store.cache_dir / "train"))
    assert list((store.cache_dir / "train").iterdir()) == []
