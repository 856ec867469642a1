"""The CPU instruction-set caps that make a seed give the same numbers on AVX2 and AVX-512 hosts."""

from __future__ import annotations

import platform

import pytest
import torch

from core import cpu_isa
from core.cpu_isa import PINNED_ISA, pin_cpu_isa


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 only")
def test_the_suite_runs_on_avx2_kernels() -> None:
    for name, value in PINNED_ISA.items():
        assert pin_cpu_isa()[name] == value
    assert torch.backends.cpu.get_cpu_capability() == "AVX2"


def test_a_value_in_the_environment_wins(monkeypatch) -> None:
    monkeypatch.setattr(cpu_isa.platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    caps = pin_cpu_isa()
    assert caps["ATEN_CPU_CAPABILITY"] == "default"
    assert caps["ONEDNN_MAX_CPU_ISA"] == "AVX2"


def test_other_architectures_are_left_alone(monkeypatch) -> None:
    monkeypatch.setattr(cpu_isa.platform, "machine", lambda: "aarch64")
    for name in PINNED_ISA:
        monkeypatch.delenv(name, raising=False)
    assert pin_cpu_isa() == {}
