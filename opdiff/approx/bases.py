r"""Orthonormal bases on an interval, their reference measures, and quadrature for them.

Each basis :math:`\varphi_0,\dots,\varphi_{m-1}` is orthonormal in :math:`L^2(\mu)` for a
*probability* measure :math:`\mu`, :math:`\int\varphi_j\varphi_k\,d\mu=\delta_{jk}`:

=============  ===============================================  ================================
name           :math:`\varphi_j`                                 :math:`\mu`
=============  ===============================================  ================================
``legendre``   :math:`\sqrt{2j+1}\,P_j(x)`                       :math:`dx/2` on :math:`[-1,1]`
``chebyshev``  :math:`T_0=1`, :math:`\sqrt2\,T_j(x)`               :math:`dx/(\pi\sqrt{1-x^2})`
``fourier``    :math:`1,\sqrt2\cos x,\sqrt2\sin x,\sqrt2\cos2x,…` :math:`dx/(2\pi)` on
                                                                 :math:`[0,2\pi)`
=============  ===============================================  ================================

Polynomials are evaluated by their three-term recurrences (unrolled for ``m <= 8``, a
:func:`jax.lax.scan` over the degree above), which are forward stable on the interval: the
orthonormal Legendre recurrence

.. math:: x\varphi_j=a_{j+1}\varphi_{j+1}+a_j\varphi_{j-1},\qquad a_j=\frac{j}{\sqrt{4j^2-1}},

and :math:`T_{j+1}=2xT_j-T_{j-1}`. The Fourier functions are evaluated directly.

Bounds used by the rejection samplers in :mod:`opdiff.approx.sampling`:

- sup norms (:func:`sup_norm_sq`): :math:`\|\varphi_j\|_\infty^2=2j+1` (Legendre, attained at
  :math:`\pm1`), :math:`2` for Chebyshev and Fourier with :math:`j\ge1`, :math:`1` for
  :math:`j=0`;
- an *envelope* :math:`\varphi_j(x)^2\le e(x)` for all :math:`j` with :math:`\int e\,d\mu=C`
  (:attr:`Basis.envelope_mass`), so that :math:`e\,d\mu/C` is a probability measure
  :math:`\nu` one can sample (:attr:`Basis.proposal`). For Chebyshev and Fourier
  :math:`e\equiv2`, :math:`\nu=\mu`. For Legendre, Bernstein's inequality in the sharp form
  :math:`(1-x^2)^{1/4}|P_j(x)|\le\sqrt{2/\pi}\,(j+\tfrac12)^{-1/2}` (Antonov–Holševnikov 1980)
  gives :math:`\varphi_j^2\le e(x)=\frac{4}{\pi\sqrt{1-x^2}}`, i.e. :math:`\nu` is the arcsine
  law and :math:`C=2` for every degree, whereas the sup-norm bound :math:`2j+1` would make the
  acceptance rate of a uniform proposal decay like :math:`1/(2j+1)`. The bound is sharp
  (:math:`\max_x\varphi_j^2/e\to1`); both bounds are checked on a grid in the tests.

Only one-dimensional bases are provided (no tensor-product bases).

The measure :math:`\mu` (and :math:`\nu`) are sampled as the push-forward of
:math:`U\sim\mathcal U[0,1)` by an increasing map :math:`T` (:attr:`Basis.to_measure`), which
also turns CDFs into integrals over :math:`[0,u]` (:func:`cdf_nodes`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = [
    "BASES",
    "Basis",
    "get",
    "evaluate",
    "legendre",
    "chebyshev",
    "fourier",
    "sample_measure",
    "sup_norm_sq",
    "quadrature",
    "cdf_nodes",
]

BASES = ("legendre", "chebyshev", "fourier")


def _check_m(m):
    if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
        raise ValueError(f"m must be a positive int (number of basis functions), got {m!r}")
    return int(m)


def _float(x):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


# --------------------------------------------------------------------------- evaluation

# Up to this many functions the recurrence is unrolled in Python (XLA compiles the unrolled
# chain faster than a scan for small m: 0.09 s vs 0.26 s at m = 5, on CPU); above, lax.scan.
_UNROLL_MAX = 8


def legendre(x: Float[Array, "*batch"], m: int) -> Float[Array, "*batch m"]:
    r""":math:`\varphi_j=\sqrt{2j+1}P_j(x)`, :math:`j=0..m-1`, orthonormal for :math:`dx/2`.

    Evaluated by the orthonormal three-term recurrence
    :math:`\varphi_{j+1}=(x\varphi_j-a_j\varphi_{j-1})/a_{j+1}`, :math:`a_j=j/\sqrt{4j^2-1}`.

    Raises:
        ValueError: if ``m`` is not a positive int.
    """
    return _jit_eval("legendre", _float(x), _check_m(m))


def _legendre(x, m):
    p0 = jnp.ones_like(x)
    if m == 1:
        return p0[..., None]
    p1 = math.sqrt(3.0) * x
    if m == 2:
        return jnp.stack([p0, p1], axis=-1)
    j = np.arange(1, m, dtype=np.float64)
    a = j / np.sqrt(4 * j * j - 1)  # a[k] = a_{k+1}
    if m <= _UNROLL_MAX:
        out = [p0, p1]
        for k in range(1, m - 1):
            out.append((x * out[-1] - a[k - 1] * out[-2]) / a[k])
        return jnp.stack(out, axis=-1)
    coef = jnp.asarray(np.stack([a[:-1], a[1:]], axis=1), x.dtype)  # (a_j, a_{j+1}), j=1..m-2

    def step(carry, ab):
        prev, cur = carry
        nxt = (x * cur - ab[0] * prev) / ab[1]
        return (cur, nxt), nxt

    _, rest = jax.lax.scan(step, (p0, p1), coef)
    return jnp.concatenate([p0[..., None], p1[..., None], jnp.moveaxis(rest, 0, -1)], axis=-1)


def chebyshev(x: Float[Array, "*batch"], m: int) -> Float[Array, "*batch m"]:
    r""":math:`T_0=1`, :math:`\sqrt2T_j(x)`: orthonormal for the arcsine law on :math:`[-1,1]`.

    :math:`T_{j+1}=2xT_j-T_{j-1}`.

    Raises:
        ValueError: if ``m`` is not a positive int.
    """
    return _jit_eval("chebyshev", _float(x), _check_m(m))


def _chebyshev(x, m):
    t0 = jnp.ones_like(x)
    if m == 1:
        return t0[..., None]

    def step(carry, _):
        prev, cur = carry
        nxt = 2 * x * cur - prev
        return (cur, nxt), nxt

    if 2 < m <= _UNROLL_MAX:
        out = [t0, x]
        for _ in range(m - 2):
            out.append(2 * x * out[-1] - out[-2])
        t = jnp.stack(out, axis=-1)
    elif m > 2:
        _, rest = jax.lax.scan(step, (t0, x), None, length=m - 2)
        t = jnp.concatenate([t0[..., None], x[..., None], jnp.moveaxis(rest, 0, -1)], axis=-1)
    else:
        t = jnp.stack([t0, x], axis=-1)
    scale = jnp.asarray(np.r_[1.0, np.full(m - 1, math.sqrt(2.0))], x.dtype)
    return t * scale


def fourier(x: Float[Array, "*batch"], m: int) -> Float[Array, "*batch m"]:
    r"""Real trigonometric basis on :math:`[0,2\pi)`, orthonormal for :math:`dx/(2\pi)`.

    :math:`\varphi_0=1`, :math:`\varphi_{2k-1}=\sqrt2\cos kx`, :math:`\varphi_{2k}=\sqrt2\sin kx`.

    Raises:
        ValueError: if ``m`` is not a positive int.
    """
    return _jit_eval("fourier", _float(x), _check_m(m))


def _fourier(x, m):
    j = np.arange(m)
    k = jnp.asarray((j + 1) // 2, x.dtype)
    kx = x[..., None] * k
    r2 = math.sqrt(2.0)
    odd = jnp.asarray(j % 2 == 1)
    out = jnp.where(odd, r2 * jnp.cos(kx), r2 * jnp.sin(kx))
    return jnp.where(jnp.asarray(j == 0), jnp.ones_like(out), out)


# --------------------------------------------------------------------------- bounds


def _legendre_sup(m):
    return 2.0 * np.arange(m) + 1.0


def _unit_then_two(m):
    return np.r_[1.0, np.full(m - 1, 2.0)]


def _legendre_inv_envelope(x):
    # 1/e(x) = pi sqrt(1-x^2)/4; zero at the end points, where e is infinite.
    return (jnp.pi / 4) * jnp.sqrt(jnp.clip(1.0 - x * x, 0.0, None))


def _half(x):
    return jnp.full_like(x, 0.5)


# --------------------------------------------------------------------------- measures


def _uniform_pm1(u):
    return 2.0 * u - 1.0


def _arcsine(u):
    return -jnp.cos(jnp.pi * u)


def _torus(u):
    return 2.0 * jnp.pi * u


@functools.lru_cache(maxsize=32)
def _leggauss(n):
    # Golub-Welsch costs an n x n eigenproblem (0.1-0.4 s at n = 512): computed once per n,
    # returned read-only.
    x, w = np.polynomial.legendre.leggauss(n)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def _gauss_legendre(n):
    x, w = _leggauss(n)
    return x.copy(), w / 2.0


def _gauss_chebyshev(n):
    k = np.arange(1, n + 1)
    return np.cos((2 * k - 1) * np.pi / (2 * n))[::-1].copy(), np.full(n, 1.0 / n)


def _trapezoid(n):
    return 2 * np.pi * np.arange(n) / n, np.full(n, 1.0 / n)


@dataclasses.dataclass(frozen=True)
class Basis:
    r"""One orthonormal basis with everything the samplers and error measurements need.

    Attributes:
        name: one of :data:`BASES`.
        evaluate: ``(x, m) -> (..., m)``, the first ``m`` basis functions at ``x``.
        domain: the interval carrying :math:`\mu`.
        to_measure: increasing map :math:`T` with :math:`T(U)\sim\mu` for
            :math:`U\sim\mathcal U[0,1)`.
        proposal: map :math:`S` with :math:`S(U)\sim\nu=e\,d\mu/C` (the envelope law).
        inv_envelope: :math:`1/e(x)`, with :math:`\varphi_j(x)^2\le e(x)` for every :math:`j`.
        envelope_mass: :math:`C=\int e\,d\mu`; a rejection sampler proposing from :math:`\nu`
            accepts a target :math:`\varphi_j^2d\mu` with probability :math:`1/C`.
        sup_norm_sq: ``m -> (m,)`` array of :math:`\|\varphi_j\|_\infty^2`.
        quadrature: ``n -> (nodes, weights)``, an ``n``-point rule for :math:`\mu` (weights sum
            to 1), exact for polynomials of degree ``2n-1`` (trigonometric degree ``n-1`` for
            Fourier).
    """

    name: str
    evaluate: Callable
    domain: tuple[float, float]
    to_measure: Callable
    proposal: Callable
    inv_envelope: Callable
    envelope_mass: float
    sup_norm_sq: Callable
    quadrature: Callable


_REGISTRY = {
    "legendre": Basis("legendre", _legendre, (-1.0, 1.0), _uniform_pm1, _arcsine,
                      _legendre_inv_envelope, 2.0, _legendre_sup, _gauss_legendre),
    "chebyshev": Basis("chebyshev", _chebyshev, (-1.0, 1.0), _arcsine, _arcsine,
                       _half, 2.0, _unit_then_two, _gauss_chebyshev),
    "fourier": Basis("fourier", _fourier, (0.0, 2 * math.pi), _torus, _torus,
                     _half, 2.0, _unit_then_two, _trapezoid),
}


def get(name: str) -> Basis:
    """The :class:`Basis` called ``name``.

    Raises:
        ValueError: if ``name`` is not one of :data:`BASES`.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"basis must be one of {BASES}, got {name!r}")
    return _REGISTRY[name]


