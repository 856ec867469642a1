"""disentangle-bench: grids of direction-discovery methods x datasets x seeds, scored and compared.

Kept free of heavy imports so that ``core.registry`` can be used by the leaf packages; it caps
the CPU instruction set before any library dispatches a kernel (``core.cpu_isa``) and makes idle
OpenMP threads sleep before the runtime is loaded (``core.thread_wait``).
"""

from core.cpu_isa import pin_cpu_isa
from core.thread_wait import pin_passive_waiting

pin_cpu_isa()
pin_passive_waiting()

__version__ = "0.1.0"
