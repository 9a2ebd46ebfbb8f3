"""Argument checks shared by the image models, the trainer and the guidance (no imports from
the rest of opdiff, so any module may use them)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

__all__ = ["check_images", "check_labels"]


def check_images(name: str, x, shape: tuple[int, ...]) -> Array:
    """``x`` as a floating array ``[B, *shape]``, or a ``ValueError``/``TypeError`` naming it."""
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    if not (jnp.issubdtype(x.dtype, jnp.floating)):
        raise TypeError(f"{name} must be floating-point images, got dtype {x.dtype} (convert "
                        f"integer images with x.astype('float32') / max_value)")
    if x.ndim != 1 + len(shape) or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have shape [batch, {', '.join(map(str, shape))}], got "
                         f"{tuple(x.shape)}")
    return jnp.asarray(x)


def check_labels(name: str, y, n: int, n_classes: int | None, *, allow_null: bool = False):
    """``y`` as int32 ``[n]`` with values in ``[0, n_classes)`` (``[0, n_classes]`` with the
    no-label token when ``allow_null``), or a clear error. Traced values skip the range check."""
    if n_classes is None:
        raise ValueError(f"{name} were given but the model is unconditional (n_classes=None)")
    if not hasattr(y, "dtype"):
        y = np.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(f"{name} must be integer class labels, got dtype {y.dtype}")
    if y.ndim == 0:
        y = jnp.broadcast_to(y, (n,))
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape [{n}] (one label per example), got "
                         f"{tuple(y.shape)}")
    hi = n_classes if allow_null else n_classes - 1
    try:
        yc = np.asarray(y)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        yc = None
    if yc is not None and yc.size and (yc.min() < 0 or yc.max() > hi):
        raise ValueError(f"{name} must be in [0, {hi}]"
                         + (f" ({n_classes} = no label)" if allow_null else "")
                         + f", got values in [{yc.min()}, {yc.max()}]")
    return jnp.asarray(y, jnp.int32)
