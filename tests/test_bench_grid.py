"""Grid parsing (seeds, names, --set, TOML files) and stable cell ids."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from bench_toys import load_toy_encoder, register_toys, unregister_toys

import bench.flows.representation
from bench.grid import GridSpec, load_grid_file, parse_names, parse_seeds, parse_set_options
from bench.planning.bundles import BUNDLES
from bench.planning.plan import plan_grid
from core.config import check_ranges
from core.errors import BenchError, DataError, SettingError
from core.hashing import canonical_json, json_default, stable_hash, stable_int
from methods.base import METHODS, register_method
from models.bundle import Bundle

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def toys():
    register_toys()
    yield
    unregister_toys()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0-4", [0, 1, 2, 3, 4]), ("0,2,5", [0, 2, 5]), ("0-2,7", [0, 1, 2, 7]), ("3", [3]),
     (" 1 - 2 ", [1, 2]), ([4, 1], [4, 1]), (6, [6]), ("5-5", [5])],
)
def test_parse_seeds(text, expected):
    assert parse_seeds(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("4-1", "below the start"), ("a", "neither a seed nor a range"), ("", "neither"),
     ("1,,2", "neither"), ("-1", "neither"), ("1,1", "more than once"), ("0-2,2", "more than"),
     (True, "expected"), ([-1], ">= 0"), (["x"], "neither"), (1.5, "expected")],
)
def test_parse_seeds_rejects(text, fragment):
    with pytest.raises(BenchError, match=fragment):
        parse_seeds(text)


def test_parse_names():
    assert parse_names("a, b", "methods") == ["a", "b"]
    for bad in ("a,,b", "a,a", ""):
        with pytest.raises(BenchError):
            parse_names(bad, "methods")


def test_parse_set_options():
    got = parse_set_options(["steps=3", "beta-vae.beta=4.5", "x.y.name='s'", "flag=true",
                             "word=plain"])
    assert got == {"*": {"steps": 3, "flag": True, "word": "plain"},
                   "beta-vae": {"beta": 4.5}, "x.y": {"name": "s"}}
    for bad in ("steps", "=3", ".a=1"):
        with pytest.raises(BenchError, match="--set"):
            parse_set_options([bad])


def test_grid_file(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('profile = "paper"\nmethods = ["m1", "m2"]\ndatasets = ["d"]\n'
                    'seeds = "0-2"\n[set]\nsteps = 5\n[set.m1]\nbeta = 2.0\n')
    grid = load_grid_file(path)
    assert grid == GridSpec(["m1", "m2"], ["d"], [0, 1, 2], "paper",
                            {"*": {"steps": 5}, "m1": {"beta": 2.0}})
    assert load_grid_file(_write(tmp_path, "seeds = [3]\n")) == GridSpec(seeds=[3])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("methods = [", "not valid TOML"), ("method = ['a']", "unknown key"),
     ("seeds = '3-1'", "below the start"), ("profile = 3", "bad profile"),
     ("methods = 'a,,b'", "empty name"), ("set = 3", r"\[set\]")],
)
def test_grid_file_errors(tmp_path, text, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(BenchError, match=fragment) as info:
        load_grid_file(path)
    assert str(path) in str(info.value)


def test_grid_file_missing(tmp_path):
    with pytest.raises(BenchError, match="not found"):
        load_grid_file(tmp_path / "nope.toml")


def test_committed_grids_parse():
    files = sorted((REPO / "results" / "grids").glob("*.toml"))
    assert files, "expected committed example grids in results/grids/"
    for path in files:
        load_grid_file(path)


def test_canonical_json_and_hash_are_order_free():
    a = {"b": [1, 2.5, "x"], "a": {"z": None, "y": True}}
    b = {"a": {"y": True, "z": None}, "b": [1, 2.5, "x"]}
    assert canonical_json(a) == canonical_json(b) == '{"a":{"y":true,"z":null},"b":[1,2.5,"x"]}'
    assert stable_hash(a) == hashlib.sha256(canonical_json(a).encode()).hexdigest()[:16]
    assert stable_hash(a) != stable_hash({**a, "c": 0})
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_one_json_default_for_hashes_and_saved_metadata():
    """NumPy and torch scalars and arrays, sets (sorted), paths and dataclasses become plain JSON;
    any other type is refused by name, never written as its repr."""
    import json
    from pathlib import Path

    import numpy as np
    import torch

    @dataclasses.dataclass
    class Point:
        x: int
        y: float

    value = {"i": np.int64(3), "f": np.float32(0.5), "a": np.arange(3), "t": torch.tensor([1.5]),
             "s": {"b", "a"}, "p": Path("x") / "y", "d": Point(1, 2.0)}
    assert json.loads(json.dumps(value, default=json_default)) == {
        "i": 3, "f": 0.5, "a": [0, 1, 2], "t": [1.5], "s": ["a", "b"], "p": "x/y",
        "d": {"x": 1, "y": 2.0}}
    with pytest.raises(TypeError, match="not JSON-serialisable: a value of type object"):
        canonical_json({"x": object()})


def test_hash_and_named_seed_are_the_same_in_another_process():
    code = ("from core.hashing import stable_hash, stable_int;"
            "print(stable_hash({'k': [1, 2], 'a': 'b'}), stable_int('metrics'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [stable_hash({"a": "b", "k": [1, 2]}), str(stable_int("metrics"))]


def _one(**kwargs):
    grid = GridSpec(methods=["toy-identity"], datasets=["toy-data"], **kwargs)
    return plan_grid(grid)


def test_same_config_same_id_any_change_new_id(toys, monkeypatch):
    base = _one(seeds=[0])[0]
    assert _one(seeds=[0])[0].id == base.id
    changed = {
        "seed": _one(seeds=[1])[0],
        "profile": _one(seeds=[0], profile="paper")[0],
        "config": _one(seeds=[0], overrides={"*": {"scale": 2.0}})[0],
        "scoped config": _one(seeds=[0], overrides={"toy-identity": {"mix": 0.5}})[0],
    }
    monkeypatch.setitem(bench.flows.representation.STAGE_VERSIONS, "train", 2)
    changed["stage salt"] = _one(seeds=[0])[0]
    monkeypatch.undo()
    register_toys()
    ids = {name: plan.id for name, plan in changed.items()}
    assert base.id not in ids.values() and len(set(ids.values())) == len(ids), ids
    # seeds share the config hash; a config change does not
    assert changed["seed"].config_hash == base.config_hash
    assert changed["config"].config_hash != base.config_hash
    # a change of the dataset identity or of the metric settings changes the id
    assert dataclasses.replace(base, bundle_identity={"other": 1}).id != base.id
    assert dataclasses.replace(base, metric_settings={"num_samples": 1}).id != base.id


def test_default_grid_skips_unfit_and_opted_out_methods(toys, monkeypatch):
    monkeypatch.setattr("bench.planning.plan.DEFAULT_DATASETS", ("toy-data",))
    methods = {plan.cell.method for plan in plan_grid(GridSpec())}
    assert "toy-identity" in methods
    assert "toy-optout" not in methods
    assert "toy-needs-generator" not in methods
    with pytest.raises(BenchError, match="needs generator, which dataset 'toy-data' does not"):
        plan_grid(GridSpec(methods=["toy-needs-generator"], datasets=["toy-data"]))


def test_plan_errors(toys):
    with pytest.raises(BenchError, match="did you mean toy-identity"):
        plan_grid(GridSpec(methods=["toy-identiy"], datasets=["toy-data"]))
    with pytest.raises(BenchError, match="unknown dataset 'toy-dat'"):
        plan_grid(GridSpec(methods=["toy-identity"], datasets=["toy-dat"]))
    with pytest.raises(BenchError, match="unknown profile 'fast'"):
        plan_grid(GridSpec(methods=["toy-identity"], datasets=["toy-data"], profile="fast"))
    with pytest.raises(BenchError, match="toy.h5 not found"):
        plan_grid(GridSpec(methods=["toy-identity"], datasets=["toy-missing"]))
    with pytest.raises(BenchError, match="no method in the grid has a config field nope"):
        plan_grid(GridSpec(methods=["toy-identity"], datasets=["toy-data"],
                           overrides={"*": {"nope": 1}}))
    with pytest.raises(BenchError, match="unknown config field"):
        plan_grid(GridSpec(methods=["toy-identity"], datasets=["toy-data"],
                           overrides={"toy-identity": {"nope": 1}}))


@dataclasses.dataclass(frozen=True)
class CheckedConfig:
    """A toy config whose ``__post_init__`` refuses values as the methods' configs do."""

    steps: int = 10

    RANGES: ClassVar[dict[str, str]] = {"steps": "[1, inf)"}

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.steps == 7:
            raise SettingError(f"steps must not be 7, got {self.steps}")


