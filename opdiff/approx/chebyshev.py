r"""Chebyshev interpolation and the Bernstein-ellipse bound for analytic functions.

For :math:`f` analytic inside the Bernstein ellipse
:math:`E_\rho=\{(z+z^{-1})/2 : |z|=\rho\}`, :math:`\rho>1`, with :math:`|f|\le M` there, the
interpolant :math:`p_n` in the :math:`n+1` Chebyshev points of the second kind satisfies
(Trefethen, *ATAP*, Thm 8.2)

.. math:: \|f-p_n\|_{\infty,[-1,1]} \le \frac{4M\rho^{-n}}{\rho-1}.

A pole at :math:`z_0` limits :math:`\rho` to :math:`|z_0\pm\sqrt{z_0^2-1}|` (the root with
modulus > 1); for Runge's :math:`1/(1+25x^2)`, :math:`z_0=i/5` and
:math:`\rho=(1+\sqrt{26})/5\approx1.2198`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = [
    "points",
    "interpolate",
    "bernstein_rho",
    "ellipse",
    "ellipse_max",
    "interpolation_bound",
    "runge",
    "RUNGE_RHO",
    "sup_errors",
    "geometric_rate",
]

RUNGE_RHO = (1.0 + np.sqrt(26.0)) / 5.0


def runge(x):
    """Runge's function :math:`1/(1+25x^2)` (works on real and complex arrays)."""
    return 1.0 / (1.0 + 25.0 * x * x)


def _check_degree(n):
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int (polynomial degree), got {n!r}")


def points(n: int, dtype=jnp.float64) -> Float[Array, " n+1"]:
    r"""Chebyshev points of the second kind :math:`x_j=\cos(\pi j/n)`, :math:`j=0..n`."""
    _check_degree(n)
    return jnp.asarray(np.cos(np.pi * np.arange(n + 1) / n), dtype=dtype)


def interpolate(
    values: Float[Array, " n+1"], x: Float[Array, " m"]
) -> Float[Array, " m"]:
    r"""Evaluate the polynomial interpolating ``values`` at :func:`points` at ``x``.

    Uses the barycentric formula of the second kind, with weights
    :math:`w_j=(-1)^j\delta_j` (:math:`\delta_0=\delta_n=1/2`, else 1), which is
    numerically stable for all :math:`n` (Higham 2004):

    .. math:: p(x)=\frac{\sum_j w_j f_j/(x-x_j)}{\sum_j w_j/(x-x_j)}.

    Args:
        values: :math:`f(x_j)` at the ``n+1`` Chebyshev points, ``n >= 1``.
        x: evaluation points.

    Raises:
        ValueError: if ``values`` is not 1-D with at least two entries or ``x`` is not 1-D.
    """
    values = jnp.asarray(values)
    x = jnp.asarray(x)
    if values.ndim != 1 or values.shape[0] < 2:
        raise ValueError(f"values must have shape (n+1,) with n >= 1, got {values.shape}")
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {x.shape}")
    return _barycentric(values, x)


@jax.jit
def _barycentric(values, x):
    n = values.shape[0] - 1
    nodes = points(n, dtype=values.dtype)
    w = jnp.where(jnp.arange(n + 1) % 2 == 0, 1.0, -1.0).astype(values.dtype)
    w = w.at[0].multiply(0.5).at[-1].multiply(0.5)
    diff = x[:, None] - nodes[None, :]
    exact = diff == 0
    safe = jnp.where(exact, 1.0, diff)
    c = w / safe
    p = (c @ values) / jnp.sum(c, axis=1)
    hit = jnp.any(exact, axis=1)
    at_node = jnp.sum(jnp.where(exact, values[None, :], 0.0), axis=1)
    return jnp.where(hit, at_node, p)


def bernstein_rho(z0: complex) -> float:
    r"""The largest :math:`\rho` with :math:`z_0` outside the open ellipse :math:`E_\rho`.

    :math:`\rho = |z_0+\sqrt{z_0^2-1}|`, taking the square-root branch that makes it >= 1.
    """
    z0 = complex(z0)
    s = np.sqrt(z0 * z0 - 1.0)
    return float(max(abs(z0 + s), abs(z0 - s)))


def ellipse(rho: float, n_points: int = 4096) -> np.ndarray:
    r"""``n_points`` points on :math:`\partial E_\rho`: :math:`(\rho e^{i\theta}+\rho^{-1}e^{-i\theta})/2`."""
    if not rho > 1.0:
        raise ValueError(f"rho must be > 1, got {rho!r}")
    theta = 2 * np.pi * np.arange(n_points) / n_points
    z = rho * np.exp(1j * theta)
    return (z + 1.0 / z) / 2.0


def ellipse_max(f: Callable, rho: float, n_points: int = 16384) -> float:
    """:math:`\\max|f|` over :math:`\\partial E_\\rho`, sampled at ``n_points`` points.

    By the maximum-modulus principle this is the maximum over the closed ellipse when ``f`` is
    analytic inside it. Sampling underestimates it by O(n_points^-2) relative.
    """
    return float(np.max(np.abs(f(ellipse(rho, n_points)))))


def interpolation_bound(M: float, rho: float, n) -> np.ndarray:
    r""":math:`4M\rho^{-n}/(\rho-1)` (Trefethen ATAP Thm 8.2), vectorised over ``n``."""
    if not rho > 1.0:
        raise ValueError(f"rho must be > 1, got {rho!r}")
    n = np.asarray(n, dtype=np.float64)
    return 4.0 * M * rho ** (-n) / (rho - 1.0)


def sup_errors(f: Callable, degrees, x: np.ndarray) -> np.ndarray:
    r""":math:`\max_{x}|f(x)-p_n(x)|` over the grid ``x`` for each degree :math:`n` in
    ``degrees``, :math:`p_n` the interpolant of ``f`` in the :math:`n+1` Chebyshev points.

    Args:
        f: the function, vectorised over numpy arrays.
        degrees: interpolation degrees (positive ints).
        x: evaluation grid on [-1, 1], shape ``(P,)``.

    Returns:
        float64 array of sup errors, one per degree.
    """
    x = np.asarray(x, np.float64)
    fx = f(x)
    out = []
    for n in np.asarray(degrees):
        nodes = np.asarray(points(int(n)))
        out.append(float(np.max(np.abs(np.asarray(interpolate(f(nodes), x)) - fx))))
    return np.asarray(out)


def geometric_rate(degrees, errors, *, floor: float = 1e-13) -> float:
    r"""The :math:`\rho` of a fitted geometric decay :math:`e_n\approx C\rho^{-n}`:
    :math:`\exp(-\hat s)` with :math:`\hat s` the least-squares slope of :math:`\log e_n`
    on :math:`n`, over the errors above ``floor`` (float64 round-off).

    Raises:
        ValueError: fewer than two errors above ``floor``.
    """
    degrees, errors = np.asarray(degrees, np.float64), np.asarray(errors, np.float64)
    usable = errors > floor
    if usable.sum() < 2:
        raise ValueError(f"need at least two errors above floor={floor}, got {usable.sum()}")
    slope = np.polyfit(degrees[usable], np.log(errors[usable]), 1)[0]
    return float(np.exp(-slope))
