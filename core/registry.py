"""Name -> spec registries (timm style): add a method, metric, flow or dataset by registering it.

Every registry has one shape: ``Registry[Spec]`` maps a name to a typed spec (a frozen
dataclass, or a plain factory) and its one-line description; what a caller needs to know about
an entry is a field of its spec, never free-form metadata. And one rule finds the built-ins: a
registry names the modules whose import registers them (``modules``, and every public module
of ``package`` but ``skip``); they are imported once, lazily, on the first lookup, so no caller
has to remember to import them first and ``register``/``add`` never trigger it.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.errors import SettingError

T = TypeVar("T")


class UnknownNameError(KeyError, SettingError):
    """Raised for a name that no registry entry has; the message suggests close names.

    A SettingError (so also a BenchError and a ValueError): the names looked up are the ones a
    user gives (methods, datasets, metrics, sensors). It stays a KeyError, as it always was."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered spec with its one-line description."""

    name: str
    obj: T
    description: str


class Registry(Generic[T]):
    """A named collection of specs with one-line descriptions and close-name suggestions.

    ``package`` / ``skip`` / ``modules`` name the built-in modules (module docstring); a registry
    whose built-ins are defined beside it names none.
    """

    def __init__(self, kind: str, *, package: str | None = None, skip: tuple[str, ...] = (),
                 modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._package, self._skip, self._modules = package, frozenset(skip), tuple(modules)
        self._loaded = package is None and not modules

    def builtin_modules(self) -> list[str]:
        """The modules whose import registers the built-ins, in import order."""
        names = list(self._modules)
        if self._package is not None:
            package = importlib.import_module(self._package)
            names += [f"{self._package}.{info.name}"
                      for info in pkgutil.iter_modules(package.__path__)
                      if not info.name.startswith("_") and info.name not in self._skip]
        return names

    def load_builtins(self) -> None:
        """Import the built-in modules (once; a lookup calls this first)."""
        if self._loaded:
            return
        self._loaded = True  # set first: a built-in module may look names up while importing
        try:
            for module in self.builtin_modules():
                importlib.import_module(module)
        except BaseException:
            self._loaded = False
            raise

    def register(self, name: str, *, description: str) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name``; a second registration is an error."""

        def decorator(obj: T) -> T:
            self.add(name, obj, description=description)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, description: str) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, obj, description)

    def entry(self, name: str) -> Entry[T]:
        self.load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})"

    def names(self) -> list[str]:
        self.load_builtins()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        for name in self.names():
            yield self._entries[name]

    def __contains__(self, name: object) -> bool:
        self.load_builtins()
        return name in self._entries

    def __len__(self) -> int:
        self.load_builtins()
        return len(self._entries)
