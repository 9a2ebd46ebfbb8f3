"""Argument checks shared by the public entry points of opdiff (no imports from the rest of
opdiff, so any module may use them).

Every check raises a ``ValueError`` or ``TypeError`` whose message names the argument, what was
expected and what was given. Value checks (NaN, ±inf, ranges) run only on concrete values;
traced values (inside ``jax.jit``, ``vmap``, ``grad``) pass unchecked, so the checked functions
stay traceable.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

__all__ = [
    "check_increasing_grid",
    "check_finite_array",
    "check_finite_scalar",
    "check_images",
    "check_labels",
    "check_positive_array",
    "check_positive_int",
    "check_real_array",
    "is_traced",
    "scalar_or_array",
]


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


# --- scalars, arrays and counts at the public API boundary --------------------------------------
#
# Value checks run only on concrete values. Inside ``jax.jit``/``vmap``/``grad`` an argument is a
# Tracer and its value is unknown at trace time, so it passes unchecked (shape checks, where a
# caller has them, still apply). A large concrete ``jax.Array`` is reduced where it lives and
# only a flag comes back to the host; the offending values are fetched only for the message.

_SMALL = 1024  # concrete jax arrays up to this size are checked on the host

_TRACED = (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError,
           jax.errors.TracerBoolConversionError)


def is_traced(x) -> bool:
    """True when ``x`` is an abstract value (inside ``jit``, ``vmap``, ``grad``, ...)."""
    return isinstance(x, jax.core.Tracer)


def _interval(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def _outside(v, low, high, low_open, high_open, tol):
    """Mask of entries of ``v`` (NumPy or jax) outside the closed/open interval, widened by
    ``tol`` on each side; NaN counts as outside."""
    ok = v == v  # False at NaN
    if low is not None:
        ok = ok & ((v > low - tol) if low_open else (v >= low - tol))
    if high is not None:
        ok = ok & ((v < high + tol) if high_open else (v <= high + tol))
    return ~ok


def check_finite_scalar(name: str, value, *, low: float | None = None, high: float | None = None,
                        low_open: bool = False, high_open: bool = False, tol: float = 0.0,
                        what: str | None = None):
    """``value`` as a Python ``float``: a finite real scalar in the given interval.

    Args:
        name: the argument's name, for the message.
        low, high: bounds (``None``: unbounded on that side); ``low_open``/``high_open`` make
            them strict.
        tol: slack added to each bound before comparing (for rounded times); the message shows
            the bounds as given.
        what: the expectation in words, verb included, as in ``"{name} must {what}, got ..."``
            (default: ``"be a finite real number"`` and the interval).

    Returns:
        ``float(value)``, or ``value`` itself when it is traced (unchecked).

    Raises:
        TypeError: for a ``bool`` or anything that is not a real number (or a size-1 array).
        ValueError: for NaN, ±inf or a value outside the interval.
    """
    if is_traced(value):
        return value
    expect = what or " ".join(s for s in ("be a finite real number",
                                          _interval(low, high, low_open, high_open)) if s)
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must {expect}, got {type(value).__name__} {value!r}")
    dtype = getattr(value, "dtype", None)
    if dtype is not None and not (jnp.issubdtype(dtype, jnp.integer)
                                  or jnp.issubdtype(dtype, jnp.floating)):
        raise TypeError(f"{name} must {expect}, got dtype {dtype}")
    if dtype is not None and getattr(value, "size", 1) != 1:
        raise TypeError(f"{name} must {expect} (a scalar), got shape {tuple(value.shape)}")
    try:
        v = float(value)
    except _TRACED:
        return value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must {expect}, got {type(value).__name__} {value!r}") from None
    if not math.isfinite(v) or _outside(np.float64(v), low, high, low_open, high_open, tol):
        raise ValueError(f"{name} must {expect}, got {v!r}")
    return v


def check_finite_array(name: str, x, *, low: float | None = None, high: float | None = None,
                       low_open: bool = False, high_open: bool = False, tol: float = 0.0,
                       what: str | None = None):
    """Check that a concrete array (or scalar) is real, has no NaN/±inf entry and lies in the
    given interval; return ``x`` unchanged (traced values pass unchecked).

    Args: as :func:`check_finite_scalar`.

    Raises:
        TypeError: for a non-numeric (or, with bounds, complex) dtype.
        ValueError: naming the first offending entry, when one is NaN, ±inf or out of range.
    """
    if is_traced(x):
        return x
    bounded = low is not None or high is not None
    arr = x if isinstance(x, (jax.Array, np.ndarray)) else np.asarray(x)
    dt = arr.dtype
    exact = dt == np.bool_ or jnp.issubdtype(dt, jnp.integer)
    if not (exact or jnp.issubdtype(dt, jnp.floating)
            or (not bounded and jnp.issubdtype(dt, jnp.complexfloating))):
        raise TypeError(f"{name} must be a real numeric array, got dtype {dt}")
    if exact and not bounded:
        return x  # always finite
    if isinstance(arr, jax.Array) and arr.size <= _SMALL:
        arr = np.asarray(arr)  # a few numbers: one small copy beats device reductions
    try:
        if isinstance(arr, jax.Array):
            with jax.ensure_compile_time_eval():
                bad = ~jnp.isfinite(arr)
                if bounded:
                    bad = bad | _outside(arr, low, high, low_open, high_open, tol)
                any_bad = bool(jnp.any(bad))
        else:
            bad = ~np.isfinite(arr)
            if bounded:
                with np.errstate(invalid="ignore"):
                    bad = bad | _outside(arr, low, high, low_open, high_open, tol)
            any_bad = bool(bad.any())
    except _TRACED:
        return x
    if not any_bad:
        return x
    arr, bad = np.asarray(arr), np.asarray(bad)
    expect = what or ("be finite" + (f" and {_interval(low, high, low_open, high_open)}"
                                     if bounded else ""))
    idx = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
    where = f" at index [{', '.join(map(str, idx))}]" if arr.ndim else ""
    first = arr[idx].item()
    count = f" ({int(bad.sum())} of {arr.size} entries)" if arr.size > 1 else ""
    raise ValueError(f"{name} must {expect}, got {first!r}{where}{count}")


def check_positive_int(name: str, value, *, minimum: int = 1) -> int:
    """``value`` as an ``int >= minimum``: a Python or NumPy integer, never a ``bool`` or a
    float (even an integral one).

    Raises:
        ValueError: otherwise, naming the argument, the bound and the value given.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int >= {minimum}, got "
                         f"{type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_increasing_grid(name: str, grid) -> np.ndarray:
    """``grid`` as a float64 1-D array of at least two strictly increasing points, or a
    ``ValueError`` naming it."""
    x = np.asarray(grid, np.float64)
    if x.ndim != 1 or x.size < 2 or np.any(np.diff(x) <= 0):
        raise ValueError(f"{name} must be a strictly increasing 1-D array, got shape {x.shape}")
    return x


