"""``flax.nnx`` for the networks (the check lives in :mod:`opdiff._compat`, in the core layer,
so the engine can use it without importing ``opdiff.nets``)."""

from opdiff._compat import nnx

__all__ = ["nnx"]
