"""The CPU instruction-set caps that make a seed give the same numbers on AVX2 and AVX-512 hosts."""

from __future__ import annotations

import platform

import pytest
import torch

from core import cpu_isa
from core.cpu_isa import PINNED_ISA, cpu_features, cpu_model, pin_cpu_isa


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


def test_cpu_model_is_read_from_cpuinfo(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n"
                       "model name\t: AMD EPYC 7B13\nflags\t\t: avx2\n")
    assert cpu_model(str(cpuinfo)) == "AMD EPYC 7B13"
    assert cpu_features(str(cpuinfo)) == ["avx2"]
    cpuinfo.write_text("flags\t\t: fpu avx512f amx_tile avx2 fma avx512_bf16x\n")
    assert cpu_features(str(cpuinfo)) == ["avx2", "fma", "avx512f", "amx_tile"]


def test_cpu_model_falls_back_without_cpuinfo(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cpu_isa.platform, "processor", lambda: "")
    monkeypatch.setattr(cpu_isa.platform, "machine", lambda: "arm64")
    assert cpu_model(str(tmp_path / "absent")) == "arm64"
    (tmp_path / "empty").write_text("model name\t:\n")
    assert cpu_model(str(tmp_path / "empty")) == "arm64"
    assert cpu_features(str(tmp_path / "absent")) == []
