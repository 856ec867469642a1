"""disentangle-bench: grids of direction-discovery methods x datasets x seeds, scored and compared.

Kept import-free so that ``core.registry`` can be used by the leaf packages.
"""

__version__ = "0.1.0"
