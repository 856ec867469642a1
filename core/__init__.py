"""The bottom layer: registries, the user-facing error, stable hashes and atomic file writes.

It imports no other package of the project, so every layer above may use it.
"""
