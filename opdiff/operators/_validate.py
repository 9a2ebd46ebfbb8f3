"""Argument checks shared by the operator solvers (public entry points only).

Every check raises ``ValueError`` naming the argument, what was expected and what was given.
Value checks (NaN, monotone grid, sign of a parameter) run only on concrete values: under
``jax.jit`` / ``jax.vmap`` the arguments are tracers and only their shapes are checked.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np


def is_tracer(x) -> bool:
    """True when ``x`` is an abstract value (inside ``jit``, ``vmap``, ``grad``...)."""
    return isinstance(x, jax.core.Tracer)


def float_dtype(*arrays):
    """The floating dtype the solvers compute in: float32 by default, float64 under x64.

    Float inputs keep their precision (a float32 array stays float32 under x64); integer and
    bool inputs are promoted to the default float dtype.
    """
    with jax.numpy_dtype_promotion("standard"):  # a choice of dtype, not a silent mix
        return jnp.result_type(*arrays, float)


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` must be an ``int`` (not a ``bool``) and ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_real(name: str, value, *, low: float | None = None, strict: bool = False):
    """``value`` must be a finite real scalar, ``> low`` (``strict``) or ``>= low``.

    Tracers pass unchecked (apart from being scalar), so the solvers stay traceable in
    their float parameters.
    """
    if is_tracer(value):
        if jnp.ndim(value) != 0:
            raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(value)}")
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite real number, got {value!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if low is not None and (v <= low if strict else v < low):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} {low}, got {value!r}")
    return value


def check_batch(u, name: str = "u", *, min_points: int = 2, size: str = "N"):
    """``u`` must be a 2-D batch ``(n_funcs, size)`` with ``n_funcs >= 1``, ``size >= min_points``
    and (when concrete) no NaN or infinite entry. Returns ``jnp.asarray(u)``."""
    u = jnp.asarray(u)
    if u.ndim != 2:
        raise ValueError(
            f"{name} must be a batch of shape (n_funcs, {size}) (ndim 2), "
            f"got shape {u.shape} (ndim {u.ndim})"
        )
    if u.shape[0] < 1:
        raise ValueError(
            f"{name} must hold at least one function (n_funcs >= 1), got shape {u.shape}"
        )
    if u.shape[1] < min_points:
        raise ValueError(
            f"{name} must have {size} >= {min_points} points per function, got shape {u.shape}"
        )
    if not jnp.issubdtype(u.dtype, jnp.floating) and not jnp.issubdtype(u.dtype, jnp.integer):
        raise ValueError(f"{name} must be a real (float or int) array, got dtype {u.dtype}")
    if not is_tracer(u):
        # Eager even inside an enclosing jit (u may be a closed-over constant there); the
        # reduction runs where u lives, only the flag (and row flags on failure) come back.
        with jax.ensure_compile_time_eval():
            bad_rows = jnp.any(~jnp.isfinite(u), axis=1)
            any_bad = bool(jnp.any(bad_rows))
        if any_bad:
            rows = np.flatnonzero(np.asarray(bad_rows))
            raise ValueError(
                f"{name} must be finite; found NaN or inf in {rows.size} function(s), "
                f"first at index {int(rows[0])}"
            )
    return u


def check_grid(grid, n_points: int, name: str = "grid", against: str = "u"):
    """``grid`` must be 1-D of length ``n_points`` (``against.shape[1]``) and, when concrete,
    finite and strictly increasing. Returns ``jnp.asarray(grid)``."""
    grid = jnp.asarray(grid)
    if grid.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape ({n_points},), got shape {grid.shape}")
    if grid.shape[0] != n_points:
        raise ValueError(
            f"{name} must have one point per column of {against}: expected shape ({n_points},), "
            f"got {grid.shape}"
        )
    if not is_tracer(grid):
        g = np.asarray(grid, np.float64)
        if not np.all(np.isfinite(g)):
            raise ValueError(f"{name} must be finite")
        if np.any(np.diff(g) <= 0):
            raise ValueError(f"{name} must be strictly increasing")
    return grid
