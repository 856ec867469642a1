"""CLI: one-line errors with exit code 2, dry run, list, run + leaderboard, prepare/forwarding."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from bench_toys import register_toys, unregister_toys

from bench.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def toys():
    register_toys()
    yield
    unregister_toys()


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["--methods", "toy-identiy"], "unknown method 'toy-identiy'; did you mean toy-identity"),
     (["--methods", "toy-identity", "--seeds", "3-1"], "bad seed range '3-1'"),
     (["--methods", "toy-identity", "--seeds", "x"], "bad seeds 'x'"),
     (["--methods", "toy-identity", "--profile", "fast"], "unknown profile 'fast'"),
     (["--methods", "toy-identity", "--set", "nope=1"], "no method in the grid has"),
     (["--methods", "toy-identity", "--datasets", "toy-missing"], "toy.h5 not found"),
     (["--methods", "toy-needs-generator"], "needs generator"),
     (["--grid", "does-not-exist.toml"], "grid file does-not-exist.toml not found"),
     (["--methods", "toy-identity", "--jobs", "0"], "bad --jobs '0': expected a positive integer")],
)
def test_bad_input_is_one_line_exit_2(toys, capsys, tmp_path, args, fragment):
    code, out, err = run_cli(capsys, "run", "--datasets", "toy-data", *args,
                             "--results", str(tmp_path))
    assert code == 2
    assert err.startswith("error: ") and fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_oversubscribed_layout_warns_once_and_goes_on(toys, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("bench.threads.usable_cores", lambda: 2)
    common = ["run", "--methods", "toy-identity", "--datasets", "toy-data", "--dry-run",
              "--results", str(tmp_path)]
    code, out, err = run_cli(capsys, *common, "--jobs", "3", "--threads", "1")
    assert code == 0 and "1 cell(s): 0 done, 1 to run" in out
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        "warning: --jobs 3 x --threads 1 = 3 threads on 2 usable core(s): the threads wait for "
        "each other (slower, same numbers); keep --jobs x --threads <= 2"]
    code, out, err = run_cli(capsys, *common, "--jobs", "2", "--threads", "1")
    assert code == 0 and "warning" not in err
    code, out, err = run_cli(capsys, *common, "--jobs", "3", "--threads", "1",
                             "--executor", "slurm")  # the cells run on the cluster's cores
    assert code == 0 and "warning" not in err


@pytest.mark.parametrize("args", [["--seeds", "x"], ["--data-dir", "no/such/folder"],
                                  ["--threads", "0"], ["--jobs", "0"], ["--max-cells", "0"],
                                  ["--grid", "no-such-grid.toml"]])
def test_a_bad_argument_answers_before_torch_is_imported(tmp_path, args):
    """Planning imports torch (seconds); a mistyped argument is reported before that."""
    code = ("import sys; from bench.cli import main; code = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "run", *args, "--results", str(tmp_path)],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1


def test_malformed_grid_file(toys, capsys, tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text("methods = [\n")
    code, _, err = run_cli(capsys, "run", "--grid", str(grid), "--results", str(tmp_path))
    assert code == 2 and f"grid file {grid} is not valid TOML" in err


def test_verbose_shows_traceback(toys, capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "nope", "--datasets", "toy-data",
                           "--verbose", "--results", str(tmp_path))
    assert code == 2 and "Traceback" in err


def test_dry_run_then_run_then_dry_run(toys, capsys, tmp_path):
    common = ["run", "--methods", "toy-identity", "--datasets", "toy-data", "--seeds", "0-1",
              "--results", str(tmp_path)]
    code, out, _ = run_cli(capsys, *common, "--dry-run")
    assert code == 0 and out.count("todo") == 2 and "2 cell(s): 0 done, 2 to run" in out
    assert not (tmp_path / "runs").exists()
    code, out, err = run_cli(capsys, *common[:-4], "--seeds", "0", "--results", str(tmp_path))
    assert code == 0 and "## toy-data (quick)" in out and "| toy-identity" in out
    code, out, _ = run_cli(capsys, *common, "--dry-run")
    assert "2 cell(s): 1 done, 1 to run" in out
    code, out, err = run_cli(capsys, "leaderboard", "--results", str(tmp_path))
    assert code == 0 and (tmp_path / "LEADERBOARD.md").is_file()
    assert (tmp_path / "LEADERBOARD.csv").is_file() and (tmp_path / "LEADERBOARD.tex").is_file()


def test_grid_file_with_flag_override(toys, capsys, tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('methods = ["toy-identity"]\ndatasets = ["toy-data"]\nseeds = "0-3"\n'
                    "[set]\nscale = 2.0\n")
    code, out, _ = run_cli(capsys, "run", "--grid", str(grid), "--seeds", "5", "--dry-run",
                           "--results", str(tmp_path))
    assert code == 0 and "1 cell(s)" in out and "scale=2.0" in out


def test_failed_cell_exit_1(toys, capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "toy-nan", "--datasets", "toy-data",
                           "--results", str(tmp_path), "--no-leaderboard")
    assert code == 1 and "FAILED  toy-nan / toy-data / seed 0 / quick" in err


def test_list(toys, capsys):
    code, out, _ = run_cli(capsys, "list", "methods")
    assert code == 0 and "toy-identity" in out and "not in the default grid" in out
    code, out, _ = run_cli(capsys, "list", "datasets")
    assert "toy-data" in out and "bundle" in out
    code, out, _ = run_cli(capsys, "list", "metrics")
    assert "mig" in out and "higher" in out


def test_prepare_and_train_generator_forwarding(capsys, monkeypatch, tmp_path):
    seen = {}

    def prepare_dataset(name, data_dir=None, write_h5=None):
        seen["prepare"] = (name, data_dir, write_h5)
        return {"name": name, "ok": True}

    def train_main(argv):
        seen["train"] = argv
        return 0

    monkeypatch.setitem(sys.modules, "datasets.prepare",
                        types.SimpleNamespace(prepare_dataset=prepare_dataset))
    monkeypatch.setitem(sys.modules, "training.train_gan", types.SimpleNamespace(main=train_main))
    data = str(tmp_path)  # a --data-dir must exist (checked before the command runs)
    code, out, _ = run_cli(capsys, "prepare", "shapes3d", "--data-dir", data, "--write-h5", "x.h5")
    assert code == 0 and seen["prepare"] == ("shapes3d", data, "x.h5") and '"ok": true' in out
    assert main(["train-generator", "--steps", "3", "--help"]) == 0
    assert seen["train"] == ["--steps", "3", "--help"]
    for command, module in (("train-predictor", "training.train_predictor"),
                            ("quality", "training.quality")):
        def tool_main(argv, command=command):
            seen[command] = argv
            return 3
        monkeypatch.setitem(sys.modules, module, types.SimpleNamespace(main=tool_main))
        assert main([command, "--n", "7"]) == 3 and seen[command] == ["--n", "7"]


def test_prepare_prints_refused_input_as_one_line_and_lets_a_bug_through(capsys, monkeypatch,
                                                                         tmp_path):
    """``prepare`` reports the loaders' SettingError / DataError as one line (exit 2); a plain
    ValueError from them is a bug and keeps its traceback."""
    from core.errors import DataError

    monkeypatch.delenv("BENCH_DATA", raising=False)
    code, _, err = run_cli(capsys, "prepare", "dsprites", "--write-h5", str(tmp_path / "x.h5"))
    assert code == 2 and err == ("error: prepare: --write-h5 applies to 'shapes3d-synth' only, "
                                 "not 'dsprites'\n")
    raised: list[Exception] = [DataError("/d/3dshapes.h5: 'labels' is missing")]

    def prepare_dataset(name, data_dir=None, write_h5=None):
        raise raised[0]

    monkeypatch.setitem(sys.modules, "datasets.prepare",
                        types.SimpleNamespace(prepare_dataset=prepare_dataset))
    code, _, err = run_cli(capsys, "prepare", "shapes3d", "--data-dir", str(tmp_path))
    assert code == 2 and err == "error: /d/3dshapes.h5: 'labels' is missing\n"
    raised[0] = ValueError("internal: shapes disagree")
    with pytest.raises(ValueError, match="^internal: shapes disagree$"):
        main(["prepare", "shapes3d", "--data-dir", str(tmp_path)])


def test_run_prints_a_line_per_cell_start_and_end_without_a_terminal(toys, capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "toy-identity", "--datasets", "toy-data",
                           "--seeds", "0-1", "--results", str(tmp_path))
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith(("start", "done"))]
    assert [line.split()[0] for line in lines] == ["start", "done", "start", "done"]
    assert "toy-identity / toy-data / seed 1" in lines[2]
    assert lines[1].endswith(tuple("0123456789")) and "mig 1.000" in lines[1]
    _, _, quiet = run_cli(capsys, "run", "--methods", "toy-identity", "--datasets", "toy-data",
                          "--seeds", "2", "--results", str(tmp_path), "--quiet")
    assert not [line for line in quiet.splitlines() if line.startswith(("start", "done"))]


def test_user_os_errors_names_the_path_and_lets_other_os_errors_through(tmp_path):
    """A user's file error is one BenchError line naming the path (its own, else the given
    one); an error that is not the user's (EIO) or names no path keeps its traceback."""
    import errno

    from bench.cli import user_os_errors
    from core.errors import BenchError

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.md"))
    with pytest.raises(BenchError) as err, user_os_errors("cannot write x to", tmp_path, "see"):
        raise full
    assert str(err.value) == f"cannot write x to {tmp_path / 'x.md'} (No space left on device): see"
    with pytest.raises(BenchError, match=f"^cannot use {tmp_path} \\(Permission denied\\)$"):
        with user_os_errors("cannot use", tmp_path):
            raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(OSError, match="Input/output error"), user_os_errors("cannot use", tmp_path):
        raise OSError(errno.EIO, "Input/output error", str(tmp_path))
    with pytest.raises(PermissionError), user_os_errors("cannot use"):
        raise PermissionError(errno.EACCES, "Permission denied")



def test_a_done_line_names_the_headline_scores_in_order() -> None:
    """The discovery scores are the directions flow's keys, the rest the metrics': a done line
    shows both, headline keys only."""
    from bench.cli import _headline

    metrics = {"mig": 0.0704, "fvm_eval_accuracy": 0.757, "attribute_count": 4.0,
               "dci_disentanglement": 0.164, "disentanglement_score": 0.197,
               "pairs_kept_fraction": 1.0}
    assert _headline(metrics) == (": disentanglement_score 0.197, attribute_count 4.000, "
                                  "dci_disentanglement 0.164, fvm_eval_accuracy 0.757, mig 0.070")
    assert _headline({}) == "" and _headline(None) == ""
