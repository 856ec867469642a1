"""Idle OpenMP threads sleep instead of spinning, so a cell on a busy machine costs its share.

By default GNU OpenMP (the runtime under PyTorch, MKL and numpy's BLAS here) keeps a thread that
waits for the next parallel region spinning on its core for a while. On a machine that is doing
something else (a second ``bench run``, a browser, a background grid), the spinning thread takes
the core from the thread the region waits for, and every region pays: two threads beside one
busy core ran a small conv training loop 5-7x slower in wall time and burnt 5x the CPU time of
the same loop with sleeping waiters (``benchmarks/thread_wait.py``). ``OMP_WAIT_POLICY=PASSIVE``
makes waiting threads sleep. It changes when threads wait, not how work is split, so the numbers
are the same to the last bit (checked in the tests). The runtime reads the variable when it is
loaded, so ``pin_passive_waiting`` must run before torch is imported (``bench`` and the tests call
it on import); a value already in the environment wins (``OMP_WAIT_POLICY=ACTIVE`` restores
spinning, e.g. on a machine given to one run).
"""

from __future__ import annotations

import os

WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
WAIT_POLICY = "PASSIVE"


def pin_passive_waiting() -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it; return the value in
    force, for the provenance of a result."""
    return os.environ.setdefault(WAIT_POLICY_ENV, WAIT_POLICY)
