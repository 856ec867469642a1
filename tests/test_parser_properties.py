"""Property tests of the grid-file and ``--set`` parsers and the override check: whatever the
input, the only exception is the intended one-line BenchError (SettingError for a field value),
and whatever they accept can be hashed into a cell id."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.grid import GRID_KEYS, GridSpec, load_grid_file, parse_set_options, set_option_origins
from bench.planning.plan import check_overrides
from core.config import check_field_value, field_names
from core.errors import BenchError, SettingError
from core.hashing import canonical_json
from methods.base import METHODS

METHOD_NAMES = ["beta-vae", "factor-vae", "sefa", "ganspace"]
FIELDS = sorted({name for m in METHOD_NAMES
                 for name in field_names(METHODS.entry(m).obj.config_cls)})
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
value_texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["1.5", "true", "nan", "inf", "-inf", "abc", "[0.9, 0.99]", "[1]", "none",
                     "[[1]]", "{a = 1}", "1979-05-27", "'x'", "3", "0", "-1", "1e400", ""]),
    values.map(lambda v: json.dumps(v, allow_nan=True)),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=10))
scopes = st.one_of(st.sampled_from(METHOD_NAMES), st.text(max_size=8))
set_options = st.one_of(
    st.text(max_size=40),
    st.builds(lambda k, v: f"{k}={v}", keys, value_texts),
    st.builds(lambda s, k, v: f"{s}.{k}={v}", scopes, keys, value_texts),
)


def _check_hashable(checked: dict[str, dict[str, Any]]) -> None:
    for method, fields in checked.items():
        canonical_json(fields)
        config_cls = METHODS.entry(method).obj.config_cls
        for name, value in fields.items():
            assert check_field_value(config_cls, name, value) == value  # idempotent


@SETTINGS
@given(st.lists(set_options, max_size=5))
def test_set_options_raise_only_bench_errors(options):
    try:
        overrides = parse_set_options(options)
        origins = set_option_origins(options)
    except BenchError as err:
        assert "\n" not in str(err)
        return
    grid = GridSpec(methods=list(METHOD_NAMES), overrides=overrides, origins=origins)
    try:
        checked = check_overrides(grid, METHODS)
    except BenchError as err:
        assert str(err).strip()
        return
    _check_hashable(checked)


@SETTINGS
@given(st.sampled_from(METHOD_NAMES), st.sampled_from(FIELDS), values)
def test_field_values_raise_only_setting_errors(method, name, value):
    config_cls = METHODS.entry(method).obj.config_cls
    try:
        converted = check_field_value(config_cls, name, value)
    except SettingError as err:
        assert "\n" not in str(err)
        return
    canonical_json(converted)
    if isinstance(converted, float):
        assert math.isfinite(converted)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def _toml_key(key: str) -> str:
    return json.dumps(key)


grid_docs = st.builds(
    lambda top, shared, tables: (
        "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in top.items())
        + ("[set]\n" + "".join(f"{_toml_key(k)} = {_toml_value(v)}\n"
                               for k, v in shared.items()) if shared else "")
        + "".join(f"[set.{_toml_key(m)}]\n" + "".join(f"{_toml_key(k)} = {_toml_value(v)}\n"
                                                      for k, v in fields.items())
                  for m, fields in tables.items())),
    st.dictionaries(st.one_of(st.sampled_from([k for k in GRID_KEYS if k != "set"]),
                              st.text(max_size=6)), values, max_size=4),
    st.dictionaries(keys, values, max_size=3),
    st.dictionaries(st.sampled_from(METHOD_NAMES), st.dictionaries(keys, values, max_size=3),
                    max_size=2),
)
grid_files = st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                       grid_docs.map(str.encode))


@SETTINGS
@given(grid_files)
@example(b'"\\n"=0')  # an unknown key holding a newline once broke the one-line message
def test_grid_files_raise_only_bench_errors(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grid.toml"
        path.write_bytes(content)
        try:
            grid = load_grid_file(path)
        except BenchError as err:
            assert str(path) in str(err) and "\n" not in str(err)
            return
    if grid.methods is not None:
        grid.methods = [m for m in grid.methods if m in METHODS] or None
    grid.overrides = {scope: fields for scope, fields in grid.overrides.items()
                      if scope == "*" or scope in METHODS}
    try:
        checked = check_overrides(grid, METHODS)
    except BenchError as err:
        assert str(err).strip()
        return
    _check_hashable(checked)


@pytest.mark.parametrize("text", ["1\nsteps = 2", "[1, 2", "'open", "1 # note"])
def test_set_value_is_one_literal_or_text(text):
    value = parse_set_options([f"steps={text}"])["*"]["steps"]
    assert value == (1 if text == "1 # note" else text)
