"""One CPU instruction set for every run, so that a seed gives the same numbers on as many x86
hosts as the libraries allow.

PyTorch, oneDNN and MKL pick their kernels by the CPU's instruction set, and AVX-512 kernels sum
in another order than AVX2 ones: on the same seed, a β-VAE trained on an AVX-512 machine ended
with other weights than on an AVX2 machine (quick-profile DCI 0.15 vs 0.23). So all three are
capped at AVX2, which every x86 machine the suite targets has. The cap alone was not enough for
MKL: on Xeon hosts it still picked other GEMM blockings than on the AMD host of the baselines
(an encoder's codes even depended on the batch size), so MKL also runs in its strict
conditional-numerical-reproducibility mode on the AVX2 code path (``MKL_CBWR=AVX2,STRICT``).
What stays host-dependent is not pinned down (oneDNN, which runs the convolutions, has no such
mode): trained weights still differ in their last bits between CPU models, which short training
turns into a spread like the one between seeds; results record the CPU model for that reason.

A variable already set in the environment wins, so ``ATEN_CPU_CAPABILITY=default python -m bench
run`` (or ``avx512``) chooses otherwise. The caps are read when the libraries first dispatch a
kernel, so ``pin_cpu_isa`` must run before any tensor work (``bench`` and the tests call it on
import).
"""

from __future__ import annotations

import os
import platform

PINNED_ISA: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "MKL_CBWR": "AVX2,STRICT",
}


def pin_cpu_isa() -> dict[str, str]:
    """Set the caps of ``PINNED_ISA`` where the environment leaves them unset (x86 only);
    return the values in force, for the provenance of a result."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        for name, value in PINNED_ISA.items():
            os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in PINNED_ISA if name in os.environ}


def _cpuinfo_field(name: str, cpuinfo: str) -> str:
    """The first non-empty ``name : value`` of /proc/cpuinfo, or "" where there is none."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == name and value.strip():
                    return value.strip()
    except OSError:
        pass
    return ""


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; else what ``platform`` knows), recorded with
    every result: trained numbers still differ in their last bits between CPU models."""
    return (_cpuinfo_field("model name", cpuinfo) or platform.processor() or platform.machine()
            or "unknown")


# the instruction-set extensions that change which kernels the libraries could pick
VECTOR_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_features(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """Which of ``VECTOR_FEATURES`` the CPU has (empty where /proc/cpuinfo is absent)."""
    flags = set(_cpuinfo_field("flags", cpuinfo).split())
    return [name for name in VECTOR_FEATURES if name in flags]
