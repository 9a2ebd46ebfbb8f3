r"""Linear least squares: plain, ridge and weighted, by QR, SVD or the normal equations.

Every fit in the random-feature and sampling experiments solves

.. math:: \hat c = \arg\min_c \sum_{i=1}^n w_i\,\big(y_i-(Ac)_i\big)^2 + \alpha\|c\|_2^2,

with :math:`A\in\mathbb R^{n\times m}` (rows = samples, columns = features or basis functions),
optional weights :math:`w_i\ge0` and ridge :math:`\alpha\ge0`. Weights enter by row scaling,
:math:`\tilde A=\mathrm{diag}(\sqrt w)A`, :math:`\tilde y=\sqrt w\odot y`. The three methods:

- ``"qr"``: Householder QR of :math:`[\tilde A\,|\,\tilde y]` (rows
  :math:`[\sqrt\alpha I\,|\,0]` appended when :math:`\alpha>0`); its last columns hold
  :math:`Q^\top\tilde y`, so :math:`Q` is never formed, and :math:`R\hat c=Q^\top\tilde y`.
  Backward stable; the accuracy is governed by :math:`\kappa(\tilde A)`, not its square.
  The default.
- ``"svd"``: :math:`\tilde A=U\,\mathrm{diag}(s)V^\top` and filter factors
  :math:`s_i/(s_i^2+\alpha)`; with :math:`\alpha=0` singular values below
  ``rcond * s_1`` are dropped, which gives the minimum-norm solution — the only method that
  accepts fewer samples than unknowns without a ridge.
- ``"cholesky"``: the normal equations :math:`(\tilde A^\top\tilde A+\alpha I)\hat c=
  \tilde A^\top\tilde y`. About half the flops of QR for tall matrices, but the condition
  number is squared: only for well-conditioned or well-regularised problems.

All three are single ``jax.jit``-compiled functions of arrays, so they ``vmap`` over stacks of
problems of equal shape (e.g. a sweep over seeds or bandwidths).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["METHODS", "solve", "residual"]

METHODS = ("qr", "svd", "cholesky")


def _concrete(x) -> float | None:
    """``float(x)``, or None for a traced value (under ``jit``/``vmap``)."""
    try:
        return float(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return None


def _check(A, y, weights, ridge, method, rcond):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if getattr(A, "ndim", None) != 2:
        raise ValueError(f"A must be a 2-D (samples, features) array, got shape "
                         f"{getattr(A, 'shape', type(A).__name__)}")
    n, m = A.shape
    if getattr(y, "ndim", None) not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) or ({n}, k) to match A {A.shape}, "
                         f"got {getattr(y, 'shape', type(y).__name__)}")
    if weights is not None and tuple(getattr(weights, "shape", ())) != (n,):
        raise ValueError(f"weights must have shape ({n},), got "
                         f"{getattr(weights, 'shape', type(weights).__name__)}")
    r = _concrete(ridge)
    if r is not None:
        if not r >= 0.0:
            raise ValueError(f"ridge must be >= 0, got {ridge!r}")
        if r == 0.0 and method != "svd" and n < m:
            raise ValueError(
                f"plain least squares needs at least as many samples as unknowns: A has "
                f"{n} rows (samples) and {m} columns (basis functions/features); add samples, "
                "pass ridge > 0, or use method='svd' for the minimum-norm solution"
            )
    if rcond is not None and not 0.0 <= float(rcond) < 1.0:
        raise ValueError(f"rcond must be in [0, 1), got {rcond!r}")


def solve(
    A: Float[Array, "n m"],
    y: Float[Array, "n *k"],
    *,
    weights: Float[Array, " n"] | None = None,
    ridge: float = 0.0,
    method: str = "qr",
    rcond: float | None = None,
) -> Float[Array, "m *k"]:
    r"""The (weighted, ridge) least-squares coefficients :math:`\hat c` (module docstring).

    Args:
        A: design matrix, one row per sample.
        y: targets, ``(n,)`` or ``(n, k)`` for ``k`` right-hand sides at once.
        weights: optional nonnegative sample weights :math:`w_i` (e.g. the optimal
            :math:`m/k_m(x_i)` of Cohen–Migliorati).
        ridge: :math:`\alpha\ge0`.
        method: ``"qr"`` (default), ``"svd"`` or ``"cholesky"``.
        rcond: relative singular-value cut-off for ``"svd"`` (default: ``max(n, m)`` times
            machine epsilon of the dtype, as in ``numpy.linalg.lstsq``).

    Returns:
        :math:`\hat c` with shape ``(m,)`` or ``(m, k)``.

    Raises:
        ValueError: for a bad shape, ``ridge < 0``, an unknown method, or plain least squares
            (``ridge == 0`` and method ``"qr"``/``"cholesky"``) with fewer samples than
            unknowns, where the solution is not unique.
    """
    A = jnp.asarray(A)
    y = jnp.asarray(y)
    _check(A, y, weights, ridge, method, rcond)
    with jax.numpy_dtype_promotion("standard"):  # the solve's dtype: the widest input, >= f32
        dtype = jnp.result_type(A.dtype, y.dtype, jnp.float32)
    A, y = A.astype(dtype), y.astype(dtype)
    if rcond is None:
        rcond = max(A.shape) * float(jnp.finfo(dtype).eps)
    w = None if weights is None else jnp.asarray(weights, dtype)
    # A ridge known to be zero lets QR skip the sqrt(ridge) I block (25-100 % of the work).
    augment = _concrete(ridge) != 0.0
    return _solve(A, y, w, jnp.asarray(ridge, dtype), method=method, rcond=float(rcond),
                  augment=augment)


@partial(jax.jit, static_argnames=("method", "rcond", "augment"))
def _solve(A, y, w, ridge, *, method, rcond, augment):
    if w is not None:
        sw = jnp.sqrt(w)
        A = A * sw[:, None]
        y = y * (sw if y.ndim == 1 else sw[:, None])
    m = A.shape[1]
    if method == "qr":
        if augment:  # [A; sqrt(ridge) I] keeps QR's stability with a ridge
            A = jnp.concatenate([A, jnp.sqrt(ridge) * jnp.eye(m, dtype=A.dtype)], axis=0)
            y = jnp.concatenate([y, jnp.zeros((m,) + y.shape[1:], y.dtype)], axis=0)
        # One QR of [A | y] without forming Q: the top-right block of R is Q^T y. Forming the
        # n x m factor Q (LAPACK orgqr) costs as much again as the factorisation itself.
        y2 = y if y.ndim == 2 else y[:, None]
        r = jnp.linalg.qr(jnp.concatenate([A, y2], axis=1), mode="r")
        c = jax.scipy.linalg.solve_triangular(r[:m, :m], r[:m, m:], lower=False)
        return c if y.ndim == 2 else c[:, 0]
    if method == "svd":
        u, s, vt = jnp.linalg.svd(A, full_matrices=False)
        keep = s > rcond * s[0]
        filt = jnp.where(keep, s / (s * s + ridge), 0.0)
        uty = u.T @ y
        return vt.T @ (filt[:, None] * uty if y.ndim == 2 else filt * uty)
    gram = A.T @ A + ridge * jnp.eye(m, dtype=A.dtype)
    chol = jax.scipy.linalg.cho_factor(gram, lower=True)
    return jax.scipy.linalg.cho_solve(chol, A.T @ y)


def residual(
    A: Float[Array, "n m"],
    c: Float[Array, "m *k"],
    y: Float[Array, "n *k"],
    weights: Float[Array, " n"] | None = None,
) -> Float[Array, "*k"]:
    r"""Weighted mean-square residual :math:`\frac1n\sum_i w_i(y_i-(Ac)_i)^2`."""
    r = (jnp.asarray(y) - jnp.asarray(A) @ jnp.asarray(c)) ** 2
    if weights is not None:
        w = jnp.asarray(weights)
        r = r * (w if r.ndim == 1 else w[:, None])
    return jnp.mean(r, axis=0)
