"""Import ``flax.nnx`` with a readable error on a known-bad jax/flax pair.

flax 0.12.8 and 0.12.9 reference ``jax.experimental.hijax.HiPrimitive``, which jax 0.11.2
renamed; ``import flax.nnx`` then fails with an ``AttributeError`` that does not say what to do.
"""

from __future__ import annotations

try:
    from flax import nnx
except AttributeError as err:  # pragma: no cover - depends on the installed versions
    import flax
    import jax

    raise ImportError(
        f"flax {flax.__version__} cannot import flax.nnx on jax {jax.__version__}: "
        "flax 0.12.8-0.12.9 are broken on jax >= 0.11.2. Install flax >= 0.12.10 "
        "(pip install 'flax>=0.12.10')."
    ) from err

__all__ = ["nnx"]