def _never_trained(bundle: object, config: CheckedConfig, seed: int, progress: object = None):
    raise AssertionError("planning never trains")


def _raising_bundle(error: Exception):
    def load(data_dir: str | None = None) -> Bundle:
        raise error
    return load


@pytest.fixture
def checked(toys):
    """The method ``toy-checked`` (CheckedConfig) and bundles whose loaders raise a DataError
    (``toy-damaged``) and a plain ValueError (``toy-buggy``)."""
    register_method("toy-checked", description="toy: a config with checks", kind="representation",
                    config_cls=CheckedConfig, requires=("ground_truth",),
                    load_output=load_toy_encoder)(_never_trained)
    BUNDLES.add("toy-damaged", _raising_bundle(DataError("/d/toy.h5: not a toy file")),
                description="toy: a damaged data file")
    BUNDLES.add("toy-buggy", _raising_bundle(ValueError("index 3 out of range")),
                description="toy: a loader with a bug")
    yield
    METHODS._entries.pop("toy-checked", None)
    for name in ("toy-damaged", "toy-buggy"):
        BUNDLES._entries.pop(name, None)


def _checked(**overrides):
    return plan_grid(GridSpec(methods=["toy-checked"], datasets=["toy-data"],
                              overrides={"toy-checked": overrides}))


