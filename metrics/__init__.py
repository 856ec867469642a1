"""Disentanglement and discovery metrics: pure functions on arrays, registered with their
metadata (:mod:`metrics.registry`) and fed by one sample bank (:mod:`metrics.sampling`)."""
