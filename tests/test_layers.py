"""Import layers: the import-linter contract in pyproject.toml holds, and core imports nothing of
the project (so every package may use it without a cycle)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {"datasets", "models", "metrics", "methods", "distill", "training", "bench"}


def _lint_imports() -> str | None:
    """The lint-imports command: on PATH, or beside this interpreter (an unactivated venv)."""
    found = shutil.which("lint-imports")
    if found:
        return found
    beside = Path(sys.executable).parent / "lint-imports"
    return str(beside) if beside.is_file() else None


def test_import_layers_contract_holds():
    command = _lint_imports()
    if command is None:
        pytest.skip("lint-imports is not installed (pip install import-linter)")
    done = subprocess.run([command, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _imported_top_names(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, function-level ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_project_package():
    files = sorted((REPO / "core").rglob("*.py"))
    assert files, "expected the core package in core/"
    offending = {
        str(path.relative_to(REPO)): sorted(_imported_top_names(path) & PROJECT_PACKAGES)
        for path in files
    }
    assert {k: v for k, v in offending.items() if v} == {}