def test_planning_errors_are_setting_and_data_errors(checked):
    """A refused setting is a SettingError, a bad data file a DataError (both BenchErrors and
    ValueErrors), with the text planning has always printed."""
    assert _checked(steps=3)[0].config == {"steps": 3}
    with pytest.raises(SettingError) as refused:
        _checked(steps=7)
    assert str(refused.value) == "method 'toy-checked': steps must not be 7, got 7"
    with pytest.raises(SettingError) as out_of_range:
        _checked(steps=0)
    assert str(out_of_range.value) == ("bad value for toy-checked.steps in --set "
                                       "toy-checked.steps: steps: expected a value in [1, inf), "
                                       "got 0")
    with pytest.raises(SettingError, match="toy-checked.steps: expected an integer, got 'many'"):
        _checked(steps="many")
    with pytest.raises(SettingError) as unknown:
        _checked(stpes=3)
    assert str(unknown.value) == ("--set toy-checked.stpes: method 'toy-checked': unknown config "
                                  "field(s) stpes for CheckedConfig; did you mean steps? "
                                  "(fields: steps)")
    with pytest.raises(SettingError, match="^unknown metrics profile 'nope' in profile "
                                           "'quick\\+nope'"):
        plan_grid(GridSpec(methods=["toy-checked"], datasets=["toy-data"], profile="quick+nope"))
    with pytest.raises(DataError) as damaged:
        plan_grid(GridSpec(methods=["toy-checked"], datasets=["toy-damaged"]))
    assert str(damaged.value) == "dataset 'toy-damaged': /d/toy.h5: not a toy file"
    with pytest.raises(DataError, match="^dataset 'toy-missing': toy.h5 not found"):
        plan_grid(GridSpec(methods=["toy-checked"], datasets=["toy-missing"]))
    for error in (refused, out_of_range, unknown, damaged):
        assert isinstance(error.value, BenchError) and isinstance(error.value, ValueError)


def test_a_bug_in_a_check_is_not_a_user_error(checked, monkeypatch):
    """A plain ValueError from a config's ``__post_init__`` or a bundle's loader is a bug:
    planning lets it through with its traceback instead of printing it as a user's mistake."""
    def broken(self: CheckedConfig) -> None:
        raise ValueError("internal: shapes disagree")

    monkeypatch.setattr(CheckedConfig, "__post_init__", broken)
    with pytest.raises(ValueError, match="^internal: shapes disagree$") as bug:
        _checked(steps=3)
    assert not isinstance(bug.value, BenchError)
    with pytest.raises(ValueError, match="^index 3 out of range$") as loader_bug:
        plan_grid(GridSpec(methods=["toy-identity"], datasets=["toy-buggy"]))
    assert not isinstance(loader_bug.value, BenchError)


def test_stable_int_differs_by_name():
    assert stable_int("metrics") != stable_int("train")
    assert 0 <= stable_int("x") < 2**64


def test_every_numeric_setting_declares_its_range():
    """Each number a user may set (every method's config, the group VAE's) has a Range, and
    each Range names a field: a value outside it is refused when the grid is planned."""
    from core.config import field_names, field_ranges, numeric_fields
    from distill.group_vae import GroupVAEConfig
    from methods.base import METHODS
    classes = {entry.obj.config_cls for entry in METHODS.entries()} | {GroupVAEConfig}
    for config_cls in classes:
        ranges = field_ranges(config_cls)
        assert set(numeric_fields(config_cls)) <= set(ranges), config_cls.__name__
        assert set(ranges) <= set(field_names(config_cls)), config_cls.__name__
        defaults = config_cls()  # the paper's settings lie inside their ranges
        assert defaults is not None


@pytest.mark.parametrize(("text", "inside", "outside"), [
    ("[1, inf)", [1, 2, 10**9], [0, -1, 0.5]),
    ("(0, 1]", [1e-9, 0.5, 1], [0, 1.0000001, -3]),
    ("[0, 1)", [0, 0.999], [1, -1e-9]),
    ("(-inf, inf)", [-1e300, 0, 1e300], [float("nan")]),
])
def test_range_bounds_are_the_written_interval(text, inside, outside):
    from core.config import Range

    bounds = Range(text)
    assert all(value in bounds for value in inside)
    assert not any(value in bounds for value in outside)
    assert True not in bounds and "1" not in bounds  # only numbers are in a range
