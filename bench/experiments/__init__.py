"""Experiments built on the grid machinery (the L2-mask ablation)."""