def evaluate(name: str, x: Float[Array, "*batch"], m: int) -> Float[Array, "*batch m"]:
    """The first ``m`` functions of basis ``name`` at ``x`` (see the module table).

    Raises:
        ValueError: for an unknown basis or ``m`` not a positive int.
    """
    get(name)
    return _jit_eval(name, _float(x), _check_m(m))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _jit_eval(name, x, m):
    return _REGISTRY[name].evaluate(x, m)


def sample_measure(key: PRNGKeyArray, name: str, shape: tuple[int, ...] = (),
                   dtype=None) -> Float[Array, "*shape"]:
    r"""Independent draws from the reference measure :math:`\mu` of basis ``name``.

    Uniform on :math:`[-1,1]` (Legendre), arcsine :math:`-\cos(\pi U)` (Chebyshev), uniform on
    :math:`[0,2\pi)` (Fourier).
    """
    spec = get(name)
    dtype = jnp.result_type(float) if dtype is None else dtype
    shape = tuple(shape)
    # Drawn flat and reshaped (a multi-axis threefry compiles several times slower on CPU).
    u = jax.random.uniform(key, (math.prod(shape),), dtype).reshape(shape)
    return spec.to_measure(u)


def sup_norm_sq(name: str, m: int) -> np.ndarray:
    r""":math:`\|\varphi_j\|_\infty^2` for :math:`j=0..m-1`: :math:`2j+1` (Legendre) or
    :math:`1,2,2,\dots` (Chebyshev, Fourier)."""
    return get(name).sup_norm_sq(_check_m(m))


