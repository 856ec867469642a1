"""Atomic writes, the results-folder lock, and metric validation."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results.store import (
    RESULT_SCHEMA,
    InvalidResult,
    ResultStore,
    UnknownSchema,
    check_metrics,
    results_lock,
)
from core.errors import BenchError
from core.io import atomic_write_json, atomic_write_text, read_json

REPO = Path(__file__).resolve().parent.parent


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "f.json"
    atomic_write_json(path, {"b": 1, "a": [1, 2]})
    assert path.read_text().startswith('{\n  "a"')  # sorted keys
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]


def test_failed_write_keeps_old_content_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_nan_is_never_written(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"m": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_check_metrics():
    assert check_metrics({"a": 1, "b": 0.5}, "cell") == {"a": 1.0, "b": 0.5}
    with pytest.raises(ValueError, match="metric 'a' is nan"):
        check_metrics({"a": float("nan")}, "cell")
    with pytest.raises(ValueError, match="not a number"):
        check_metrics({"a": "high"}, "cell")
    with pytest.raises(ValueError, match="must be a dict"):
        check_metrics([1.0], "cell")


def test_malformed_result_file_names_the_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{ broken")
    with pytest.raises(BenchError, match="r.json: not valid JSON"):
        read_json(path)


def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    with results_lock(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
        busy = f"in use by another bench run \\(PID {os.getpid()}\\)"
        with pytest.raises(BenchError, match=busy):
            with results_lock(tmp_path):
                pass
        code = ("import sys; from bench.results.store import results_lock\n"
                "try:\n    with results_lock(sys.argv[1]): pass\n"
                "except Exception as err: print(err); sys.exit(3)\n")
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO,
                              capture_output=True, text=True)
        assert done.returncode == 3 and f"PID {os.getpid()}" in done.stdout
    with results_lock(tmp_path):  # released after the block
        pass


def test_store_completeness_and_stale_temporaries(tmp_path):
    store = ResultStore(tmp_path)
    assert not store.is_complete("abc") and store.results() == []
    run_dir = store.prepare_run_dir("abc")
    (run_dir / "partial.png").write_text("x")
    assert not store.is_complete("abc")
    assert not (store.prepare_run_dir("abc") / "partial.png").exists()
    whole = {"id": "abc", "method": "m", "dataset": "d", "profile": "quick", "seed": 0,
             "config": {}, "metrics": {"mig": 0.5}}
    store.write("abc", whole)
    assert store.is_complete("abc") and store.results() == [whole]
    stale = store.cache_dir / "train" / ".tmp-deadbeef-1-x"
    stale.mkdir(parents=True)
    kept = store.cache_dir / "train" / "deadbeef"
    kept.mkdir()
    store.clean_stale_temporaries()
    assert not stale.exists() and kept.exists()


WHOLE = {"id": "abc", "method": "m", "dataset": "d", "profile": "quick", "seed": 0,
         "config": {}, "metrics": {"mig": 0.5}}


def test_result_schema_versions(tmp_path):
    """No "schema" field reads as version 1 (results written before it); an unknown version
    is not damage but a one-line error naming the file and the versions read here."""
    store = ResultStore(tmp_path)
    store.write("abc", WHOLE)
    assert store.status("abc") == "done" and store.results() == [WHOLE]
    store.write("abc", {**WHOLE, "schema": RESULT_SCHEMA})
    assert store.status("abc") == "done"
    store.write("abc", {**WHOLE, "schema": 2})
    expected = f"result {store.result_path('abc')} has schema 2: this release reads schema 1 "
    for read in (lambda: store.status("abc"), store.results, store.scan):
        with pytest.raises(UnknownSchema) as err:
            read()
        assert str(err.value).startswith(expected) and not isinstance(err.value, InvalidResult)
    store.write("abc", {**WHOLE, "schema": "1"})  # not a version any release writes
    assert store.status("abc") == "damaged"
    with pytest.raises(InvalidResult, match="'schema' is a string"):
        store.load("abc")


def test_scan_returns_every_damaged_result(tmp_path):
    store = ResultStore(tmp_path)
    store.write("abc", WHOLE)
    for cell_id, text in (("bad1", "{"), ("bad2", "[]")):
        store.run_dir(cell_id).mkdir(parents=True)
        store.result_path(cell_id).write_text(text)
    found, damaged = store.scan()
    assert found == [WHOLE]
    assert [(e.path, e.problem) for e in damaged] == [
        (store.result_path("bad1"), "not valid JSON (Expecting property name enclosed in "
                                    "double quotes at line 1)"),
        (store.result_path("bad2"), "a list instead of an object")]
    with pytest.raises(InvalidResult, match="bad1"):
        store.results()
    assert store.scan({"abc"}) == ([WHOLE], [])


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")  # as a failing write: no path


def test_a_full_disk_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    atomic_write_text(path, "old")
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(OSError) as err:
        atomic_write_json(path, {"a": 1})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert str(path) in str(err.value) and path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_leaderboard_on_a_full_disk_names_the_file(tmp_path, monkeypatch, capsys):
    from bench.cli import main

    store = ResultStore(tmp_path)
    store.write("abc", WHOLE)
    monkeypatch.setattr(os, "fsync", _disk_full)
    assert main(["leaderboard", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: cannot write the leaderboard to {tmp_path / 'LEADERBOARD.md'} (No "
                   "space left on device): expected a writable folder with space (see --out)\n")
