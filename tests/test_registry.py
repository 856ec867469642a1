"""core.registry: one shape (name, typed spec, description) and one rule for the built-ins
(imported once, on the first lookup, never by a registration)."""

from __future__ import annotations

import sys

import pytest

from core.errors import SettingError
from core.registry import Registry, UnknownNameError


def _package(tmp_path, monkeypatch, name: str, modules: dict[str, str]) -> None:
    """A package ``name`` on sys.path whose modules hold the given source."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture
def toy_registry(tmp_path, monkeypatch):
    registry: Registry[int] = Registry("toy", package="regpkg", skip=("base",))
    monkeypatch.setitem(sys.modules, "regpkg_registry", type(sys)("regpkg_registry"))
    sys.modules["regpkg_registry"].REG = registry
    register = "from regpkg_registry import REG\nREG.add({name!r}, {value}, description='d')\n"
    _package(tmp_path, monkeypatch, "regpkg", {
        "alpha": register.format(name="alpha", value=1),
        "beta": register.format(name="beta", value=2),
        "base": "raise RuntimeError('skipped modules are never imported')\n",
        "_private": "raise RuntimeError('private modules are never imported')\n",
    })
    yield registry
    for name in [m for m in sys.modules if m == "regpkg" or m.startswith("regpkg.")]:
        del sys.modules[name]


def test_first_lookup_imports_the_public_modules_once(toy_registry) -> None:
    toy_registry.add("user", 7, description="registered before any lookup")
    assert "regpkg.alpha" not in sys.modules  # add never loads the built-ins
    assert toy_registry.names() == ["alpha", "beta", "user"]
    assert toy_registry.get("beta") == 2 and toy_registry.entry("user").description.startswith(
        "registered")
    assert toy_registry.builtin_modules() == ["regpkg.alpha", "regpkg.beta"]
    del sys.modules["regpkg.alpha"]
    assert len(toy_registry) == 3 and "regpkg.alpha" not in sys.modules  # not imported again
    with pytest.raises(UnknownNameError, match=r"unknown toy 'alpah'; did you mean alpha\?") as err:
        toy_registry.get("alpah")
    # a name the user gave: one error line from the CLI; still a KeyError and a ValueError
    assert isinstance(err.value, SettingError) and isinstance(err.value, KeyError)
    with pytest.raises(ValueError, match="toy 'alpha' is already registered"):
        toy_registry.add("alpha", 3, description="again")


def test_a_registry_with_explicit_modules_and_one_without_builtins(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "regmod_registry", type(sys)("regmod_registry"))
    listed: Registry[str] = Registry("listed", modules=("regmod.only",))
    sys.modules["regmod_registry"].REG = listed
    _package(tmp_path, monkeypatch, "regmod", {
        "only": "from regmod_registry import REG\nREG.add('x', 'spec', description='d')\n",
        "other": "raise RuntimeError('not listed: never imported')\n"})
    try:
        assert "x" in listed and listed.names() == ["x"]
    finally:
        for name in [m for m in sys.modules if m == "regmod" or m.startswith("regmod.")]:
            del sys.modules[name]
    plain: Registry[str] = Registry("plain")
    assert plain.builtin_modules() == [] and plain.names() == []