def quadrature(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""An ``n``-point rule :math:`\sum_k w_kg(x_k)\approx\int g\,d\mu`, weights summing to 1.

    Gauss–Legendre (Legendre), Gauss–Chebyshev of the first kind (Chebyshev), both exact for
    polynomials of degree :math:`\le2n-1`; the trapezoid rule on :math:`2\pi k/n` (Fourier),
    exact for trigonometric polynomials of degree :math:`\le n-1`. Float64 NumPy arrays.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int (number of quadrature nodes), got {n!r}")
    return get(name).quadrature(int(n))


def cdf_nodes(name: str, x: Float[Array, " p"], n: int) -> tuple[Array, Array]:
    r"""Nodes and weights to integrate against :math:`\mu` over :math:`(\text{left end}, x]`.

    With :math:`u=T^{-1}(x)` (:attr:`Basis.to_measure`),
    :math:`\int_{y\le x}g\,d\mu=\int_0^u g(T(s))\,ds`, done by ``n``-point Gauss–Legendre on
    :math:`[0,u]`. For Legendre the integrand of a polynomial of degree :math:`\le 2n-1` is
    integrated exactly; for Chebyshev/Fourier :math:`g\circ T` is a trigonometric polynomial,
    integrated to near round-off once ``n`` exceeds its degree by ~20.

    Returns:
        ``(nodes, weights)`` of shape ``(p, n)``: :math:`\int_{y\le x_i}g\,d\mu\approx
        \sum_k w_{ik}g(t_{ik})`.
    """
    spec = get(name)
    x = _float(x)
    lo, hi = spec.domain
    if spec.name == "legendre":
        u = (x + 1.0) / 2.0
    elif spec.name == "chebyshev":
        u = jnp.arccos(-jnp.clip(x, -1.0, 1.0)) / jnp.pi
    else:
        u = x / (2 * jnp.pi)
    u = jnp.clip(u, 0.0, 1.0)
    s, w = _leggauss(int(n))
    s = jnp.asarray((s + 1) / 2, x.dtype)
    w = jnp.asarray(w / 2, x.dtype)
    t = u[..., None] * s
    return spec.to_measure(t), u[..., None] * w
