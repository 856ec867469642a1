"""One CPU instruction set for every run, so that a seed gives the same numbers on every x86 host.

PyTorch, oneDNN and MKL pick their kernels by the CPU's instruction set, and AVX-512 kernels sum
in another order than AVX2 ones: on the same seed, a β-VAE trained on an AVX-512 machine ends
with other weights than on an AVX2 machine (quick-profile DCI 0.15 vs 0.23), which would make
committed baselines depend on the machine CI happens to get. Capping all three at AVX2 (which
every x86 machine the suite targets has) makes an AVX-512 machine compute as an AVX2 one does;
on an AVX2 machine it changes nothing. A variable already set in the environment wins, so
``ATEN_CPU_CAPABILITY=default python -m bench run`` (or ``avx512``) chooses otherwise.

The caps are read when the libraries first dispatch a kernel, so ``pin_cpu_isa`` must run
before any tensor work (``bench`` and the tests call it on import).
"""

from __future__ import annotations

import os
import platform

PINNED_ISA: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}


def pin_cpu_isa() -> dict[str, str]:
    """Set the caps of ``PINNED_ISA`` where the environment leaves them unset (x86 only);
    return the values in force, for the provenance of a result."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        for name, value in PINNED_ISA.items():
            os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in PINNED_ISA if name in os.environ}
