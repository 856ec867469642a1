"""Direction-discovery methods and VAE baselines, registered by name (see ``methods.base``)."""

from methods.base import METHODS, Encoder, MethodSpec, method_spec, register_method

__all__ = ["METHODS", "Encoder", "MethodSpec", "method_spec", "register_method"]