# --- host-side float64 arrays, for the closed-form (NumPy) bounds and divergences --------------
#
# The formulas of approx/bounds, diffusion/laws, diffusion/bound_shapes and metrics work on
# float64 NumPy copies of their arguments and broadcast them; ``inf`` is a legitimate value for
# some of them (an infinite bandwidth, a diverged law), so finiteness is the caller's choice.


def check_real_array(name: str, x) -> np.ndarray:
    """``x`` as a float64 NumPy array of real numbers (booleans and integers are converted).

    Raises:
        TypeError: for a non-numeric (object, string) or complex ``x``, naming the argument.
    """
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a real number or array of them, got {x!r}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got a complex value")
    return arr.astype(np.float64)


def check_positive_array(name: str, x, *, allow_zero: bool = False,
                            allow_inf: bool = False) -> np.ndarray:
    """``x`` as a float64 NumPy array whose entries are all ``> 0`` (``>= 0`` with
    ``allow_zero``), never NaN, and finite unless ``allow_inf``.

    Raises:
        TypeError: as :func:`check_real_array`.
        ValueError: ``"{name} must not be NaN"``, ``"{name} must be finite"`` or
            ``"{name} must be > 0"`` (``">= 0"``), each with the value given.
    """
    arr = check_real_array(name, x)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not be NaN, got {x!r}")
    if not allow_inf and np.any(np.isinf(arr)):
        raise ValueError(f"{name} must be finite, got {x!r}")
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {rel}, got {x!r}")
    return arr


def scalar_or_array(arr: np.ndarray, *inputs):
    """``arr`` as a Python ``float`` when every one of ``inputs`` is a scalar, else ``arr``
    itself: a broadcast formula returns what it was given (a number for numbers, an array for
    a sweep)."""
    return float(arr) if all(np.ndim(v) == 0 for v in inputs) else arr
