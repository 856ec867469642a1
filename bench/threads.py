"""The torch thread count of a cell: fixed per cell, whatever runs it.

The number of intra-op threads (torch's, and the BLAS / OpenMP pools under numpy and sklearn)
changes the order of floating-point reductions, hence trained
weights, so it is part of what determines a cell's numbers. Every cell runs on the same count
(``DEFAULT_THREADS`` unless ``--threads`` / ``$BENCH_THREADS`` says otherwise), serially, in a
process pool or on SLURM. A count other than the default enters the cell id and the stage cache
keys; the default does not, so ids and caches made before the count was fixed stay valid.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from core.errors import BenchError

# The count the committed baselines (results/baselines/) were produced with.
DEFAULT_THREADS = 2
THREADS_ENV = "BENCH_THREADS"


def resolve_threads(value: int | str | None = None) -> int:
    """The per-cell thread count: ``value`` (``--threads``), else ``$BENCH_THREADS``, else
    ``DEFAULT_THREADS``; anything but a positive integer is a BenchError naming its origin."""
    origin = "--threads"
    if value is None:
        value = os.environ.get(THREADS_ENV) or None
        origin = f"${THREADS_ENV}"
    if value is None:
        return DEFAULT_THREADS
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise BenchError(f"bad {origin} {value!r}: expected a positive integer (torch threads "
                         f"per cell, default {DEFAULT_THREADS})")
    return int(text)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's share,
    not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def oversubscription_warning(jobs: int, threads: int, cores: int | None = None) -> str | None:
    """One warning line when ``jobs`` cells of ``threads`` threads each want more cores than
    ``cores`` (default: ``usable_cores()``), else None. Oversubscribed threads wait for each other
    at every parallel region, so such a run is slower than a smaller layout; the cells' numbers
    do not change, so the run goes on."""
    cores = usable_cores() if cores is None else cores
    if jobs * threads <= cores:
        return None
    return (f"warning: --jobs {jobs} x --threads {threads} = {jobs * threads} threads on "
            f"{cores} usable core(s): the threads wait for each other (slower, same numbers); "
            f"keep --jobs x --threads <= {cores}")


def threads_identity(threads: int) -> dict[str, Any]:
    """What the thread count adds to a cell id or stage key: nothing for the default."""
    return {} if threads == DEFAULT_THREADS else {"torch_threads": threads}


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block on ``threads`` torch intra-op threads and as many BLAS / OpenMP threads
    (numpy, scipy and sklearn reductions depend on them too), then restore the previous counts."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)
