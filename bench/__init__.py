"""disentangle-bench: grids of direction-discovery methods x datasets x seeds, scored and compared.

Kept free of heavy imports so that ``core.registry`` can be used by the leaf packages; it caps
the CPU instruction set before any library dispatches a kernel (``core.cpu_isa``).
"""

from core.cpu_isa import pin_cpu_isa

pin_cpu_isa()

__version__ = "0.1.0"
