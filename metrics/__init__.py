"""Disentanglement and discovery metrics: pure functions on arrays plus thin samplers."""

from metrics.info import METRIC_INFO, MetricInfo

__all__ = ["METRIC_INFO", "MetricInfo"]
