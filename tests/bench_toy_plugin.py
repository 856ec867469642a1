"""Importing this module registers the bench test toys (``--plugins bench_toy_plugin``)."""

from bench_toys import register_toys

register_toys()
