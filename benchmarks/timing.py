"""The one timer the benchmarks share: best wall time of a call after a warm-up, measured under
the instruction-set caps every ``bench`` command runs under."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core.cpu_isa import pin_cpu_isa


def cap_like_bench() -> str:
    """Cap the instruction set as ``bench`` does (``core.cpu_isa``: AVX2 kernels on x86), so a
    benchmark times the kernels a ``bench`` command runs; call it before any tensor work. A cap
    already set in the environment wins (``ATEN_CPU_CAPABILITY=avx512 ONEDNN_MAX_CPU_ISA=ALL
    MKL_ENABLE_INSTRUCTIONS=AVX512 MKL_CBWR=AUTO`` times the uncapped kernels). Returns the caps
    in force, for the benchmark's header line."""
    caps = pin_cpu_isa()
    return ", ".join(f"{name}={value}" for name, value in caps.items()) or "no caps"


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn``, after one untimed warm-up call
    (the minimum is the least disturbed by other load on the machine)."""
    fn()
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
