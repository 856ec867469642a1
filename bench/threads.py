"""The torch thread count of a cell, fixed whatever runs it, and how many cells run at once.

The number of intra-op threads (torch's, and the BLAS / OpenMP pools under numpy and sklearn)
changes the order of floating-point reductions, hence trained weights, so it is part of what
determines a cell's numbers. Every cell runs on the same count (``DEFAULT_THREADS`` unless
``--threads`` / ``$BENCH_THREADS`` says otherwise), serially, in a process pool or on SLURM. A
count other than ``UNMARKED_THREADS`` enters the cell id and the stage cache keys; that one does
not, so ids and caches made before the count was part of them stay valid.

The default layout is one thread a cell and as many cells at once as there are usable cores
(``default_jobs``): the suite's cells are small convolutional networks, which on one thread use
about a fifth less CPU than on two, and a cell on one thread hardly notices a busy neighbour
(docs/performance.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from core.errors import BenchError

# Torch threads a cell, unless --threads or $BENCH_THREADS says otherwise.
DEFAULT_THREADS = 1
THREADS_ENV = "BENCH_THREADS"
# The count that adds nothing to a cell id: the default when the count became fixed (2), so the
# ids of cells made then on it stay what they were.
UNMARKED_THREADS = 2
# Cells at once when --jobs is not given: $BENCH_JOBS, else ``default_jobs``.
JOBS_ENV = "BENCH_JOBS"
# Memory a cell may need at its peak (docs/performance.md: under 2 GB on the largest generators):
# the default layout starts no more cells than the machine's memory holds at that size.
CELL_MEMORY_BYTES = 2 * 1024**3


def _positive_count(value: int | str | None, option: str, env: str,
                    default: Callable[[], int], meaning: str) -> int:
    """``value`` (the command-line ``option``), else ``$env``, else ``default()``; anything but
    a positive integer is a BenchError naming where it came from and what it means."""
    origin = option
    if value is None:
        value = os.environ.get(env) or None
        origin = f"${env}"
    if value is None:
        return default()
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise BenchError(f"bad {origin} {value!r}: expected a positive integer ({meaning})")
    return int(text)


def resolve_threads(value: int | str | None = None) -> int:
    """The per-cell thread count: ``value`` (``--threads``), else ``$BENCH_THREADS``, else
    ``DEFAULT_THREADS``."""
    return _positive_count(value, "--threads", THREADS_ENV, lambda: DEFAULT_THREADS,
                           f"torch threads per cell, default {DEFAULT_THREADS}")


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


def physical_memory() -> int | None:
    """The machine's memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def default_jobs(threads: int, cores: int | None = None, memory: int | None = None) -> int:
    """Cells at once when neither --jobs nor $BENCH_JOBS says: as many as ``cores`` (default
    ``usable_cores()``) hold cells of ``threads`` threads, and ``memory`` (default
    ``physical_memory()``) cells of ``CELL_MEMORY_BYTES``; at least one."""
    cores = usable_cores() if cores is None else cores
    memory = physical_memory() if memory is None else memory
    jobs = cores // threads
    if memory:
        jobs = min(jobs, memory // CELL_MEMORY_BYTES)
    return max(1, jobs)


def resolve_jobs(value: int | str | None, threads: int) -> int:
    """Cells at once: ``value`` (``--jobs``), else ``$BENCH_JOBS``, else ``default_jobs``."""
    return _positive_count(value, "--jobs", JOBS_ENV, lambda: default_jobs(threads),
                           "cells run at once; default: the usable cores / --threads")


def threads_identity(threads: int) -> dict[str, Any]:
    """What the thread count adds to a cell id or stage key: nothing for ``UNMARKED_THREADS``."""
    return {} if threads == UNMARKED_THREADS else {"torch_threads": threads}


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
